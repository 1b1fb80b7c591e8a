"""A MatFormer slice of a random-weight shape model is applied however the shape is loaded.

The real e2b/e4b shapes are too big for the test suite, so "e2b-shape" is pointed at tiny's
configuration here; the loading paths are the ones the real shapes take.
"""

from __future__ import annotations

import pytest

from g3n_core import Variant, load_model
from g3n_core.builtin import checkpoint
from g3n_core.builtin.configs import tiny_config
from g3n_core.matformer.presets import parse_slice


@pytest.fixture
def small_shape(monkeypatch, tmp_path):
    from g3n_core import sources

    monkeypatch.setenv("G3N_CACHE", str(tmp_path))
    monkeypatch.setattr(sources, "shape_config", lambda name: tiny_config())
    monkeypatch.setattr(checkpoint, "shape_config", lambda name: tiny_config())
    sources._parsed_config.cache_clear()  # read_config keeps built-in configs per process: forget the real shape's
    yield
    sources._parsed_config.cache_clear()  # and the stand-in's, for the tests that follow


def test_slice_applies_when_built_in_memory_and_when_loaded_from_the_written_checkpoint(small_shape):
    slc = parse_slice("ffn=256*10;skip=5-9")
    in_memory = load_model(Variant(model="e2b-shape", dtype="bfloat16", towers=(), matformer=slc))
    checkpoint.ensure_shape_checkpoint("e2b-shape", text_only=True)
    from_disk = load_model(Variant(model="e2b-shape", dtype="bfloat16", towers=(), matformer=slc))
    assert from_disk.checkpoint is not None and in_memory.checkpoint is None
    for loaded in (in_memory, from_disk):
        text = loaded.text_config
        assert text.num_hidden_layers == 10 and text.num_kv_shared_layers == 5
        assert list(text.intermediate_size) == [256] * 10
        assert loaded.model.model.layers[0].mlp.up_proj.weight.shape[0] == 256
