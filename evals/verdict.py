"""Verdicts in words: one line per variant against the baseline, a table of every test, verdict.md.

Example line (from docs/evals.md's worked example on tiny, which explains how to read it):

    tiny sdpa fp32 sp:off vs tiny sdpa fp32: decode x2.22 (2.01-2.49), prefill x2.41 (1.42-4.91), TTFT x0.43
    (0.31-0.55), peak memory -60%; accuracy: no detectable difference on builtin_mc acc (n=48, -2.1 points,
    95% CI -12..8.4, p=1, Holm 1; could detect 16 points); ...

Latency figures are ratios of medians (candidate / baseline) with their 95% bootstrap interval;
memory is the change as measured (weights and KV cache only when they change); each task's primary metric is better / worse / no detectable
difference, with n, the difference in points, its interval, the p-value (Holm-adjusted when
several tasks are compared) and the smallest difference the test could have detected.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .paired import MEMORY_METRICS, MeasureComparison, MetricComparison, PairComparison
from .results import atomic_write_text

VERDICT_FILE = "verdict.md"
MEASURE_LABELS = {
    "decode_tokens_per_s_median": "decode",
    "prefill_tokens_per_s_median": "prefill",
    "ttft_s_median": "TTFT",
    "peak_memory_bytes": "peak memory",
    "weight_bytes_loaded": "weights",
    "kv_cache_bytes": "KV cache",
}


def p_text(p: float) -> str:
    """A p-value with two significant digits (p<0.001 below that)."""
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"


def points_text(value: float, signed: bool = False) -> str:
    """Points with one decimal below 10, none above (signed for differences)."""
    digits = 1 if abs(value) < 10 else 0
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def measure_text(m: MeasureComparison) -> str:
    """'decode x2.22 (2.01-2.49)' for latency; 'peak memory -60%' for memory."""
    label = MEASURE_LABELS.get(m.metric, m.metric)
    if m.metric in MEMORY_METRICS:
        change = m.change
        return f"{label} {'n/a' if not math.isfinite(change) else f'{(change - 1) * 100:+.0f}%'}"
    text = f"{label} x{m.change:.2f}"
    if m.ratio and m.ratio.low is not None:
        text += f" ({m.ratio.low:.2f}-{m.ratio.high:.2f})"
    return text


def _detectable(m: MetricComparison) -> str:
    if m.test.detectable is not None:
        return f"could detect {points_text(m.test.detectable * m.scale)} points"
    if m.test.kind == "binary":
        return "too few examples to detect any difference"
    return "no spread between examples to size a detectable difference"  # resampling identical scores


def _p(m: MetricComparison, family_size: int) -> str:
    text = p_text(m.test.p)
    if m.p_holm is not None and family_size > 1:
        text += f", Holm {m.p_holm:.2g}"
    return text


def metric_text(m: MetricComparison, family_size: int = 1) -> str:
    """'worse on builtin_mc acc (n=48, -12.5 points, 95% CI -20.1..-4.9, p=0.002; could detect 16 points)'."""
    t = m.test
    s = m.scale
    body = f"n={t.n}, {points_text(t.diff * s, signed=True)} points, 95% CI {points_text(t.low * s)}..{points_text(t.high * s)}, {_p(m, family_size)}"
    return f"{m.outcome} on {m.task} {_named(m)} ({body}; {_detectable(m)})"


def _named(m: MetricComparison) -> str:
    """The metric's name, with ↓ where lower is better (a negative difference is then an improvement)."""
    return m.metric if m.higher_is_better else f"{m.metric} ↓"


def verdict_line(c: PairComparison) -> str:
    """The one-line verdict of a candidate against its baseline."""
    parts = []
    order = list(MEASURE_LABELS)
    shown = [m for m in c.measures if m.metric not in MEMORY_METRICS or m.metric == "peak_memory_bytes" or abs(m.change - 1) >= 0.005]
    measures = ", ".join(measure_text(m) for m in sorted(shown, key=lambda m: order.index(m.metric) if m.metric in order else len(order)))
    family = c.family
    phrases = [metric_text(m, len(family)) for m in family if not m.test.identical]
    same = [m for m in family if m.test.identical]
    if same:
        listed = ", ".join(f"{m.task} {_named(m)} (n={m.test.n}; {_detectable(m)})" for m in same)
        phrases.append(f"no detectable difference, identical on every example: {listed}")
    untested = [m for m in c.metrics if m.primary and m.test is None]
    if untested:
        phrases.append("not compared: " + ", ".join(f"{m.task} ({m.note})" for m in untested))
    if phrases:
        accuracy = "accuracy: " + "; ".join(phrases)
        if len(family) > 1:
            accuracy += f" [Holm-adjusted over {len(family)} tasks]"
        parts.append(accuracy)
    head = f"{c.candidate.label} vs {c.baseline.label}"
    if measures:
        head += f": {measures}"
    return head + (("; " if measures else ": ") + "; ".join(parts) if parts else "")


def verdict_lines(comparisons: list[PairComparison]) -> list[str]:
    """One verdict line per comparison."""
    return [verdict_line(c) for c in comparisons]


def tests_frame(comparisons: list[PairComparison]) -> pd.DataFrame:
    """Every test of every comparison as readable text, one row per (candidate, task, metric) and measurement."""
    rows = []
    for c in comparisons:
        family = len(c.family)
        for m in c.metrics:
            t = m.test
            row = {"variant": c.candidate.label, "baseline": c.baseline.label, "task": m.task, "metric": m.metric + ("" if m.primary else " (secondary)")}
            if t is None:
                rows.append(row | {"outcome": "not compared", "note": m.note})
                continue
            s = m.scale
            rows.append(row | {
                "n": t.n, "baseline value": f"{t.baseline * s:.1f}", "value": f"{t.candidate * s:.1f}",
                "difference (points)": points_text(t.diff * s, signed=True), "95% CI": f"{points_text(t.low * s)}..{points_text(t.high * s)}",
                "p": p_text(t.p).removeprefix("p="), "p (Holm)": f"{m.p_holm:.2g}" if m.p_holm is not None and family > 1 else "",
                "could detect (points)": points_text(t.detectable * s) if t.detectable is not None else "—",
                "test": {"binary": "exact McNemar", "corpus": "bootstrap (corpus)", "continuous": "bootstrap"}[t.kind],
                "outcome": m.outcome + (" (identical)" if t.identical else ""), "note": m.note,
            })  # fmt: skip
        for m in c.measures:
            ci = f"{m.ratio.low:.2f}-{m.ratio.high:.2f}" if m.ratio and m.ratio.low is not None else ""
            rows.append({"variant": c.candidate.label, "baseline": c.baseline.label, "task": "measure", "metric": m.metric,
                         "n": m.ratio.n_candidate if m.ratio else 1, "baseline value": f"{m.baseline:.4g}", "value": f"{m.candidate:.4g}",
                         "difference (points)": f"x{m.change:.2f}", "95% CI": ci, "test": "ratio of medians" if ci else "as measured",
                         "outcome": m.outcome})  # fmt: skip
    return pd.DataFrame(rows).fillna("")


HOW_TO_READ = """\
How to read this: latency is the candidate's median over the baseline's (x1.20 = 20% more tokens/s,
or 20% longer for TTFT) with a 95% bootstrap interval over the timing repeats; memory is as measured
(one measurement each). Accuracy compares the examples both variants finished: the difference in
points (candidate - baseline), its 95% interval, the p-value of "no difference" (exact McNemar for
right/wrong scores, a paired randomisation test otherwise; Holm-adjusted when several tasks are
compared) and the smallest difference this many examples could have detected with 80% power.
"No detectable difference" is not "equal": a difference smaller than "could detect" would usually go
unnoticed with this many examples.
See docs/evals.md, "Reading a verdict".
"""


def verdict_markdown(comparisons: list[PairComparison], title: str = "Verdict", manifest_lines: list[str] | None = None) -> str:
    """verdict.md: the lines, how to read them, every test, and the run's manifest summary."""
    if not comparisons:
        return f"# {title}\n\nNothing to compare: the run has fewer than two variants with results.\n"
    baselines = sorted({c.baseline.label for c in comparisons})
    parts = [f"# {title}", f"Baseline: {', '.join(baselines)}", "\n".join(f"- {line}" for line in verdict_lines(comparisons)), HOW_TO_READ]
    parts += ["## Every test", tests_frame(comparisons).to_markdown(index=False)]
    if manifest_lines:
        parts += ["## Run", "\n".join(f"- {line}" for line in manifest_lines)]
    return "\n\n".join(parts) + "\n"


def write_verdict(out_dir: str | Path, comparisons: list[PairComparison], name: str = VERDICT_FILE, **options) -> Path:
    """Write verdict.md (or `name`) into a run folder (atomically)."""
    return atomic_write_text(Path(out_dir) / name, verdict_markdown(comparisons, **options))
