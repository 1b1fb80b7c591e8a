"""int8 weight-only quantization (quant="int8"): per-channel int8 linears, what stays float, how far logits move."""

from __future__ import annotations

import torch
from torch import nn

from benchmarks.fidelity import compare_logits, teacher_forced_logits
from benchmarks.plain import fixed_prompt
from benchmarks.timing import timed_generate
from g3n_core import Variant, load_model
from g3n_core.speed.quantize import Int8Linear, quantizable, quantize_rows
from g3n_core.speed.sparse_ffn import SparseDecodeMLP


def test_rows_round_trip_within_half_a_step():
    weight = torch.randn(48, 64) * torch.linspace(0.1, 3.0, 48)[:, None]
    q, scale = quantize_rows(weight, block_rows=16)  # several blocks
    assert q.dtype == torch.int8 and q.abs().max() <= 127
    assert ((q.float() * scale[:, None] - weight).abs() <= scale[:, None] / 2 + 1e-6).all()


def test_int8_linear_matches_its_float_layer():
    torch.manual_seed(0)
    for dtype in (torch.float32, torch.bfloat16):
        linear = nn.Linear(64, 96, bias=False).to(dtype)
        x = torch.randn(3, 5, 64, dtype=dtype)
        out = Int8Linear(linear)(x)
        assert out.shape == (3, 5, 96) and out.dtype == dtype
        reference = linear(x).float()
        assert (out.float() - reference).abs().max() < 0.03 * reference.abs().max()


def test_narrow_inputs_stay_float():
    # AltUp's 4-wide coefficient layers: torch's int8 kernel gives NaN or crashes for such widths.
    assert not quantizable(nn.Linear(4, 16, bias=False))
    assert not quantizable(nn.Linear(64, 16, bias=True))
    assert quantizable(nn.Linear(64, 16, bias=False))


def test_int8_model_runs_close_to_float():
    base = load_model(Variant(towers=()))
    int8 = load_model(Variant(towers=(), quant="int8"))
    assert int8.extras["int8_linears"] > 15 * 7  # every layer's projections, the decoder's, and the LM head
    assert isinstance(int8.model.lm_head, Int8Linear)
    altup = int8.model.model.layers[0].altup
    assert type(altup.prediction_coefs) is nn.Linear  # 4-wide: kept float
    assert int8.weight_bytes() < 0.6 * base.weight_bytes() + 4 * base.model.model.embed_tokens_per_layer.weight.numel()
    ids = fixed_prompt(24)
    forced = timed_generate(base.model, ids, 8).tokens
    report = compare_logits(teacher_forced_logits(int8.model, ids, forced), teacher_forced_logits(base.model, ids, forced))
    assert torch.isfinite(torch.tensor(report["max_abs_diff"]))
    assert report["mean_kl"] < 0.5 and report["top1_agreement"] >= 0.5


def test_int8_with_sparse_ffn_quantizes_the_row_tables():
    loaded = load_model(Variant(towers=(), quant="int8", sparse_ffn=True))
    mlp = loaded.model.model.layers[0].mlp
    assert isinstance(mlp, SparseDecodeMLP) and mlp.up_rows.is_int8 and mlp.down_rows.is_int8
    assert isinstance(mlp.gate_proj, Int8Linear)
    tokens = timed_generate(loaded.model, fixed_prompt(16), 8, **loaded.extras["generate_kwargs"]).tokens
    assert len(tokens) == 8 and mlp.sparse_calls >= 7
