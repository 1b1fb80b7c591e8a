"""The Compare tab's functions: choosing variants, one small evals run on tiny, its table, charts, files and listing."""

from __future__ import annotations

import gradio as gr
import pandas as pd
import pytest
from app_fixtures import tiny_bench

from app import compare as c
from app import compare_view as cv


@pytest.fixture(scope="module")
def bench(tiny, tmp_path_factory):
    return tiny_bench(tiny, tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def finished(bench):
    """Two variants x the built-in multiple choice suite (4 examples) x realised sparsity (latency: the browser test)."""
    known = c.suggested_variants(bench)
    names = list(known)[:2]
    *view, runs = c.run_comparison(bench, known, names, ["builtin_mc"], ["sparsity"], 4, repeats=1, progress=None)
    return names, dict(zip(c.VIEW, view)), runs


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


def test_a_run_gives_verdict_table_charts_explorer_files_and_a_listed_folder(bench, finished):
    names, out, runs = finished
    table = out["table"]
    assert isinstance(table, pd.DataFrame) and sorted(table["variant"]) == sorted(names)
    assert "builtin_mc acc ↑" in table.columns  # header: task, metric, better direction
    assert out["results"].visible and out["status"].startswith("Run saved as")
    assert out["verdict"].startswith(f"### Verdict (baseline: {names[0]})") and f"{names[1]} vs {names[0]}:" in out["verdict"]
    assert "builtin_mc acc (n=4" in out["verdict"] and "could detect" in out["verdict"]
    assert out["baseline"].value == names[0] and out["baseline"].choices[0][0] == names[0]
    assert out["a"].value == names[0] and out["b"].value == names[1] and out["task"].value == "builtin_mc"
    assert "differing examples on builtin_mc" in out["explorer"] or "No differing examples" in out["explorer"]
    charts = {name: out[name] for name in c.CHARTS}
    assert charts["sparsity"].visible and not charts["memory"].visible and not charts["decode"].visible  # not measured
    files = out["files"]
    sparsity = c.page_charts(pd.read_csv(files[0]))["sparsity"]
    assert sorted(trace.name for trace in sparsity.data) == sorted(names)  # one line per variant
    assert max(sparsity.data[0].y) > 0.5  # tiny's first layers are 95 % sparse
    assert [f.rsplit(".", 1)[1] for f in files] == ["csv", "json", "md"] and files[2].endswith("verdict.md")
    assert pd.read_csv(files[0])["variant"].nunique() == 2
    assert out["manifest_json"]["request"]["tasks"] == ["builtin_mc"] and "commit" in out["manifest"]
    assert runs.value in [path for _, path in c.earlier_runs(bench)]


def test_earlier_runs_show_again_and_only_from_the_results_folder(bench, finished, tmp_path):
    names, out, _ = finished
    path = c.earlier_runs(bench)[0][1]
    shown = dict(zip(c.VIEW, c.show_run(bench, path)))
    assert shown["table"].equals(out["table"]) and shown["verdict"] == out["verdict"]
    with pytest.raises(gr.Error, match="not one of this app's runs"):
        c.show_run(bench, str(tmp_path))
    with pytest.raises(gr.Error, match="not one of this app's runs"):
        c.explore(bench, str(tmp_path), *names, "builtin_mc", "all")
    with pytest.raises(gr.Error, match="at least one"):
        c.run_comparison(bench, c.suggested_variants(bench), list(c.suggested_variants(bench))[:2], [], [], 2, progress=None)


def test_baseline_and_explorer_follow_the_controls(bench, finished):
    names, out, _ = finished
    path = out["run"]
    assert c.rebaseline(bench, path, names[1]).startswith(f"### Verdict (baseline: {names[1]})")
    everything = c.explore(bench, path, names[0], names[1], "builtin_mc", "all")
    one_way = c.explore(bench, path, names[0], names[1], "builtin_mc", "a_better")
    other_way = c.explore(bench, path, names[0], names[1], "builtin_mc", "b_better")
    total = everything.count("<tr>") - 1 if "<tr>" in everything else 0
    parts = [html.count("<tr>") - 1 if "<tr>" in html else 0 for html in (one_way, other_way)]
    assert sum(parts) <= total  # examples with equal scores but different answers appear only under "every"
    assert "Pick two different variants" in c.explore(bench, path, names[0], names[0], "builtin_mc", "all")
    with pytest.raises(gr.Error, match="variants are"):
        c.explore(bench, path, names[0], "nobody", "builtin_mc", "all")
    with pytest.raises(gr.Error, match="not a task of this run"):
        c.explore(bench, path, *names, "../../results", "all")  # no reading outside the run's records


def test_explorer_escapes_answers_and_embeds_only_built_in_media(tmp_path):
    from evals.diff import Disagreement
    from evals.tasks.builtin import DATA

    image = str(DATA / "images" / "00_colour.png")
    outside = tmp_path / "secret.png"
    outside.write_bytes((DATA / "images" / "00_colour.png").read_bytes())
    found = [Disagreement("t", "id1", "<script>alert(1)</script>", {"image": image}, "red", "<b>x</b>", "red", "exact_match", 0.0, 1.0, "b"),
             Disagreement("t", "id2", "q", {"image": str(outside)}, "r", "a", "b", "exact_match", 0.0, 0.0, "")]  # fmt: skip
    html = cv.explorer_html(found, "A", "B", "t", DATA)
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert html.count("data:image/png;base64,") == 1 and "image: secret.png" in html  # the outside file is only named
    assert "A better on 0, B better on 1" in html
