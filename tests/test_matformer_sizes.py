"""Sizes of slices on the meta device: the Lab's table on E4B's shape, E4B -> E2B, custom slices of tiny."""

from __future__ import annotations

import pytest

from g3n_core import MatformerSlice, Variant
from g3n_core.info import count_components, model_info, variant_meta_model
from g3n_core.matformer.presets import find_preset, lab_presets
from g3n_core.matformer.sizes import ffn_profile, preset_table, slice_report


@pytest.fixture(scope="module")
def e4b_table():
    return preset_table("e4b-shape", "bfloat16")


def test_every_lab_preset_fits_e4b_shape_and_matches_the_lab_within_one_percent(e4b_table):
    assert [row["preset"] for row in e4b_table] == [p.key for p in lab_presets()]
    assert len(e4b_table) == 16
    for row in e4b_table:
        preset = find_preset(row["preset"])
        assert row["layers"] == preset.layers
        assert abs(row["effective_params"] / (preset.effective_params_b * 1e9) - 1) < 0.01, row["preset"]
        assert row["bytes"] == 2 * row["total_params"]
        assert row["lab_mmlu"] == preset.mmlu_pt_accuracy
    full = model_info(Variant(model="e4b-shape", dtype="bfloat16"))
    assert e4b_table[0]["preset"] == "E4B"
    assert e4b_table[0]["total_params"] == full.total_params
    assert e4b_table[0]["effective_params"] == full.effective_params


def test_e4b_cut_to_the_official_e2b_preset_is_e2b(e4b_table):
    sliced = variant_meta_model(Variant(model="e4b-shape", matformer=find_preset("E2B").to_slice()))
    e2b = variant_meta_model(Variant(model="e2b-shape"))
    got, want = sliced.config.text_config, e2b.config.text_config
    assert got.num_hidden_layers == 30 and list(got.intermediate_size) == [8192] * 30
    assert got.num_kv_shared_layers == 10
    assert got.layer_types == want.layer_types
    assert got.kv_sharing_modes == want.kv_sharing_modes
    assert got.to_dict() == want.to_dict()
    assert count_components(sliced) == count_components(e2b)
    row = next(r for r in e4b_table if r["preset"] == "E2B")
    assert row["total_params"] == model_info(Variant(model="e2b-shape")).total_params


def test_presets_are_listed_only_where_they_fit():
    assert preset_table("tiny", "float32") == []
    assert preset_table("e2b-shape", "bfloat16") == []


def test_custom_slice_report_on_tiny():
    slc = MatformerSlice(ffn=(256,) * 10, skip=(5, 6, 7, 8, 9))
    report = slice_report("tiny", slc, "float32")
    info = model_info(Variant(matformer=slc))
    assert report["effective_params"] == info.effective_params
    assert report["total_params"] == info.total_params
    assert report["params"] == info.params
    assert report["bytes"] == 4 * report["total_params"]
    assert report["layers"] == 10 and report["kv_shared_layers"] == 5
    assert report["parent"]["effective_params"] == model_info(Variant()).effective_params
    assert 0 < report["effective_fraction"] < 0.5
    assert "lab_mmlu" not in report
    profile = report["ffn_profile"]
    assert [r["layer"] for r in profile] == list(range(15))
    assert [r["skipped"] for r in profile] == [i in range(5, 10) for i in range(15)]
    assert [r["new_index"] for r in profile if not r["skipped"]] == list(range(10))
    assert [r["kv"] for r in profile[2:6]] == ["own", "producer", "producer", "shared"]
    assert [r["attention"] for r in profile[:5]] == ["local"] * 4 + ["global"]
    assert all(r["width"] == (0 if r["skipped"] else 256) and r["parent_width"] == 512 for r in profile)


def test_profile_of_the_parent_and_a_preset_report():
    assert [r["width"] for r in ffn_profile("tiny", None)] == [512] * 15
    report = slice_report("e4b-shape", find_preset("E2.98B-layer").to_slice(), "bfloat16")
    assert report["lab_mmlu"] == 59.5 and report["lab_effective_params"] == 2_980_000_000
    widths = [r["width"] for r in report["ffn_profile"]]
    assert widths[15:25] == [16384] * 10 and widths[:15] == [8192] * 15
