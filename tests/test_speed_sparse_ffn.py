"""Exact sparse FFN decode (sparse_ffn=True): same outputs as the dense MLP, fewer neurons computed."""

from __future__ import annotations

import copy

import pytest
import torch

from benchmarks.fidelity import teacher_forced_logits
from benchmarks.plain import fixed_prompt
from benchmarks.timing import timed_generate
from g3n_core import Variant, load_model
from g3n_core.builtin.configs import tiny_config
from g3n_core.speed.sparse_ffn import SPARSE_MAX_TOKENS, SparseDecodeMLP
from transformers.models.gemma3n.modeling_gemma3n import Gemma3nTextMLP


@pytest.fixture(scope="module")
def dense_tiny():
    return load_model(Variant(towers=()))


@pytest.fixture(scope="module")
def sparse_tiny():
    return load_model(Variant(towers=(), sparse_ffn=True))


def _mlp(sparsity: float, dtype=torch.float32) -> Gemma3nTextMLP:
    config = tiny_config().text_config
    torch.manual_seed(0)
    mlp = Gemma3nTextMLP(config, layer_idx=0).to(dtype)
    mlp.activation_sparsity = sparsity
    for linear in (mlp.gate_proj, mlp.up_proj, mlp.down_proj):
        torch.nn.init.normal_(linear.weight, std=linear.in_features**-0.5)
    return mlp.eval()


@pytest.mark.parametrize("tokens", [1, 3, SPARSE_MAX_TOKENS, SPARSE_MAX_TOKENS + 5])
def test_sparse_mlp_matches_the_dense_mlp(tokens):
    dense = _mlp(0.95)
    sparse = SparseDecodeMLP(copy.deepcopy(dense))
    x = torch.randn(2, tokens, dense.hidden_size) if tokens > 1 else torch.randn(1, 1, dense.hidden_size)
    with torch.inference_mode():
        torch.testing.assert_close(sparse(x), dense(x), rtol=1e-5, atol=1e-6)
    rows = x.shape[0] * x.shape[1]
    if rows <= SPARSE_MAX_TOKENS:  # the gather path ran, over far fewer neurons than the layer has
        assert 0 < sparse.last_active < 0.5 * dense.intermediate_size
        assert sparse.sparse_calls == 1
    else:  # prefill-sized inputs take the dense path
        assert sparse.sparse_calls == 0


def test_a_dense_layer_is_left_dense():
    sparse = SparseDecodeMLP(_mlp(0.0))
    x = torch.randn(1, 1, sparse.hidden_size)
    with torch.inference_mode():
        sparse(x)
    assert sparse.sparse_calls == 0


def test_int8_row_tables_match_their_dequantized_product():
    sparse = SparseDecodeMLP(_mlp(0.95))
    x = torch.randn(1, 1, sparse.hidden_size)
    with torch.inference_mode():
        before = sparse(x)
        sparse.up_rows.quantize_int8_()
        sparse.down_rows.quantize_int8_()
        sparse.down_rows.quantize_int8_()  # a second call must not quantize twice
        after = sparse(x)
    assert sparse.up_rows.rows.dtype == torch.int8 and sparse.down_rows.is_int8
    assert (after - before).abs().max() < 0.05 * before.abs().max()


def test_tiny_generates_identical_greedy_tokens_over_64_new_tokens(dense_tiny, sparse_tiny):
    assert sparse_tiny.extras["sparse_ffn_layers"] == [0, 1, 2, 3, 4]
    ids = fixed_prompt(24)
    dense = timed_generate(dense_tiny.model, ids, 64).tokens
    sparse = timed_generate(sparse_tiny.model, ids, 64, **sparse_tiny.extras["generate_kwargs"]).tokens
    assert sparse == dense
    layers = [sparse_tiny.model.model.layers[i].mlp for i in sparse_tiny.extras["sparse_ffn_layers"]]
    assert all(mlp.sparse_calls >= 63 for mlp in layers)  # every decode step took the sparse path
    assert all(mlp.active_fraction() < 0.2 for mlp in layers)  # ~5% of neurons at sparsity 0.95


def test_decode_logits_within_float32_tolerance(dense_tiny, sparse_tiny):
    ids = fixed_prompt(24, seed=1)
    forced = timed_generate(dense_tiny.model, ids, 12).tokens
    torch.testing.assert_close(
        teacher_forced_logits(sparse_tiny.model, ids, forced), teacher_forced_logits(dense_tiny.model, ids, forced), rtol=1e-4, atol=1e-4
    )


def test_bfloat16_tokens_identical_and_logits_within_tolerance():
    dense = load_model(Variant(towers=(), dtype="bfloat16"))
    sparse = load_model(Variant(towers=(), dtype="bfloat16", sparse_ffn=True))
    ids = fixed_prompt(24, seed=2)
    tokens = timed_generate(dense.model, ids, 24).tokens
    assert timed_generate(sparse.model, ids, 24).tokens == tokens
    ours, base = teacher_forced_logits(sparse.model, ids, tokens[:4]), teacher_forced_logits(dense.model, ids, tokens[:4])
    assert (ours - base).abs().max() <= 0.05 * base.abs().max()


def test_sparse_ffn_without_sparse_layers_changes_nothing():
    loaded = load_model(Variant(towers=(), sparsity="off", sparse_ffn=True))
    assert loaded.extras["sparse_ffn_layers"] == []
    assert not any(isinstance(layer.mlp, SparseDecodeMLP) for layer in loaded.model.model.layers)
