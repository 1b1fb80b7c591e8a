"""The app's elastic slices: a slice of the loaded parent applies at once from the model panel, and the
MatFormer tab finds the best slice under a budget with the same search as the CLI."""

from __future__ import annotations

import gradio as gr
import pytest
from app_fixtures import tiny_bench

from app import matformer_tab, model_panel
from app.slice_search import NO_PRESET, find_best_slice, preset_keys
from g3n_core.matformer.mini_ladder import half_preset
from g3n_core import MatformerSlice, Variant


@pytest.fixture
def bench(tiny, tmp_path):
    return tiny_bench(tiny, tmp_path / "runs")


def _panel(matformer: str, attn: str = "sdpa") -> dict:
    """The model panel's values by field name for tiny with its towers (the launch variant) and this slice."""
    tiny = Variant()
    return {"model": "tiny", "attn": attn, "dtype": tiny.dtype, "device": tiny.device, "towers": list(tiny.towers),
            "matformer": matformer, "sparsity": "default"}  # fmt: skip


def test_a_slice_of_the_loaded_parent_applies_at_once(bench):
    bench.cache.get(bench.default_variant)
    variant, status, _, table, note = model_panel.apply_slice_at_once(bench, _panel("ffn=256;skip=6-9"))
    assert variant.matformer == MatformerSlice(ffn=(256,) * 11, skip=(6, 7, 8, 9))
    assert "elastic slice of the loaded" in status and "tiny sdpa fp32" in status and "nothing loaded" in note
    assert bench.cache.variants() == [bench.default_variant] and variant in bench.cache.views()
    assert not table.empty
    back, status, _, _, _ = model_panel.apply_slice_at_once(bench, _panel(model_panel.NO_SLICE))
    assert back == bench.default_variant and "elastic" not in status


def test_a_slice_whose_parent_is_not_loaded_waits_for_load(bench):
    bench.cache.get(bench.default_variant)
    *outputs, note = model_panel.apply_slice_at_once(bench, _panel("ffn=256", attn="eager"))
    assert all(isinstance(o, type(gr.skip())) for o in outputs) and "press **Load**" in note
    assert bench.cache.variants() == [bench.default_variant]  # nothing was loaded
    *outputs, note = model_panel.apply_slice_at_once(bench, _panel("ffn=256;skip=3"))  # a bad slice: the note says why
    assert all(isinstance(o, type(gr.skip())) for o in outputs) and "layer 3" in note


def test_the_matformer_tab_finds_the_best_slice_under_a_budget(bench, single_thread):
    parent = lambda model: matformer_tab.slice_variant(bench, model, MatformerSlice())  # noqa: E731
    summary, table, chart, best = find_best_slice(bench, parent, "tiny", "agreement", "", "", "", "ffn=256", 4, 2, progress=lambda *a, **k: None)
    assert "Best under the budget" in summary and "matformer slice --model tiny" in summary
    assert len(table) == 4 and "best" in " ".join(table[""])
    assert any(trace.name == "Pareto front" for trace in chart.data)
    assert isinstance(best, MatformerSlice)
    rows = matformer_tab.editor_rows("tiny", best)
    assert len(rows) == 15
    assert bench.cache.variants() == [bench.default_variant]  # every candidate was a view of the loaded tiny
    with pytest.raises(gr.Error, match="give a budget"):
        find_best_slice(bench, parent, "tiny", "agreement", "", "", "", NO_PRESET, 4, 2, progress=lambda *a, **k: None)
    with pytest.raises(gr.Error, match="cannot read"):
        find_best_slice(bench, parent, "tiny", "agreement", "many", "", "", NO_PRESET, 4, 2, progress=lambda *a, **k: None)
    assert preset_keys(bench, "tiny") == [] and "E2B" in preset_keys(bench, "e4b-shape")
    assert half_preset().key in preset_keys(bench, "mini")  # the budget of mini's half preset is one choice away
