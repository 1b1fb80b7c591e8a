"""Readable results of a run: the comparison table, plotly charts, the verdict (CLI `report` and the app's Compare tab).

`comparison_table(df)` has one row per variant; its headers say the metric, its unit and which
direction is better (↑ / ↓), each column kind has one number format, and `markdown=True` puts
the best value of each column in bold. `charts(df)` returns plotly Figures: accuracy (0 to 1,
95% error bars) against decode speed and against peak memory, one point per variant with the
Pareto front marked and the points that are not significantly less accurate than the front
marked too (`within_noise`), and one linear bar chart per measurement. "Accuracy" on the scatter
plots is the mean of the accuracy-type metrics (acc, exact_match) over the tasks that every
plotted variant finished. `write_report(run)` writes the charts, comparison.csv and verdict.md
(`write_report(run, against=earlier)`: verdict-vs-<earlier>.md, each variant against itself there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from g3n_core.errors import G3nError

from .diff import sides
from .manifest import read_manifest, summary_lines
from .metrics import HUNDRED_SCALE
from .paired import MEMORY_METRICS, PairComparison, compare, compare_runs, compare_to_baseline
from .results import atomic_write_text, load_results
from .verdict import verdict_lines, write_verdict

ACCURACY_METRICS = ("acc", "exact_match")  # fractions in [0, 1], higher is better
SPEED = "decode_tokens_per_s_median"
MEMORY = "peak_memory_bytes"
Z95 = 1.959964  # two-sided 95% normal quantile, for the accuracy error bars
# measurement -> (header, scale from the recorded unit); the unit goes in the header, cells hold numbers
MEASURE_HEADERS = {
    "prefill_tokens_per_s_median": ("prefill tokens/s", 1.0),
    "decode_tokens_per_s_median": ("decode tokens/s", 1.0),
    "ttft_s_median": ("TTFT ms", 1000.0),
    "weight_bytes_loaded": ("weights MiB", 2**-20),
    "peak_memory_bytes": ("peak memory MiB", 2**-20),
    "kv_cache_bytes": ("KV cache MiB", 2**-20),
}


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with a finished value."""
    return df[(df["status"] == "ok") & df["value"].notna()]


def _arrow(higher) -> str:
    return "" if higher is None or pd.isna(higher) else " ↑" if bool(higher) else " ↓"


def _header(task: str, metric: str, higher) -> str:
    if task.startswith("measure:"):
        return MEASURE_HEADERS[metric][0] + _arrow(higher)
    return f"{task} {metric}{_arrow(higher)}"


def _number(task: str, metric: str, value: float, stderr) -> str:
    """One format per column kind: fractions 3 decimals (± stderr), 0-100 scores 1 decimal, measurements 1 decimal in their header's unit."""
    if task.startswith("measure:"):
        return f"{value * MEASURE_HEADERS[metric][1]:,.1f}"
    text = f"{value:.1f}" if metric in HUNDRED_SCALE else f"{value:.3f}"
    return f"{text} ± {stderr:.3f}" if stderr is not None and pd.notna(stderr) else text


def comparison_table(df: pd.DataFrame, markdown: bool = False) -> pd.DataFrame:
    """One row per variant; a column per task metric and headline measurement (text cells; best in bold when `markdown`)."""
    rows = df[(~df["task"].astype(str).str.startswith("measure:")) & (df["metric"] != "error")]
    heads = df[df["task"].astype(str).str.startswith("measure:") & df["metric"].isin(MEASURE_HEADERS)]
    table: dict[str, dict[str, str]] = {}
    best: dict[str, tuple[bool, list[tuple[str, float]]]] = {}
    for _, r in pd.concat([rows, heads]).iterrows():
        column = _header(str(r["task"]), r["metric"], r["higher_is_better"])
        if r["status"] in ("skipped", "unsupported"):
            text = r["status"]
        elif r["value"] is None or pd.isna(r["value"]):
            text = "—"
        else:
            text = _number(str(r["task"]), r["metric"], float(r["value"]), r["stderr"])
            if pd.notna(r["higher_is_better"]):
                best.setdefault(column, (bool(r["higher_is_better"]), []))[1].append((r["variant"], float(r["value"])))
        table.setdefault(r["variant"], {})[column] = text
    for _, r in df[df["status"] == "error"].iterrows():
        table.setdefault(r["variant"], {})[f"{r['task']} error"] = str(r["note"])[:80]
    warned = df[df["warning"].fillna("") != ""] if "warning" in df else df.iloc[:0]  # logs written before the column
    for _, r in warned.iterrows():
        table.setdefault(r["variant"], {})["warning"] = str(r["warning"])
    if markdown:
        for column, (higher, values) in best.items():
            top = max(v for _, v in values) if higher else min(v for _, v in values)
            if len(values) > 1 and any(v != top for _, v in values):  # a column where every variant ties has no best
                for variant, value in values:
                    if value == top:
                        table[variant][column] = f"**{table[variant][column]}**"
    order = df.groupby("variant")["finished_at"].min().sort_values(kind="stable").index  # the order the variants ran
    frame = pd.DataFrame.from_dict(table, orient="index").rename_axis("variant").fillna("—")
    measured = [c for label, _ in MEASURE_HEADERS.values() for c in frame.columns if c.startswith(label + " ") and c.endswith(("↑", "↓"))]
    errors = [c for c in frame.columns if c.endswith(" error")]
    columns = [c for c in frame.columns if c not in measured and c not in errors] + measured + errors
    return frame.loc[[v for v in order if v in frame.index], columns]


def variant_points(df: pd.DataFrame) -> pd.DataFrame:
    """Per variant: mean accuracy (and its 95% half-width) over the tasks all variants finished, decode speed, peak memory."""
    ok = ok_rows(df)
    acc = ok[ok["metric"].isin(ACCURACY_METRICS)]
    # one accuracy metric per task (acc for multiple choice, exact_match for generation)
    acc = acc.sort_values("metric").drop_duplicates(["variant", "task"])
    variants = list(dict.fromkeys(ok["variant"]))
    common = [t for t, g in acc.groupby("task") if set(g["variant"]) >= set(variants)]
    used = acc[acc["task"].isin(common)]
    points = pd.DataFrame(index=pd.Index(variants, name="variant"))
    points["accuracy"] = used.groupby("variant")["value"].mean()
    # the mean of independent task accuracies: its standard error is sqrt(sum of squared errors) / tasks
    points["accuracy_error"] = used.groupby("variant")["stderr"].apply(lambda s: Z95 * math.sqrt((s.fillna(0) ** 2).sum()) / max(1, len(s)))
    points["tasks"] = len(common)
    for column, metric in (("decode_tokens_per_s", SPEED), ("peak_memory_mib", MEMORY)):
        values = ok[ok["metric"] == metric].set_index("variant")["value"]
        points[column] = values / 2**20 if metric == MEMORY else values
    return points.reset_index()


def pareto_front(points: pd.DataFrame, x: str, y: str, x_higher_is_better: bool) -> pd.Series:
    """True for points no other point beats on both axes (y higher is better)."""
    sign = 1 if x_higher_is_better else -1
    flags = []
    for _, p in points.iterrows():
        dominated = any(
            (sign * q[x] >= sign * p[x]) and (q[y] >= p[y]) and ((sign * q[x] > sign * p[x]) or (q[y] > p[y]))
            for _, q in points.iterrows()
        )
        flags.append(not dominated)
    return pd.Series(flags, index=points.index)


def within_noise(run: str | Path, df: pd.DataFrame, x: str, x_higher_is_better: bool) -> set[str]:
    """Variants off the Pareto front whose accuracy no front variant that dominates them beats significantly (paired tests, Holm)."""
    points = variant_points(df).dropna(subset=[x, "accuracy"]).reset_index(drop=True)
    if len(points) < 2:
        return set()
    front = pareto_front(points, x, "accuracy", x_higher_is_better)
    found = sides(run, df)
    sign = 1 if x_higher_is_better else -1
    noisy = set()
    for i, p in points[~front].iterrows():
        for _, q in points[front].iterrows():
            if not (sign * q[x] >= sign * p[x] and q["accuracy"] >= p["accuracy"]):
                continue
            result = compare(found[q["variant"]], found[p["variant"]], df, df, metrics=set(ACCURACY_METRICS))
            if result.family and all(m.outcome == "no detectable difference" for m in result.family):
                noisy.add(p["variant"])
                break
    return noisy


def _scatter(points: pd.DataFrame, x: str, x_title: str, x_higher: bool, title: str, noisy: set[str]) -> go.Figure:
    points = points.dropna(subset=[x, "accuracy"])
    fig = go.Figure()
    if points.empty:
        fig.update_layout(title=f"{title} (no variant has both numbers yet)")
        return fig
    front = pareto_front(points, x, "accuracy", x_higher)
    error = {"type": "data", "array": points["accuracy_error"].tolist(), "visible": True}
    fig.add_trace(go.Scatter(x=points[x], y=points["accuracy"], error_y=error, mode="markers+text", text=points["variant"], textposition="top center",
                             name="variants (95% CI)", marker={"size": 11}, cliponaxis=False))  # fmt: skip
    best = points[front].sort_values(x)
    fig.add_trace(go.Scatter(x=best[x], y=best["accuracy"], mode="lines+markers", name="Pareto front", line={"dash": "dash"}, marker={"size": 15, "symbol": "circle-open"}))
    close = points[points["variant"].isin(noisy) & ~front]
    if not close.empty:
        fig.add_trace(go.Scatter(x=close[x], y=close["accuracy"], mode="markers", name="not significantly less accurate than the front",
                                 marker={"size": 17, "symbol": "diamond-open"}))  # fmt: skip
    tasks = int(points["tasks"].iloc[0])
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=f"mean accuracy ({tasks} tasks)", template="plotly_white")
    fig.update_yaxes(range=[0, 1.05])
    low, high = float(points[x].min()), float(points[x].max())
    pad = 0.15 * (high - low) or 0.15 * abs(high) or 1.0  # room for the labels at both ends
    fig.update_xaxes(range=[low - pad, high + pad])
    return fig


def _bars(df: pd.DataFrame, series: tuple[tuple[str, str, float], ...], title: str, unit: str) -> go.Figure:
    """One bar per variant for each (metric, legend label, scale) of `series`."""
    ok = ok_rows(df)
    fig = go.Figure()
    for metric, label, scale in series:
        rows = ok[ok["metric"] == metric]
        fig.add_trace(go.Bar(x=rows["variant"], y=rows["value"] * scale, name=label))
    fig.update_layout(title=title, barmode="group", yaxis_title=unit, template="plotly_white")
    return fig


def _series(*metrics: str) -> tuple[tuple[str, str, float], ...]:
    return tuple((m, *MEASURE_HEADERS[m]) for m in metrics)


def sparsity_figure(df: pd.DataFrame) -> go.Figure:
    """Realised fraction of zero gate activations per layer, one line per variant."""
    rows = ok_rows(df)
    rows = rows[rows["task"] == "measure:sparsity"]
    fig = go.Figure()
    for variant, group in rows.groupby("variant"):
        layers = group["metric"].str.replace("layer_", "").astype(int)
        fig.add_trace(go.Scatter(x=layers, y=group["value"], mode="lines+markers", name=variant))
    fig.update_layout(title="Realised activation sparsity per layer", xaxis_title="layer", yaxis_title="fraction of exact zeros", template="plotly_white")
    fig.update_yaxes(range=[0, 1.05])
    return fig


def charts(df: pd.DataFrame, noisy: dict[str, set[str]] | None = None) -> dict[str, go.Figure]:
    """Every chart of a results table, by name; `noisy` marks, per scatter chart, the points within noise of its front."""
    points = variant_points(df)
    noisy = noisy or {}
    return {
        "accuracy_vs_decode": _scatter(points, "decode_tokens_per_s", "decode tokens/s (median)", True, "Accuracy against decode speed", noisy.get("accuracy_vs_decode", set())),
        "accuracy_vs_memory": _scatter(points, "peak_memory_mib", "peak memory (MiB)", False, "Accuracy against peak memory", noisy.get("accuracy_vs_memory", set())),
        "prefill": _bars(df, _series("prefill_tokens_per_s_median"), "Prefill (median)", "tokens/s"),
        "decode": _bars(df, _series("decode_tokens_per_s_median"), "Decode (median)", "tokens/s"),
        "time_to_first_token": _bars(df, (*_series("ttft_s_median"), ("ttft_s_p95", "TTFT p95 ms", 1000.0)), "Time to first token", "ms"),
        "memory": _bars(df, _series(*MEMORY_METRICS), "Memory", "MiB"),
        "sparsity": sparsity_figure(df),
    }  # fmt: skip


def run_charts(run: str | Path, df: pd.DataFrame | None = None) -> dict[str, go.Figure]:
    """`charts` of a run folder, with the points within noise of each Pareto front marked (from the run's per-example records)."""
    df = load_results(run) if df is None else df
    noisy = {
        "accuracy_vs_decode": within_noise(run, df, "decode_tokens_per_s", True),
        "accuracy_vs_memory": within_noise(run, df, "peak_memory_mib", False),
    }
    return charts(df, noisy)


@dataclass
class Report:
    """Everything `report` shows of a run: the table, the charts, the comparisons and the manifest summary."""

    run: Path
    frame: pd.DataFrame
    comparisons: list[PairComparison]
    figures: dict[str, go.Figure]
    manifest: list[str]
    against: Path | None = None

    def verdict_lines(self) -> list[str]:
        """One line per compared variant."""
        return verdict_lines(self.comparisons)


def manifest_lines(run: str | Path) -> list[str]:
    """The manifest summary of a run, or a line saying it has none."""
    try:
        return summary_lines(read_manifest(run))
    except G3nError as err:
        return [f"no manifest: {err}"]


def build_report(run: str | Path, baseline: str | None = None, against: str | Path | None = None) -> Report:
    """The run's variants against a baseline (its first variant, or the one named), or with `against` each variant against itself in that run."""
    df = load_results(run)
    found = compare_runs(against, run) if against is not None else compare_to_baseline(run, baseline, df)
    return Report(Path(run), df, found, run_charts(run, df), manifest_lines(run), Path(against) if against is not None else None)


def save_report(report: Report) -> dict[str, Path]:
    """Write each chart as HTML under <run>/charts (plotly.js once beside them), comparison.csv, and verdict.md.

    Against another run the verdict goes to verdict-vs-<other>.md, so the run's own verdict stays.
    """
    folder = report.run / "charts"
    folder.mkdir(exist_ok=True)
    paths = {}
    for name, fig in report.figures.items():
        paths[name] = folder / f"{name}.html"
        fig.write_html(paths[name], include_plotlyjs="directory", full_html=True)
    atomic_write_text(folder / "comparison.csv", comparison_table(report.frame).to_csv())
    if report.against is None:
        paths["verdict"] = write_verdict(report.run, report.comparisons, manifest_lines=report.manifest)
    else:
        title = f"{report.run.name} against {report.against.name}"
        paths["verdict"] = write_verdict(report.run, report.comparisons, name=f"verdict-vs-{report.against.name}.md", title=title, manifest_lines=report.manifest)
    return paths


def write_report(run: str | Path, baseline: str | None = None, against: str | Path | None = None) -> dict[str, Path]:
    """`save_report(build_report(...))`: charts, comparison.csv and the verdict of a run folder."""
    return save_report(build_report(run, baseline, against))


def reproduction_mismatches(earlier: pd.DataFrame, later: pd.DataFrame) -> tuple[int, list[str]]:
    """(task metrics compared, those whose values differ) between two runs of the same variants and tasks."""

    def values(frame: pd.DataFrame) -> dict[tuple, float]:
        rows = ok_rows(frame)
        rows = rows[~rows["task"].astype(str).str.startswith("measure:")]
        return {(r["variant_json"], r["task"], r["metric"]): float(r["value"]) for _, r in rows.iterrows()}

    a, b = values(earlier), values(later)
    names = dict(zip(later["variant_json"], later["variant"]))
    common = sorted(set(a) & set(b))
    return len(common), [f"{names.get(k[0], k[0])} · {k[1]} {k[2]}: {a[k]} then {b[k]}" for k in common if a[k] != b[k]]
