"""Comparison table and plotly charts of a results table (the CLI's `report` and the app's Compare tab).

`charts(df)` returns plotly Figures: accuracy against decode speed and against peak memory (one
point per variant, the Pareto front marked), latency and memory bars, realised sparsity per layer.
"Accuracy" on the scatter plots is the mean of the accuracy-type metrics (acc, exact_match) over
the tasks that every plotted variant finished, so variants are compared on the same tasks.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from .results import load_results

ACCURACY_METRICS = ("acc", "exact_match")  # fractions in [0, 1], higher is better
SPEED = "decode_tokens_per_s_median"
MEMORY = "peak_memory_bytes"
LATENCY_METRICS = ("prefill_tokens_per_s_median", "decode_tokens_per_s_median", "ttft_s_median")
MEMORY_METRICS = ("weight_bytes_loaded", "peak_memory_bytes", "kv_cache_bytes")


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with a finished value."""
    return df[(df["status"] == "ok") & df["value"].notna()]


def _cell(value: float, stderr: float | None, metric: str) -> str:
    if "bytes" in metric:
        return f"{value / 2**20:.1f} MiB"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif metric.startswith("ttft"):
        text = f"{value * 1000:.1f} ms"
    else:
        text = f"{value:.3f}"
    return f"{text} ± {stderr:.3f}" if stderr is not None and pd.notna(stderr) else text


def comparison_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per variant; columns task/metric for accuracy and the headline measurements (as text)."""
    rows = df[df["task"].str.startswith("measure:") == False]  # noqa: E712 - pandas elementwise
    rows = rows[rows["metric"] != "error"]
    heads = df[df["metric"].isin((*LATENCY_METRICS, *MEMORY_METRICS))]
    table: dict[str, dict[str, str]] = {}
    for _, r in pd.concat([rows, heads]).iterrows():
        column = r["metric"] if str(r["task"]).startswith("measure:") else f"{r['task']}/{r['metric']}"
        if r["status"] == "skipped":
            text = "skipped"
        elif r["value"] is None or pd.isna(r["value"]):
            text = "—"
        else:
            text = _cell(float(r["value"]), r["stderr"], r["metric"])
        table.setdefault(r["variant"], {})[column] = text
    for _, r in df[df["status"] == "error"].iterrows():
        table.setdefault(r["variant"], {})[f"{r['task']} error"] = str(r["note"])[:80]
    warned = df[df["warning"].fillna("") != ""] if "warning" in df else df.iloc[:0]  # logs written before the column
    for _, r in warned.iterrows():
        table.setdefault(r["variant"], {})["warning"] = str(r["warning"])
    return pd.DataFrame.from_dict(table, orient="index").rename_axis("variant").fillna("—")


def variant_points(df: pd.DataFrame) -> pd.DataFrame:
    """Per variant: mean accuracy over the tasks all variants finished, decode speed, peak memory."""
    ok = ok_rows(df)
    acc = ok[ok["metric"].isin(ACCURACY_METRICS)]
    # one accuracy metric per task (acc for multiple choice, exact_match for generation)
    acc = acc.sort_values("metric").drop_duplicates(["variant", "task"])
    variants = sorted(ok["variant"].unique())
    common = [t for t, g in acc.groupby("task") if set(g["variant"]) >= set(variants)]
    points = pd.DataFrame(index=pd.Index(variants, name="variant"))
    points["accuracy"] = acc[acc["task"].isin(common)].groupby("variant")["value"].mean()
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


def _scatter(points: pd.DataFrame, x: str, x_title: str, x_higher: bool, title: str) -> go.Figure:
    points = points.dropna(subset=[x, "accuracy"])
    fig = go.Figure()
    if points.empty:
        fig.update_layout(title=f"{title} (no variant has both numbers yet)")
        return fig
    front = pareto_front(points, x, "accuracy", x_higher)
    fig.add_trace(go.Scatter(x=points[x], y=points["accuracy"], mode="markers+text", text=points["variant"], textposition="top center", name="variants", marker={"size": 11}, cliponaxis=False))
    best = points[front].sort_values(x)
    fig.add_trace(go.Scatter(x=best[x], y=best["accuracy"], mode="lines+markers", name="Pareto front", line={"dash": "dash"}, marker={"size": 15, "symbol": "circle-open"}))
    tasks = int(points["tasks"].iloc[0])
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=f"mean accuracy ({tasks} tasks)", template="plotly_white")
    low, high = float(points[x].min()), float(points[x].max())
    pad = 0.15 * (high - low) or 0.15 * abs(high) or 1.0  # room for the labels at both ends
    fig.update_xaxes(range=[low - pad, high + pad])
    return fig


def _bars(df: pd.DataFrame, metrics: tuple[str, ...], title: str, scale: float = 1.0, unit: str = "") -> go.Figure:
    ok = ok_rows(df)
    fig = go.Figure()
    for metric in metrics:
        rows = ok[ok["metric"] == metric]
        fig.add_trace(go.Bar(x=rows["variant"], y=rows["value"] / scale, name=metric))
    fig.update_layout(title=title, barmode="group", yaxis_title=unit, template="plotly_white")
    return fig


def sparsity_figure(df: pd.DataFrame) -> go.Figure:
    """Realised fraction of zero gate activations per layer, one line per variant."""
    rows = ok_rows(df)
    rows = rows[rows["task"] == "measure:sparsity"]
    fig = go.Figure()
    for variant, group in rows.groupby("variant"):
        layers = group["metric"].str.replace("layer_", "").astype(int)
        fig.add_trace(go.Scatter(x=layers, y=group["value"], mode="lines+markers", name=variant))
    fig.update_layout(title="Realised activation sparsity per layer", xaxis_title="layer", yaxis_title="fraction of exact zeros", template="plotly_white")
    return fig


def charts(df: pd.DataFrame) -> dict[str, go.Figure]:
    """Every chart of a results table, by name."""
    points = variant_points(df)
    return {
        "accuracy_vs_decode": _scatter(points, "decode_tokens_per_s", "decode tokens/s (median)", True, "Accuracy against decode speed"),
        "accuracy_vs_memory": _scatter(points, "peak_memory_mib", "peak memory (MiB)", False, "Accuracy against peak memory"),
        "latency": _bars(df, ("prefill_tokens_per_s_median", "decode_tokens_per_s_median"), "Throughput (median)", unit="tokens/s"),
        "time_to_first_token": _bars(df, ("ttft_s_median", "ttft_s_p95"), "Time to first token", unit="s"),
        "memory": _bars(df, MEMORY_METRICS, "Memory", scale=2**20, unit="MiB"),
        "sparsity": sparsity_figure(df),
    }


def write_report(out_dir: str | Path) -> dict[str, Path]:
    """Write every chart as HTML under <out_dir>/charts (plotly.js saved once beside them, for offline viewing)."""
    df = load_results(out_dir)
    folder = Path(out_dir) / "charts"
    folder.mkdir(exist_ok=True)
    paths = {}
    for name, fig in charts(df).items():
        paths[name] = folder / f"{name}.html"
        fig.write_html(paths[name], include_plotlyjs="directory", full_html=True)
    comparison_table(df).to_csv(folder / "comparison.csv")
    return paths
