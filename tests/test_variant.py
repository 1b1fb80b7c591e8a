"""Variant: validation names the field, JSON round-trips, names are short and stable."""

from __future__ import annotations

import pytest

from g3n_core import MatformerSlice, Variant, VariantError, parse_variant_spec


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"model": "/no/such/folder"}, "model"),
        ({"model": "not a model"}, "model"),
        ({"attn": "magic"}, "attn"),
        ({"attn": "flash_attention_2"}, "attn"),  # needs CUDA
        ({"attn": "flex_attention"}, "attn"),  # CPU decode kernels do not compile in torch 2.14
        ({"dtype": "int4"}, "dtype"),
        ({"dtype": "float16"}, "dtype"),  # not on the CPU
        ({"device": "cuda"}, "device"),  # no GPU here
        ({"device": "tpu"}, "device"),
        ({"towers": ("vision", "smell")}, "towers"),
        ({"sparsity": "1.5"}, "sparsity"),
        ({"sparsity": "0.9@99"}, "sparsity"),
        ({"sparsity": ",".join(["0.5"] * 14)}, "sparsity"),  # tiny has 15 layers
        ({"sparsity": "lots"}, "sparsity"),
        ({"ple": "swap"}, "ple"),
        ({"kv_cache": "paged"}, "kv_cache"),
        ({"quant": "int3"}, "quant"),
        ({"compile": "yes"}, "compile"),
    ],
)
def test_invalid_values_fail_at_construction_naming_the_field(fields, field):
    with pytest.raises(VariantError) as caught:
        Variant(**fields)
    assert caught.value.field == field
    assert f"Variant.{field}" in str(caught.value)


def test_layer_count_follows_the_matformer_slice():
    sliced = MatformerSlice(skip=(1, 2))
    Variant(sparsity=",".join(["0.5"] * 13), matformer=sliced)
    with pytest.raises(VariantError, match="13 layers"):
        Variant(sparsity=",".join(["0.5"] * 15), matformer=sliced)


def test_json_round_trip_and_hashing():
    variant = Variant(attn="eager", dtype="bf16", towers=["audio"], sparsity="0.90@0-3", matformer=MatformerSlice(ffn=(256,) * 15, preset=None))
    assert variant.dtype == "bfloat16" and variant.towers == ("audio",) and variant.sparsity == "0.9@0,1,2,3"
    again = Variant.from_json(variant.to_json())
    assert again == variant and hash(again) == hash(variant)
    assert {variant: 1}[again] == 1


def test_unknown_json_field_is_named():
    with pytest.raises(VariantError) as caught:
        Variant.from_dict({"model": "tiny", "flavour": "mint"})
    assert caught.value.field == "flavour"


def test_names_are_short_stable_and_show_only_what_differs():
    assert Variant().name == "tiny sdpa fp32"
    assert Variant(attn="eager", towers=(), sparsity="off").name == "tiny eager fp32 text-only sp:off"
    assert Variant(model="e2b-shape", dtype="bfloat16").name == "e2b-shape sdpa bf16"
    assert parse_variant_spec("tiny attn=eager sparsity=off towers=text").name == "tiny eager fp32 text-only sp:off"


def test_spec_parsing_rejects_bad_booleans():
    with pytest.raises(VariantError) as caught:
        parse_variant_spec("tiny compile=maybe")
    assert caught.value.field == "compile"


def test_long_settings_still_give_distinct_names():
    a = Variant(sparsity=",".join(["0.5"] * 5 + ["0"] * 10))
    b = Variant(sparsity=",".join(["0.6"] * 5 + ["0"] * 10))
    assert a.name != b.name and a.name.startswith("tiny sdpa fp32 sp:custom-")
    assert a.name == Variant(sparsity=a.sparsity).name
