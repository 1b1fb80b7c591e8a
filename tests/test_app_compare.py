"""The Compare tab's functions: choosing variants, one small evals run on tiny, its table, charts, files and listing."""

from __future__ import annotations

import gradio as gr
import pandas as pd
import pytest
from app_fixtures import tiny_bench

from app import compare as c


@pytest.fixture(scope="module")
def bench(tiny, tmp_path_factory):
    return tiny_bench(tiny, tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def finished(bench):
    """Two variants x the built-in multiple choice suite (2 examples) x realised sparsity (latency: the browser test)."""
    known = c.suggested_variants(bench)
    names = list(known)[:2]
    return names, c.run_comparison(bench, known, names, ["builtin_mc"], ["sparsity"], 2, repeats=1, progress=None)


def test_suggestions_change_one_knob_of_the_launch_model(bench):
    known = c.suggested_variants(bench)
    base = bench.default_variant
    assert list(known)[0] == base.name and len(known) >= 4
    for variant in list(known.values())[1:]:
        changed = [f for f in ("attn", "dtype", "sparsity", "towers") if getattr(variant, f) != getattr(base, f)]
        assert len(changed) == 1, variant.name


def test_variants_are_added_from_specs_and_counted(bench):
    known = c.suggested_variants(bench)
    known, dropdown, box = c.add_spec(bench, known, [], "tiny attn=eager sparsity=0.9 towers=text")
    assert box == "" and dropdown.value == ["tiny eager fp32 text-only sp:0.9"]
    known, dropdown, _ = c.add_spec(bench, known, dropdown.value, "tiny sparsity=0.9@0-4")
    known, dropdown, _ = c.add_spec(bench, known, dropdown.value, "tiny sparsity=0.5@0-4")  # long settings: hashed, still distinct
    first, second = dropdown.value[1:]
    assert first != second and first.startswith("tiny sdpa fp32 sp:custom-") and second.startswith("tiny sdpa fp32 sp:custom-")
    assert known[second].sparsity.startswith("0.5@")
    with pytest.raises(gr.Error, match="attn"):
        c.add_spec(bench, known, [], "tiny attn=bogus")
    with pytest.raises(gr.Error, match="2 to 6"):
        c.picked_variants(known, list(known)[:1])
    many = {f"v{i}": bench.default_variant for i in range(7)}
    with pytest.raises(gr.Error, match="2 to 6"):
        c.picked_variants(many, list(many))


def test_a_run_gives_table_charts_files_and_a_listed_folder(bench, finished):
    names, (table, *rest) = finished
    figures, files, runs = rest[: len(c.CHARTS)], rest[len(c.CHARTS)], rest[-1]
    assert isinstance(table, pd.DataFrame) and sorted(table["variant"]) == sorted(names)
    assert any(col.startswith("builtin_mc/") for col in table.columns)
    assert figures[c.CHARTS.index("sparsity")].visible and not figures[c.CHARTS.index("memory")].visible  # memory was not measured
    sparsity = c.page_charts(pd.read_csv(files[0]))["sparsity"]
    assert sorted(trace.name for trace in sparsity.data) == sorted(names)  # one line per variant
    assert max(sparsity.data[0].y) > 0.5  # tiny's first layers are 95 % sparse
    assert [f.rsplit(".", 1)[1] for f in files] == ["csv", "json"]
    assert pd.read_csv(files[0])["variant"].nunique() == 2
    assert runs.value in [path for _, path in c.earlier_runs(bench)]


def test_earlier_runs_show_again_and_only_from_the_results_folder(bench, finished, tmp_path):
    _, (table, *_) = finished
    path = c.earlier_runs(bench)[0][1]
    shown, *_ = c.show_run(bench, path)
    assert shown.equals(table)
    with pytest.raises(gr.Error, match="not one of this app's runs"):
        c.show_run(bench, str(tmp_path))
    with pytest.raises(gr.Error, match="at least one"):
        c.run_comparison(bench, c.suggested_variants(bench), list(c.suggested_variants(bench))[:2], [], [], 2, progress=None)
