"""Paired comparisons of variants: every task metric and headline measurement of B against a baseline A.

Reads the tidy results and the per-example records of run folders, joins the examples both
variants finished (`evals.diff.joined`) and calls `evals.stats`:

- binary metrics (`evals.metrics.BINARY_METRICS`): exact McNemar test, Bonett-Price interval;
- corpus metrics whose records carry sufficient statistics (`<metric>_stats`): paired bootstrap
  and randomisation test of the corpus value (`evals.metrics.corpus`);
- other per-example scores (F1): the same resampling on their mean;
- latency: ratio of medians with a bootstrap interval over the timed repeats;
- memory: the ratio as measured (one measurement per variant, no interval).

Within one comparison the primary metric of each task (its first) forms the family for Holm's
correction; a result is better or worse when its (adjusted) p-value is below ALPHA. Wording is
`evals.verdict`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .diff import Side, find_side, joined, sides
from .metrics import BINARY_METRICS, HUNDRED_SCALE
from .metrics.corpus import CORPUS_SCORES
from .results import load_results
from .stats import ALPHA, PairedTest, RatioTest, holm, median_ratio, paired_binary, paired_resampled

LATENCY_METRICS = ("prefill_tokens_per_s_median", "decode_tokens_per_s_median", "ttft_s_median")
MEMORY_METRICS = ("weight_bytes_loaded", "peak_memory_bytes", "kv_cache_bytes")
LATENCY_TASK = "measure:latency"


@dataclass
class MetricComparison:
    """One task metric of B against A."""

    task: str
    metric: str
    higher_is_better: bool
    primary: bool  # the task's first metric: in the verdict line and the Holm family
    test: PairedTest | None = None
    note: str = ""  # why it was not tested, or how many examples were left out
    p_holm: float | None = None

    @property
    def scale(self) -> float:
        """Multiplier from metric units to points (fractions x100; BLEU and chrF are 0-100 already)."""
        return 1.0 if self.metric in HUNDRED_SCALE else 100.0

    @property
    def p_used(self) -> float | None:
        """The p-value the outcome is decided on: Holm-adjusted for primary metrics."""
        if self.test is None:
            return None
        return self.p_holm if self.p_holm is not None else self.test.p

    @property
    def outcome(self) -> str:
        """'better', 'worse', 'no detectable difference' (for B) or 'not compared'."""
        if self.test is None:
            return "not compared"
        if self.p_used < ALPHA and self.test.diff != 0:
            return "better" if (self.test.diff > 0) == self.higher_is_better else "worse"
        return "no detectable difference"


@dataclass
class MeasureComparison:
    """One headline measurement of B against A."""

    metric: str
    higher_is_better: bool
    baseline: float
    candidate: float
    ratio: RatioTest | None = None  # latency with per-repeat timings on both sides

    @property
    def change(self) -> float:
        """candidate / baseline (the median ratio where repeats exist)."""
        return self.ratio.ratio if self.ratio else self.candidate / self.baseline if self.baseline else float("nan")

    @property
    def outcome(self) -> str:
        """'better' / 'worse' when the interval excludes 1, 'within noise' when it does not, 'as measured' without one."""
        if self.ratio is None or self.ratio.low is None:
            return "as measured"
        if self.ratio.low > 1 or self.ratio.high < 1:
            return "better" if (self.ratio.low > 1) == self.higher_is_better else "worse"
        return "within noise"


@dataclass
class PairComparison:
    """Everything compared between a baseline and a candidate."""

    baseline: Side
    candidate: Side
    metrics: list[MetricComparison] = field(default_factory=list)
    measures: list[MeasureComparison] = field(default_factory=list)

    @property
    def family(self) -> list[MetricComparison]:
        """The primary metrics that were tested (Holm's family)."""
        return [m for m in self.metrics if m.primary and m.test is not None]


def primary_metrics(task: str, available: list[str]) -> list[str]:
    """The task's metrics, primary first (the registry's order; else the order found)."""
    from .tasks import all_tasks

    known = all_tasks().get(task)
    order = list(known.metric_names) if known else []
    return [m for m in order if m in available] + [m for m in available if m not in order]


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["status"] == "ok") & frame["value"].notna()]


def paired_test(pairs: list[tuple[str, dict, dict]], metric: str) -> PairedTest | None:
    """The paired test of `metric` over (id, A's record, B's record) pairs (None when the records do not score it)."""
    first = pairs[0][1]
    stats_key = f"{metric}_stats"
    if stats_key in first and metric in CORPUS_SCORES:
        a = np.asarray([sa[stats_key] for _, sa, _ in pairs], dtype=np.float64)
        b = np.asarray([sb[stats_key] for _, _, sb in pairs], dtype=np.float64)
        return paired_resampled(a, b, CORPUS_SCORES[metric], kind="corpus")
    if not isinstance(first.get(metric), (int, float)):
        return None
    a = [float(sa[metric]) for _, sa, _ in pairs]
    b = [float(sb[metric]) for _, _, sb in pairs]
    return paired_binary(a, b) if metric in BINARY_METRICS else paired_resampled(a, b)


def _task_comparisons(a: Side, b: Side, rows_a: pd.DataFrame, rows_b: pd.DataFrame, only: set[str] | None) -> list[MetricComparison]:
    found = []
    tasks = [t for t in dict.fromkeys(rows_a["task"]) if not str(t).startswith("measure:")]
    for task in tasks:
        mine, theirs = rows_a[rows_a["task"] == task], rows_b[rows_b["task"] == task]
        metrics = primary_metrics(task, [m for m in mine["metric"] if m != "error"])
        pairs = joined(a, b, task)
        for index, metric in enumerate(metrics):
            if only is not None and metric not in only:
                continue
            row = mine[mine["metric"] == metric].iloc[0]
            other = theirs[theirs["metric"] == metric]
            higher = bool(row["higher_is_better"]) if pd.notna(row["higher_is_better"]) else True
            comparison = MetricComparison(task, metric, higher, primary=index == 0)
            found.append(comparison)
            problem = _why_not(row, other, a, b, pairs)
            if problem:
                comparison.note = problem
                continue
            comparison.test = paired_test(pairs, metric)
            if comparison.test is None:
                comparison.note = "no per-example scores recorded"
            elif comparison.test.n < (most := int(max(row["n"] or 0, other.iloc[0]["n"] or 0))):
                comparison.note = f"{comparison.test.n} examples finished by both (of {most})"
    return found


def _why_not(row: pd.Series, other: pd.DataFrame, a: Side, b: Side, pairs) -> str:
    if row["status"] != "ok":
        return f"{row['status']} for {a.label}"
    if other.empty:
        return f"not run for {b.label}"
    if other.iloc[0]["status"] != "ok":
        return f"{other.iloc[0]['status']} for {b.label}"
    if pairs is None:
        return "no per-example records (run made before they were saved)"
    if not pairs:
        return "no example finished by both"
    return ""


def _timings(side: Side, metric: str) -> list[float] | None:
    records = side.samples(LATENCY_TASK)
    if not records or metric not in records[0]:
        return None
    return [float(r[metric]) for r in records if r.get(metric) is not None]


def _measure_comparisons(a: Side, b: Side, rows_a: pd.DataFrame, rows_b: pd.DataFrame) -> list[MeasureComparison]:
    found = []
    for metric in (*LATENCY_METRICS, *MEMORY_METRICS):
        mine, theirs = _ok(rows_a[rows_a["metric"] == metric]), _ok(rows_b[rows_b["metric"] == metric])
        if mine.empty or theirs.empty:
            continue
        higher = bool(mine.iloc[0]["higher_is_better"])
        comparison = MeasureComparison(metric, higher, float(mine.iloc[0]["value"]), float(theirs.iloc[0]["value"]))
        timings_a, timings_b = _timings(a, metric), _timings(b, metric)
        if metric in LATENCY_METRICS and timings_a and timings_b:
            comparison.ratio = median_ratio(timings_a, timings_b)
        found.append(comparison)
    return found


def compare(a: Side, b: Side, frame_a: pd.DataFrame | None = None, frame_b: pd.DataFrame | None = None, metrics: set[str] | None = None) -> PairComparison:
    """Every task metric (or only `metrics`) and headline measurement of `b` against the baseline `a`, Holm-corrected over the tasks."""
    frame_a = load_results(a.run) if frame_a is None else frame_a
    frame_b = load_results(b.run) if frame_b is None else frame_b
    rows_a = frame_a[frame_a["variant_json"] == a.variant_json]
    rows_b = frame_b[frame_b["variant_json"] == b.variant_json]
    result = PairComparison(a, b, _task_comparisons(a, b, rows_a, rows_b, metrics), _measure_comparisons(a, b, rows_a, rows_b))
    family = result.family
    for comparison, adjusted in zip(family, holm([m.test.p for m in family])):
        comparison.p_holm = adjusted
    return result


def compare_to_baseline(run: str | Path, baseline: str | None = None, frame: pd.DataFrame | None = None) -> list[PairComparison]:
    """Each other variant of a run against the baseline (its first variant, or the one named)."""
    frame = load_results(run) if frame is None else frame
    found = sides(run, frame)
    if not found:
        return []
    base = find_side(found, baseline) if baseline else next(iter(found.values()))
    return [compare(base, side, frame, frame) for side in found.values() if side != base]


def compare_runs(earlier: str | Path, later: str | Path) -> list[PairComparison]:
    """Each variant present in both runs, the later run's against the earlier's (run-to-run reproducibility and noise)."""
    frame_a, frame_b = load_results(earlier), load_results(later)
    names = (Path(earlier).name, Path(later).name)
    tags = names if names[0] != names[1] else ("earlier", "later")
    by_json = {s.variant_json: s for s in sides(later, frame_b).values()}
    pairs = []
    for side in sides(earlier, frame_a).values():
        if side.variant_json in by_json:
            a = Side(side.run, side.variant, side.variant_json, tags[0])
            b = Side(by_json[side.variant_json].run, side.variant, side.variant_json, tags[1])
            pairs.append(compare(a, b, frame_a, frame_b))
    return pairs
