"""Slices that do not fit their parent are refused with an error that names the layer."""

from __future__ import annotations

import copy

import pytest

from g3n_core import MatformerSlice, SliceError, Variant, VariantError
from g3n_core.builtin.configs import shape_config, tiny_config
from g3n_core.matformer.presets import find_preset, parse_slice, slice_by_rule
from g3n_core.matformer.slicing import check_slice, plan_slice
from g3n_core.variant import parse_variant_spec

TINY = tiny_config().text_config  # 15 layers; 3 and 4 store K/V for the shared layers 5-14; FFN 512


def _refused(parent, slc: MatformerSlice, layer: int | None, *words: str) -> SliceError:
    with pytest.raises(SliceError) as caught:
        check_slice(parent, slc)
    assert caught.value.layer == layer, str(caught.value)
    for word in words:
        assert word in str(caught.value)
    return caught.value


def test_widths_above_the_parent_or_not_positive():
    _refused(TINY, MatformerSlice(ffn=(512,) * 7 + (513,) + (512,) * 7), 7, "above the parent's 512")
    ffn = [256] * 14
    ffn[5] = 1024  # kept-layer position 5 is parent layer 6 once layer 2 is skipped
    _refused(TINY, MatformerSlice(ffn=tuple(ffn), skip=(2,)), 6, "1024")
    with pytest.raises(SliceError) as caught:
        MatformerSlice(ffn=(256, 0) + (256,) * 13)
    assert caught.value.layer == 1


def test_ffn_list_must_match_the_kept_layers():
    _refused(TINY, MatformerSlice(ffn=(256,) * 12, skip=(6,)), 13, "12 FFN widths", "keeps 14 layers")
    _refused(TINY, MatformerSlice(ffn=(256,) * 15, skip=(6,)), None, "15 FFN widths", "keeps 14 layers")


def test_layers_whose_keys_and_values_are_reused_cannot_be_skipped():
    _refused(TINY, MatformerSlice(skip=(3,)), 3, "sliding_attention layers 5-8, 10-13 reuse")
    _refused(TINY, MatformerSlice(skip=(4,)), 4, "full_attention layers 9, 14 reuse")
    e4b = shape_config("e4b-shape").text_config
    _refused(e4b, MatformerSlice(skip=(18,)), 18, "keep it")
    _refused(e4b, MatformerSlice(skip=(19,)), 19, "keep it")
    check_slice(e4b, MatformerSlice(skip=(17,)))  # an ordinary unshared layer may go


def test_first_last_and_missing_layers_cannot_be_skipped():
    _refused(TINY, MatformerSlice(skip=(0,)), 0, "first layer")
    _refused(TINY, MatformerSlice(skip=(14,)), 14, "last layer")
    _refused(TINY, MatformerSlice(skip=(15,)), 15, "layers 0-14")


def test_a_slice_must_leave_every_attention_type():
    parent = copy.deepcopy(TINY)
    parent.num_kv_shared_layers = 0  # no KV sharing, so only the attention-type rule protects layers 4 and 9
    parent.layer_types = ["full_attention" if i in (4, 9) else "sliding_attention" for i in range(15)]
    check_slice(parent, MatformerSlice(skip=(4,)))
    _refused(parent, MatformerSlice(skip=(4, 9)), 4, "no full_attention layer")


def test_kv_sharing_is_kept_exactly():
    plan = plan_slice(TINY, MatformerSlice(skip=(1, 7, 9)))
    assert plan.kept == (0, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14) and plan.num_kv_shared_layers == 8


def test_presets_that_do_not_fit_the_parent():
    e2b = find_preset("E2B").to_slice()
    _refused(TINY, e2b, None, "35-layer", "has 15 layers")
    _refused(shape_config("e2b-shape").text_config, e2b, None, "has 30 layers")
    _refused(shape_config("e2b-shape").text_config, find_preset("E2.98B-layer").to_slice(), None, "35-layer")
    # the same widths without the preset label still fail: on the skips, or on the layer count
    _refused(TINY, MatformerSlice(ffn=e2b.ffn, skip=e2b.skip), 20, "layers 0-14")
    _refused(shape_config("e2b-shape").text_config, MatformerSlice(ffn=e2b.ffn, skip=e2b.skip), None, "30 FFN widths", "keeps 25 layers")
    # on E4B's shape with a narrower parent FFN, the widths rule catches the preset
    narrow = copy.deepcopy(shape_config("e4b-shape").text_config)
    narrow.intermediate_size = [8192] * 35
    _refused(narrow, find_preset("E2.54B-layer").to_slice(), 4, "16384")


def test_variant_rejects_a_slice_that_does_not_fit_its_model():
    with pytest.raises(VariantError) as caught:
        Variant(model="tiny", matformer=find_preset("E2B").to_slice())
    assert caught.value.field == "matformer"
    with pytest.raises(VariantError, match="layer 3"):
        Variant(model="tiny", matformer=MatformerSlice(skip=(3,)))
    with pytest.raises(VariantError, match="matformer"):
        parse_variant_spec("e2b-shape matformer=E2.98B-layer")
    assert Variant(model="e4b-shape", matformer=find_preset("E2B").to_slice()).run_layers() == 30


def test_rules_and_their_errors():
    rule = slice_by_rule(15, 256, {3: 512, 4: 512}, skip=(6, 7))
    assert rule.ffn == (256, 256, 256, 512, 512, 256, 256, 256, 256, 256, 256, 256, 256)
    assert parse_slice("ffn=256,3-4:512;skip=6-7", 15) == rule
    assert parse_variant_spec("tiny ffn=256,3-4:512 skip=6-7").matformer == rule
    with pytest.raises(VariantError, match="not both"):  # ';' splits spec tokens: the skip is refused, never dropped
        parse_variant_spec("tiny matformer=ffn=256,3-4:512;skip=6-7")
    assert parse_slice("ffn=256*13;skip=6-7").ffn == (256,) * 13
    with pytest.raises(SliceError, match="needs the parent's layer count"):
        parse_slice("ffn=256")
    with pytest.raises(SliceError) as caught:
        parse_slice("ffn=256,6:512;skip=6", 15)
    assert caught.value.layer == 6
    with pytest.raises(SliceError) as caught:
        slice_by_rule(15, 256, {20: 512})
    assert caught.value.layer == 20
    with pytest.raises(SliceError, match="unknown MatFormer preset"):
        parse_slice("E9B")
