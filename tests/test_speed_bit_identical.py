"""Bit-identical speed features: fused projections (q|k|v, gate|up) and huge-page weights give plain's exact logits."""

from __future__ import annotations

import pytest
import torch

from g3n_core import Variant, VariantError, hardware, load_model
from g3n_core.sparsity import text_layers
from g3n_core.speed import hugepages
from g3n_core.speed.fused_linears import FusedGroup, FusedPart

IDS = torch.tensor([[2, 1000, 1001, 1002, 1003, 1004, 1005, 1006]])


@pytest.fixture(scope="module", params=["float32", "bfloat16"])
def plain(request):
    return load_model(Variant(dtype=request.param, towers=()))


def _logits(loaded) -> torch.Tensor:
    with torch.inference_mode():
        out = loaded.model(IDS[:, :-1], use_cache=True)  # a prefill of 7 tokens, then one decode step
        step = loaded.model(IDS[:, -1:], past_key_values=out.past_key_values, use_cache=True)
    return torch.cat([out.logits, step.logits], 1)


@pytest.mark.parametrize("fields", [{"fuse_linears": True}, {"hugepages": True}, {"fuse_linears": True, "hugepages": True}], ids=str)
def test_logits_are_bit_identical_to_plain(plain, fields, monkeypatch):
    if fields.get("hugepages") and hardware.thp_mode() == "never":
        pytest.skip("transparent huge pages are off in this kernel")
    monkeypatch.setattr(hugepages, "MIN_BYTES", 1 << 14)  # tiny's tensors are far below the real threshold
    ours = load_model(plain.variant.replace(**fields))
    assert torch.equal(_logits(ours), _logits(plain))
    if "fuse_linears" in fields:
        layers = text_layers(ours.model)
        assert isinstance(layers[0].mlp.gate_proj, FusedPart) and isinstance(layers[0].self_attn.k_proj, FusedPart)
        assert ours.extras["fused_groups"] == 2 * len(layers) - sum(layer.self_attn.is_kv_shared_layer for layer in layers)
        assert sum(isinstance(m, FusedGroup) for m in ours.model.modules()) == ours.extras["fused_groups"]
        assert ours.weight_bytes() == plain.weight_bytes()  # the stacked copies replace the originals
    if "hugepages" in fields:
        assert ours.extras["hugepage_bytes"] > 0.5 * plain.weight_bytes()


@pytest.mark.skipif(not hardware.cpu_info().onednn_bf16, reason="prepack needs oneDNN bfloat16 (AVX-512 or AVX-NE-CONVERT)")
def test_fused_projections_are_packed_with_prepack_and_stay_identical():
    base = load_model(Variant(dtype="bfloat16", towers=(), prepack=True))
    fused = load_model(Variant(dtype="bfloat16", towers=(), prepack=True, fuse_linears=True))
    groups = [m for m in fused.model.modules() if isinstance(m, FusedGroup)]
    assert groups and all(g.packed is not None and "weight" not in dict(g.named_parameters()) for g in groups)
    assert torch.equal(_logits(fused), _logits(base))


def test_refusals(monkeypatch):
    with pytest.raises(VariantError, match="leave it off") as caught:
        Variant(fuse_linears=True, quant="int8")
    assert caught.value.field == "fuse_linears"
    monkeypatch.setattr(hardware, "thp_mode", lambda: "never")
    with pytest.raises(VariantError, match="huge pages are off") as caught:
        Variant(hugepages=True)
    assert caught.value.field == "hugepages"
