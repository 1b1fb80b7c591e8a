"""Paired comparisons, verdict wording, the disagreement list and verdict.md on run folders written here (no model).

Each fake run holds what the runner writes: result rows in results.jsonl and per-example records
(with example ids) under samples/, including per-repeat latency records.
"""

from __future__ import annotations

import numpy as np
import pytest

from evals.diff import disagreements, find_side, sides
from evals.paired import compare_runs, compare_to_baseline
from evals.report import comparison_table, write_report
from evals.results import ResultLog, load_results, unit_id, write_samples
from evals.verdict import verdict_line
from g3n_core import Variant
from g3n_core.errors import EvalError

BASE, SAME, BAD, GOOD = Variant(), Variant(attn="eager"), Variant(sparsity="off"), Variant(towers=("vision",))
N = 48
GOLD = np.random.default_rng(0).random(N) < 0.6  # the baseline is right on these


def _rows(variant: Variant, task: str, values: dict[str, float], n: int, higher: dict[str, bool] | None = None, status="ok") -> list[dict]:
    higher = higher or {}
    uid = unit_id(variant.to_json(), task, None)
    return [
        {"variant": variant.name, "variant_json": variant.to_json(), "task": task, "metric": metric, "value": value, "n": n, "stderr": 0.05,
         "unit": "", "kind": "", "higher_is_better": higher.get(metric, True), "wall_s": 1.0, "status": status, "note": "", "limit": None,
         "unit_id": uid, "unit_size": len(values), "finished_at": f"2026-01-01T00:00:0{order}"}
        for order, (metric, value) in enumerate(values.items())
    ]  # fmt: skip


def _add(run, variant: Variant, right: np.ndarray, *, decode: list[float], short_right: np.ndarray | None = None, skip_image: bool = False):
    """A variant with builtin_mc (acc), builtin_short_answer (exact_match, f1), builtin_image_qa and latency repeats."""
    log = ResultLog(run)
    samples = [{"doc_id": i, "example_id": f"mc{i:02d}", "prompt": f"Question {i}?", "choices": ["no", "yes"], "gold": 1, "pred": int(r), "acc": float(r)} for i, r in enumerate(right)]
    write_samples(run, variant.to_json(), "builtin_mc", samples)
    log.write_unit(_rows(variant, "builtin_mc", {"acc": float(np.mean(right))}, len(right)))
    short = right[:32] if short_right is None else short_right
    records = [{"doc_id": i, "example_id": f"sa{i:02d}", "prompt": f"Q{i}", "prediction": "yes" if r else "no", "reference": ["yes"],
                "exact_match": float(r), "f1": float(r)} for i, r in enumerate(short)]  # fmt: skip
    write_samples(run, variant.to_json(), "builtin_short_answer", records)
    log.write_unit(_rows(variant, "builtin_short_answer", {"exact_match": float(np.mean(short)), "f1": float(np.mean(short))}, len(short)))
    if skip_image:
        log.write_unit(_rows(variant, "builtin_image_qa", {"exact_match": None}, 0, status="skipped"))
    else:
        write_samples(run, variant.to_json(), "builtin_image_qa", [{"doc_id": 0, "example_id": "img0", "prompt": "Colour?", "media": {"image": "x.png"},
                                                                     "prediction": "red", "reference": ["red"], "exact_match": 1.0}])  # fmt: skip
        log.write_unit(_rows(variant, "builtin_image_qa", {"exact_match": 1.0}, 1))
    write_samples(run, variant.to_json(), "measure:latency", [{"repeat": i, "decode_tokens_per_s_median": v} for i, v in enumerate(decode)])
    log.write_unit(_rows(variant, "measure:latency", {"decode_tokens_per_s_median": float(np.median(decode))}, len(decode)))
    log.write_unit(_rows(variant, "measure:memory", {"peak_memory_bytes": 100e6 if variant != BAD else 141e6}, 1, {"peak_memory_bytes": False}))


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "run"
    worse = GOLD.copy()
    worse[:40] = False  # wrong on most examples
    better = np.ones(N, dtype=bool)
    _add(folder, BASE, GOLD, decode=[20.0, 21.0, 19.5, 20.5, 20.2])
    _add(folder, SAME, GOLD.copy(), decode=[20.1, 20.9, 19.7, 20.4, 20.0])
    _add(folder, BAD, worse, decode=[10.0, 10.4, 9.8, 10.1, 10.2], skip_image=True)
    _add(folder, GOOD, better, decode=[20.0, 20.0, 20.0, 20.0, 20.0], short_right=GOLD[:32])
    return folder


def _by_name(comparisons):
    return {c.candidate.variant: c for c in comparisons}


def test_identical_variants_have_no_detectable_difference(run):
    same = _by_name(compare_to_baseline(run))[SAME.name]
    mc = next(m for m in same.metrics if m.task == "builtin_mc")
    assert mc.test.identical and mc.test.n == N and mc.outcome == "no detectable difference" and mc.test.p == 1.0
    line = verdict_line(same)
    assert line.startswith(f"{SAME.name} vs {BASE.name}: decode x")
    assert "no detectable difference, identical on every example: " in line and "builtin_mc acc (n=48; could detect 16 points)" in line


def test_a_variant_wrong_on_most_examples_is_worse(run):
    bad = _by_name(compare_to_baseline(run))[BAD.name]
    mc = next(m for m in bad.metrics if m.task == "builtin_mc")
    right_before = int(GOLD[:40].sum())
    assert mc.test.discordant == (right_before, 0) and mc.test.diff == pytest.approx(-right_before / N)
    assert mc.outcome == "worse" and mc.p_holm <= 2 * mc.test.p  # Holm over the two tasks both finished
    line = verdict_line(bad)
    assert f"worse on builtin_mc acc (n=48, {-100 * right_before / N:+.0f} points, 95% CI " in line and "p<0.001" in line
    assert "[Holm-adjusted over 2 tasks]" in line
    assert "decode x0.50 (" in line and "peak memory +41%" in line
    decode = next(m for m in bad.measures if m.metric == "decode_tokens_per_s_median")
    assert decode.outcome == "worse" and decode.ratio.high < 1
    assert "not compared: builtin_image_qa (skipped for " in line


def test_a_better_variant_is_better_and_the_baseline_can_be_chosen(run):
    good = _by_name(compare_to_baseline(run))[GOOD.name]
    assert next(m for m in good.metrics if m.task == "builtin_mc").outcome == "better"
    against_bad = compare_to_baseline(run, baseline="sp:off")
    assert {c.baseline.variant for c in against_bad} == {BAD.name} and len(against_bad) == 3
    with pytest.raises(EvalError, match="variants are"):
        compare_to_baseline(run, baseline="nonexistent")


def test_only_examples_both_finished_are_compared(run, tmp_path):
    partial = tmp_path / "partial"
    _add(partial, BASE, GOLD, decode=[20.0])
    _add(partial, SAME, GOLD[:30].copy(), decode=[20.0])
    mc = next(m for m in _by_name(compare_to_baseline(partial))[SAME.name].metrics if m.task == "builtin_mc")
    assert mc.test.n == 30 and "30 examples finished by both" in mc.note
    decode = next(m for m in _by_name(compare_to_baseline(partial))[SAME.name].measures if m.metric.startswith("decode"))
    assert decode.ratio.low is None  # one repeat each: a ratio, no interval


def test_disagreements_are_joined_by_id_and_filtered(run):
    found = sides(run)
    base, bad = find_side(found, BASE.name), find_side(found, "sp:off")
    differing = disagreements(base, bad, "builtin_mc", ["acc"], {"acc": True})
    assert [d.example_id for d in differing] == [f"mc{i:02d}" for i in range(40) if GOLD[i]]
    assert all(d.better == "a" and d.answer_a == "yes" and d.answer_b == "no" and d.reference == "yes" for d in differing)
    assert disagreements(base, bad, "builtin_mc", ["acc"], {"acc": True}, only="b_better") == []
    assert len(disagreements(base, bad, "builtin_mc", ["acc"], only="a_better")) == len(differing)
    assert disagreements(base, find_side(found, SAME.name), "builtin_mc", ["acc"]) == []


def test_report_writes_verdict_md_and_a_readable_table(run):
    paths = write_report(run)
    text = paths["verdict"].read_text()
    assert text.startswith("# Verdict") and f"Baseline: {BASE.name}" in text
    assert f"- {BAD.name} vs {BASE.name}:" in text and "| exact McNemar" in text and "no manifest" in text
    table = comparison_table(load_results(run), markdown=True)
    assert "builtin_mc acc ↑" in table.columns and "peak memory MiB ↓" in table.columns and "decode tokens/s ↑" in table.columns
    assert table.loc[GOOD.name, "builtin_mc acc ↑"].startswith("**1.000")  # best in bold
    assert table.loc[BAD.name, "peak memory MiB ↓"] == "134.5" and table.loc[BASE.name, "peak memory MiB ↓"].startswith("**")


def test_two_runs_compare_variant_by_variant(run, tmp_path):
    again = tmp_path / "again"
    _add(again, BASE, GOLD, decode=[20.3, 20.6, 19.9])
    pairs = compare_runs(run, again)
    assert len(pairs) == 1 and pairs[0].baseline.label == f"{BASE.name} (run)" and pairs[0].candidate.label == f"{BASE.name} (again)"
    assert all(m.test.identical for m in pairs[0].metrics if m.test)
    assert write_report(again, against=run)["verdict"].name == "verdict-vs-run.md"


def test_pareto_points_within_noise_of_the_front_are_marked(run):
    from evals.report import run_charts, within_noise

    frame = load_results(run)
    # SAME is a little slower than BASE with identical answers: dominated, but not significantly less accurate
    assert within_noise(run, frame, "decode_tokens_per_s", True) == {SAME.name}
    marked = run_charts(run)["accuracy_vs_decode"].data[-1]
    assert marked.name == "not significantly less accurate than the front" and len(marked.x) == 1
