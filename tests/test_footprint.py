"""Resident-size estimates before loading, and the model cache refusing what cannot fit its budget."""

from __future__ import annotations

import pytest

from g3n_core import ModelCache, ModelTooLargeError, Variant, load_model
from g3n_core.footprint import alternatives, estimate_bytes, footprint
from g3n_core.info import model_info
from g3n_core.matformer.presets import parse_slice

# Every feature that changes what stays resident, alone and together.
VARIANTS = [
    {},
    {"dtype": "bfloat16"},
    {"quant": "int8"},
    {"ple": "mmap"},
    {"towers": ()},
    {"towers": ("audio",)},
    {"matformer": "ffn=128;skip=1"},
    {"dtype": "bfloat16", "quant": "int8", "ple": "mmap", "towers": (), "sparse_ffn": True, "sparsity": "0.9"},
]


def _variant(fields: dict) -> Variant:
    fields = dict(fields)
    if "matformer" in fields:
        fields["matformer"] = parse_slice(fields["matformer"], 15)
    return Variant(**fields)


@pytest.mark.parametrize("fields", VARIANTS, ids=lambda f: " ".join(f"{k}={v}" for k, v in f.items()) or "default")
def test_the_estimate_matches_what_the_loaded_model_holds(fields):
    variant = _variant(fields)
    estimate = estimate_bytes(variant)
    held = load_model(variant).weight_bytes()
    assert abs(estimate - held) <= 0.01 * held, (estimate, held)


def test_features_move_the_estimate_the_right_way():
    base = Variant(model="e2b-shape", dtype="bfloat16")
    full = estimate_bytes(base)
    assert full == model_info(base).resident_bytes  # no feature on: the model info's in-memory figure (not the files' k/v)
    assert estimate_bytes(Variant(model="e2b-shape")) == 2 * full  # float32
    mapped = footprint(base.replace(ple="mmap")).bytes_by_component
    assert mapped["per_layer_embeddings"] == 0
    int8 = footprint(base.replace(quant="int8")).bytes_by_component
    plain = footprint(base).bytes_by_component
    assert int8["text_decoder"] < 0.6 * plain["text_decoder"] and int8["lm_head_int8"] > 0
    assert estimate_bytes(base.replace(towers=())) == full - plain["vision_tower"] - plain["audio_tower"]


def test_a_model_over_the_whole_budget_is_refused_before_loading_with_what_would_fit():
    calls: list[Variant] = []
    variant = Variant(model="e4b-shape")  # float32: ~29 GiB
    budget = int(15.2e9)
    cache = ModelCache(budget_bytes=budget, loader=lambda v, progress=None: calls.append(v))
    with pytest.raises(ModelTooLargeError) as caught:
        cache.get(variant)
    err = caught.value
    assert calls == []  # the loader never ran
    assert err.needed == estimate_bytes(variant) > budget and err.budget == budget
    message = str(err)
    assert "29.13 GiB" in message and "14.16 GiB" in message and "would fit" in message
    labels = [label for label, _ in err.alternatives]
    assert "dtype=bfloat16 quant=int8" in labels and any(label.startswith("matformer=E") for label in labels)
    for label, size in err.alternatives:
        assert size <= budget, label
    assert not cache.fits(variant) and cache.fits(Variant())


def test_alternatives_are_real_variants_that_fit():
    variant = Variant(model="e4b-shape")
    budget = int(5e9)
    found = alternatives(variant, budget)
    assert found, "something fits 5 GB: a MatFormer slice, bfloat16, int8, mapped PLE, text only"
    from g3n_core import parse_variant_spec

    for label, size in found:
        assert estimate_bytes(parse_variant_spec(f"e4b-shape {label}")) == size <= budget
    assert alternatives(variant, 10**6) == []
    with pytest.raises(ModelTooLargeError, match="choose a smaller model"):
        ModelCache(budget_bytes=10**6).get(variant)


def test_a_model_that_fits_alone_still_evicts_others():
    text_only = Variant(towers=())
    cache = ModelCache(budget_bytes=int(estimate_bytes(text_only) * 1.5))
    cache.get(text_only)
    cache.get(text_only.replace(attn="eager"))
    assert cache.variants() == [text_only.replace(attn="eager")]
