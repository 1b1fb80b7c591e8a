"""The Compare tab's logic: which variants, which suites and measurements, one evals run, its table and charts.

Runs are evals.runner runs: each writes a folder under the Workbench's results root (log, CSV,
JSON), so earlier runs stay listed and comparisons accumulate. Nothing here computes a metric.
"""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from g3n_core import G3nError, ModelCache, Variant, parse_variant_spec

from .feedback import progress_callback, readable_error
from .safety import allowed_model, allowed_path, offer_download
from .workbench import Workbench

MIN_VARIANTS, MAX_VARIANTS = 2, 6
CHART_TITLES = {  # evals' chart names, in page order, with the label each plot carries
    "accuracy_vs_decode": "Accuracy vs decode speed",
    "accuracy_vs_memory": "Accuracy vs memory",
    "latency": "Throughput",
    "time_to_first_token": "Time to first token",
    "memory": "Memory",
    "sparsity": "Realised sparsity per layer",
}
CHARTS = tuple(CHART_TITLES)
DEFAULT_TASKS = ("builtin_mc", "builtin_image_qa")
DEFAULT_LIMIT = 8


def suggested_variants(bench: Workbench) -> dict[str, Variant]:
    """The launch variant and a few one-knob changes of it, by name."""
    base = bench.default_variant
    changes = [{}, {"attn": "eager" if base.attn != "eager" else "sdpa"}, {"sparsity": "off" if base.sparsity != "off" else "default"}]
    changes.append({"dtype": "bfloat16" if base.dtype != "bfloat16" else "float32"})
    changes.append({"towers": ()} if base.towers else {"towers": ("vision", "audio")})
    variants = {}
    for change in changes:
        try:
            variant = base.replace(**change)
        except G3nError:
            continue  # e.g. a dtype this device cannot run
        variants[variant.name] = variant
    return variants


def variant_label(chosen: dict[str, Variant], variant: Variant) -> str:
    """The variant's name, numbered when a different variant already has it (names shorten long knobs)."""
    label, n = variant.name, 1
    while label in chosen and chosen[label] != variant:
        n += 1
        label = f"{variant.name} #{n}"
    return label


def add_variant(chosen: dict[str, Variant], variant: Variant, selected: list[str] | None = None) -> tuple[dict, gr.Dropdown]:
    """`variant` added to the known variants and to the selection (the last six kept)."""
    label = variant_label(chosen, variant)
    chosen = {**chosen, label: variant}
    selected = [n for n in (selected or []) if n in chosen]
    if label not in selected:
        selected.append(label)
    return chosen, gr.Dropdown(choices=list(chosen), value=selected[-MAX_VARIANTS:], multiselect=True)


def add_spec(bench: Workbench, chosen: dict[str, Variant], selected: list[str], spec: str) -> tuple[dict, gr.Dropdown, str]:
    """Parse a spec like 'tiny attn=eager sparsity=off' and add it; clears the spec box. Folders pass the app's allow-list."""
    try:
        variant = parse_variant_spec(spec, check_model=lambda model: allowed_model(model, bench.model_roots))
    except G3nError as err:
        raise readable_error(err) from err
    chosen, dropdown = add_variant(chosen, variant, selected)
    return chosen, dropdown, ""


def picked_variants(chosen: dict[str, Variant], names: list[str]) -> list[Variant]:
    """The selected variants, checked to be between two and six."""
    names = [n for n in names or [] if n in chosen]
    if not MIN_VARIANTS <= len(names) <= MAX_VARIANTS:
        raise gr.Error(f"Pick {MIN_VARIANTS} to {MAX_VARIANTS} variants to compare (now {len(names)}).", title="Variants")
    return [chosen[n] for n in names]


def task_choices() -> list[tuple[str, str]]:
    """(label, name) of every evals task, the offline built-in ones first."""
    from evals.tasks import all_tasks

    return [(f"{name} ({task.suite})", name) for name, task in all_tasks().items()]


def measure_choices() -> list[str]:
    """The measurements evals can take beside accuracy."""
    from evals.measure import MEASURES

    return list(MEASURES)


def new_run_dir(root: Path, variants: list[Variant]) -> Path:
    """A fresh, sortable run folder: <root>/<time>-<n>-variants."""
    return Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{len(variants)}-variants"


def page_charts(df: pd.DataFrame) -> dict[str, go.Figure]:
    """evals' charts of a results table, laid out for the page, in CHARTS order."""
    from evals.report import charts

    figures = charts(df)
    return {name: _styled(name, figures.get(name)) for name in CHARTS}


def results_view(df: pd.DataFrame, run_dir: Path, downloads_dir: Path) -> tuple:
    """What the page shows for a results table: comparison table, one plot per chart, CSV+JSON files (download copies)."""
    from evals.report import comparison_table
    from evals.results import export

    csv, js = (offer_download(f, downloads_dir, Path(run_dir).name) for f in export(df, run_dir))
    table = comparison_table(df).reset_index()
    # A chart with nothing to draw (its measurement was not picked) is hidden rather than shown as empty axes.
    plots = [gr.Plot(value=fig, visible=_has_data(fig)) for fig in page_charts(df).values()]
    return (table, *plots, [str(csv), str(js)])


def _has_data(figure: go.Figure) -> bool:
    return any(trace.x is not None and len(trace.x) > 0 for trace in figure.data)


def _styled(name: str, figure: go.Figure | None) -> go.Figure:
    """Page layout for evals' figures: one height, legends below, room for point labels, throughput on a log axis."""
    figure = figure or go.Figure()
    figure.update_layout(height=360, margin=dict(l=55, r=25, t=50, b=45), legend=dict(orientation="h", y=-0.28))
    if name.startswith("accuracy_vs_"):
        xs = [float(x) for trace in figure.data if trace.x is not None for x in trace.x if x is not None]
        if xs:
            low, high = min(xs), max(xs)
            pad = 0.25 * (high - low) or 0.25 * abs(high) or 1.0
            figure.update_xaxes(range=[low - pad, high + pad])
    if name == "latency":  # prefill runs ~50x faster than decode: on a linear axis decode bars vanish
        figure.update_yaxes(type="log")
    return figure


def run_comparison(
    bench: Workbench,
    chosen: dict[str, Variant],
    names: list[str],
    tasks: list[str],
    measures: list[str],
    limit: float,
    repeats: float = 5,
    progress: gr.Progress = gr.Progress(),
) -> tuple:
    """Run the selected variants x tasks x measurements with evals; (table, charts..., files, run list)."""
    from evals.measure import MeasureSettings
    from evals.runner import run

    variants = picked_variants(chosen, names)
    if not tasks and not measures:
        raise gr.Error("Pick at least one suite or measurement.", title="Nothing to run")
    run_dir = new_run_dir(bench.results_root, variants)
    try:
        # Its own cache: the memory measurement loads each variant afresh, without evicting the chat's models.
        df = run(variants, list(tasks), run_dir, measures=list(measures), limit=int(limit) or None, cache=ModelCache(),
                 measure_settings=MeasureSettings(repeats=int(repeats)), progress=progress_callback(progress))
    except G3nError as err:
        raise readable_error(err) from err
    return (*results_view(df, run_dir, bench.downloads_dir), runs_dropdown(bench, str(run_dir)))


def earlier_runs(bench: Workbench) -> list[tuple[str, str]]:
    """(label, path) of the run folders under the results root, newest first."""
    from evals.results import list_runs

    if not Path(bench.results_root).is_dir():
        return []
    return [
        (f"{run['name']} · {len(run['variants'])} variants · {', '.join(t.removeprefix('measure:') for t in run['tasks'])}", run["path"])
        for run in list_runs(bench.results_root)
    ]


def runs_dropdown(bench: Workbench, value: str | None = None) -> gr.Dropdown:
    """The earlier-runs dropdown, refreshed."""
    return gr.Dropdown(choices=earlier_runs(bench), value=value)


def show_run(bench: Workbench, path: str) -> tuple:
    """The table, charts and files of an earlier run (only folders under the results root)."""
    from evals.results import load_results

    if not path:
        raise gr.Error("Choose a run first.", title="Earlier runs")
    folder = allowed_path(path, (Path(bench.results_root),))
    if folder is None:
        raise gr.Error("That folder is not one of this app's runs.", title="Earlier runs")
    try:
        df = load_results(folder)
    except G3nError as err:
        raise readable_error(err) from err
    return results_view(df, folder, bench.downloads_dir)
