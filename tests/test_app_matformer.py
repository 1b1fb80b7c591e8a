"""The MatFormer tab's functions on tiny and on the e4b-shape config (sizes on the meta device; no e4b weights)."""

from __future__ import annotations

import gradio as gr
import pytest
from app_fixtures import tiny_bench

from app import matformer_tab as m
from app.compare import suggested_variants
from g3n_core import load_model


@pytest.fixture(scope="module")
def bench(tiny, tmp_path_factory):
    return tiny_bench(tiny, tmp_path_factory.mktemp("runs"))


def _edited(model: str, widths: dict[int, int] | None = None, skip: tuple[int, ...] = ()):
    table = m.editor_rows(model, None).astype({"width": object})  # the page may send any text as a width
    for layer, width in (widths or {}).items():
        table.loc[table["layer"] == layer, "width"] = width
    table["skip"] = table["layer"].isin(skip)
    return table


def test_lab_table_always_shows_the_published_presets_and_sizes_where_they_fit():
    tiny_table = m.lab_table("tiny", "float32")
    assert "E2B" in set(tiny_table["preset"]) and set(tiny_table["effective params"]) == {"does not fit"}
    assert tiny_table.loc[tiny_table["preset"] == "E2B", "Lab MMLU (%)"].item() == 50.9
    e4b = m.lab_table("e4b-shape", "bfloat16")
    assert "does not fit" not in set(e4b["effective params"])
    assert m.fitting_presets(tiny_table) == [] and "E2B" in m.fitting_presets(e4b)
    figure = m.lab_chart("E2B")
    assert len(figure.data[0].x) == len(e4b) and "E2B" in figure.data[0].text


def test_editor_round_trips_a_slice():
    table = _edited("tiny", {0: 256, 1: 128}, skip=(7,))
    slc = m.slice_from_editor(table)
    assert slc.skip == (7,) and len(slc.ffn) == 14 and slc.ffn[:3] == (256, 128, 512)
    again = m.editor_rows("tiny", slc)
    assert again.loc[again["layer"] == 7, "skip"].item() and again.loc[again["layer"] == 1, "width"].item() == 128


def test_show_slice_sizes_and_charts_it(bench):
    slc, summary, profile, lab = m.show_slice(bench, "tiny", _edited("tiny", {0: 256}, skip=(7, 8)), m.CUSTOM, "float32")
    assert slc.skip == (7, 8) and "13 of 15 layers" in summary and "effective parameters" in summary
    assert [trace.name for trace in profile.data] == ["parent", "slice", "skipped"]
    assert list(profile.data[2].x) == [7, 8]


def test_a_slice_that_cannot_work_names_the_layer_in_the_summary(bench):
    for edited, needle in ((_edited("tiny", skip=(3,)), "layer 3: cannot skip it"),  # layer 3 stores the KV others reuse
                           (_edited("tiny", {2: 4096}), "layer 2"),  # wider than the parent
                           (_edited("tiny", {4: "wide"}), "layer 4: the FFN width wide is not a number")):
        with pytest.warns(UserWarning, match=needle):
            slc, summary, profile, lab = m.show_slice(bench, "tiny", edited, m.CUSTOM, "float32")
        assert slc is None and needle in summary and profile == gr.skip() and lab == gr.skip()


def test_a_lab_preset_fills_the_editor_for_e4b(bench):
    table = m.choose_preset(bench, "e4b-shape", "E2B")
    assert len(table) == 35 and list(table.loc[table["skip"], "layer"]) == [20, 21, 22, 23, 24]
    assert set(table.loc[~table["skip"], "width"]) == {8192}


def test_slices_go_to_the_compare_tab_with_a_readable_name(bench):
    slc, *_ = m.show_slice(bench, "tiny", _edited("tiny", {0: 256}), m.CUSTOM, "float32")
    known = suggested_variants(bench)
    picked = list(known)[:2]
    known, dropdown, note = m.send_to_compare(bench, "tiny", slc, known, picked)
    added = [name for name, v in known.items() if v.matformer == slc]
    assert added == ["tiny sdpa fp32 mf:ffn 256,512x14"] and dropdown.value == [*picked, added[0]]
    assert "Added **tiny sdpa fp32 mf:ffn 256,512x14** to the Compare tab" in note
    with pytest.warns(UserWarning, match="Show slice"):
        assert "Show slice" in m.send_to_compare(bench, "tiny", None, known, picked)[2]


def test_export_writes_a_loadable_checkpoint_and_links_its_zip(bench):
    slc, *_ = m.show_slice(bench, "tiny", _edited("tiny", {0: 256}, skip=(7,)), m.CUSTOM, "float32")
    note = m.export_checkpoint(bench, "tiny", slc, progress=None)
    assert note.startswith("✅ Wrote")
    folder = bench.results_root.resolve() / "exports" / m.export_name("tiny", slc)
    assert str(folder) in note and f"(g3n/exports/{m.export_name('tiny', slc)}.zip)" in note
    assert not list(bench.results_root.rglob("*.zip"))  # the zip is made as it downloads, never stored
    loaded = load_model(bench.default_variant.replace(model=str(folder), towers=()))
    assert loaded.text_config.num_hidden_layers == 14 and loaded.text_config.intermediate_size[0] == 256
    # The model panel may load what the app exported (and chat with it).
    from app.model_panel import NO_SLICE, variant_from_panel

    assert variant_from_panel(bench, {"model": str(folder), "matformer": NO_SLICE}).model == str(folder)
