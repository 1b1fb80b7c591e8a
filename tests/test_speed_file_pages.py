"""Releasing mapped checkpoint pages after load-time rewrites: only file-backed pages, and nothing changes."""

from __future__ import annotations

import torch

from benchmarks.plain import fixed_prompt
from benchmarks.timing import timed_generate
from g3n_core import Variant, load_model
from g3n_core.speed.file_pages import release_file_pages


def test_anonymous_memory_is_never_released():
    values = torch.randn(1 << 20)
    copy = values.clone()
    assert release_file_pages([values]) == 0
    assert torch.equal(values, copy)  # MADV_DONTNEED on anonymous memory would have zeroed it


def test_released_pages_read_back_the_same_weights():
    # tiny's float32 checkpoint is mapped by transformers; the sparse FFN's rewrite touches it, then releases it.
    plain = load_model(Variant(towers=()))
    sparse = load_model(Variant(towers=(), sparse_ffn=True))
    assert sparse.extras["released_file_bytes"] > 0
    assert release_file_pages(plain.model.parameters()) > 0  # a plain model's pages, dropped on purpose
    ids = fixed_prompt(16, seed=5)
    assert timed_generate(sparse.model, ids, 16).tokens == timed_generate(plain.model, ids, 16).tokens
