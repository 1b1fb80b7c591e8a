"""Bytes read per decoded token, and the bandwidth measurements of the roofline."""

from __future__ import annotations

import math

import pytest
import torch

from benchmarks.plain import fixed_prompt
from benchmarks.timing import timed_generate
from g3n_core import Variant, load_model
from g3n_core.speed.roofline import Roofline, decode_bytes_per_token, measure_matvec, measure_stream_read


@pytest.fixture(scope="module")
def dense():
    return load_model(Variant(towers=()))


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def test_dense_count_is_every_weight_once_with_one_row_per_table(dense):
    model = dense.model
    decoder = model.model
    counted = decode_bytes_per_token(model, context=10)
    tables = [decoder.embed_tokens.weight, decoder.embed_tokens_per_layer.weight]  # the token table is also the LM head
    expected = dense.weight_bytes() - _bytes(tables[1:]) + sum(t.shape[1] * t.element_size() for t in tables)
    assert counted.weights == expected
    config = decoder.config
    per_token = 2 * config.num_key_value_heads * config.head_dim * 4
    window = {"sliding_attention": min(10, config.sliding_window), "full_attention": 10}
    assert counted.kv_cache == per_token * sum(window[t] for t in config.layer_types)


def test_sparse_layers_count_only_the_neurons_they_computed(dense):
    sparse = load_model(Variant(towers=(), sparse_ffn=True))
    timed_generate(sparse.model, fixed_prompt(16), 8)
    mlps = [sparse.model.model.layers[i].mlp for i in sparse.extras["sparse_ffn_layers"]]
    skipped = sum((1 - m.active_fraction()) * _bytes([m.up_rows.rows, m.down_rows.rows]) for m in mlps)
    difference = decode_bytes_per_token(dense.model, 10).weights - decode_bytes_per_token(sparse.model, 10).weights
    assert math.isclose(difference, skipped, rel_tol=1e-3)
    assert decode_bytes_per_token(sparse.model, 10, sparse_active=1.0).weights == decode_bytes_per_token(dense.model, 10).weights


def test_int8_reads_about_half_the_bytes(dense):
    int8 = load_model(Variant(towers=(), quant="int8"))
    ratio = decode_bytes_per_token(int8.model, 10).weights / decode_bytes_per_token(dense.model, 10).weights
    assert 0.2 < ratio < 0.35  # float32 -> int8 plus scales and the float parts


def test_bandwidth_measurements_are_positive():
    assert measure_stream_read(nbytes=1 << 22, repeats=2) > 0
    for dtype, int8 in ((torch.float32, False), (torch.bfloat16, False), (torch.bfloat16, True)):
        gbps, kernel = measure_matvec(dtype=dtype, int8=int8, total_bytes=1 << 22, repeats=2, shapes=((256, 512), (512, 256)))
        assert gbps > 0 and ("int8pack" in kernel) == int8
    roof = Roofline(bytes_per_token=10**9, stream_gbps=20.0, matvec_gbps=10.0, matvec_kernel=kernel, tokens_per_s=5.0).to_dict()
    assert roof["stream_bound_tokens_per_s"] == 20.0 and roof["fraction_of_stream"] == 0.25 and roof["fraction_of_matvec"] == 0.5
