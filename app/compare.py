"""The Compare tab's logic: which variants, which suites and measurements, one evals run, its verdict, table and charts.

Runs are evals.runner runs: each writes a folder under the Workbench's results root (log, CSV,
JSON, manifest.json, verdict.md), so earlier runs stay listed and comparisons accumulate. The
verdict, the paired statistics and the disagreement list come from evals (report, paired, diff);
compare_view renders them. Nothing here computes a metric.
"""

from __future__ import annotations

import time
from html import escape
from pathlib import Path

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from g3n_core import G3nError, ModelCache, Variant, parse_variant_spec

from .compare_view import explorer_html, has_data, manifest_markdown, styled, verdict_markdown
from .feedback import progress_callback, readable_error
from .memory_fit import check_all_fit, variants_markdown
from .safety import allowed_model, allowed_path, check_remote_variant, offer_download
from .workbench import Workbench

MIN_VARIANTS, MAX_VARIANTS = 2, 6
CHART_TITLES = {  # evals' chart names, in page order, with the label each plot carries
    "accuracy_vs_decode": "Accuracy vs decode speed",
    "accuracy_vs_memory": "Accuracy vs memory",
    "prefill": "Prefill throughput",
    "decode": "Decode throughput",
    "time_to_first_token": "Time to first token",
    "memory": "Memory",
    "sparsity": "Realised sparsity per layer",
}
CHARTS = tuple(CHART_TITLES)
# What results_view returns, in order (compare_tab wires its components in the same order).
VIEW = ("run", "status", "results", "verdict", "baseline", "table", *CHARTS, "files", "manifest", "manifest_json", "a", "b", "task", "explorer")
DEFAULT_TASKS = ("builtin_mc", "builtin_image_qa")
DEFAULT_LIMIT = 8
RUN_RESERVE_BYTES = 32 * 2**20  # room made before a run (its log, tables and samples: well under this on the built-in suites)


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
        variant = check_remote_variant(variant, bench.remote_endpoints)
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


def picked_estimates(bench: Workbench, chosen: dict[str, Variant], names: list[str]) -> tuple[str, gr.Button]:
    """Each picked variant's memory estimate before Run; Run disabled while one cannot fit."""
    text, all_fit = variants_markdown(bench, {n: chosen[n] for n in names or [] if n in chosen})
    return text, gr.Button(interactive=all_fit)


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


def page_charts(df: pd.DataFrame, run_dir: Path | None = None) -> dict[str, go.Figure]:
    """evals' charts of a results table (of a run folder: with the points within noise of the front marked), in CHARTS order."""
    from evals.report import charts, run_charts

    figures = run_charts(run_dir, df) if run_dir is not None else charts(df)
    return {name: styled(name, figures.get(name)) for name in CHARTS}


def _explorer_defaults(names: list[str], frame: pd.DataFrame) -> tuple[str | None, str | None, str | None, list[str]]:
    """(A, B, task, tasks) the explorer opens on: the first two variants on the first task."""
    tasks = [t for t in dict.fromkeys(frame["task"]) if not str(t).startswith("measure:")]
    a, b = (names + [None, None])[:2]
    return a, b, (tasks[0] if tasks else None), tasks


def results_view(run_dir: Path, downloads_dir: Path, baseline: str | None = None) -> tuple:
    """What the page shows of a run folder, in VIEW order; writes its verdict.md and CSV/JSON (offered as download copies)."""
    from evals.diff import sides
    from evals.report import build_report, comparison_table, save_report
    from evals.results import export

    try:
        report = build_report(run_dir, baseline)
        paths = save_report(report)
    except G3nError as err:
        raise readable_error(err) from err
    csv, js, verdict = (offer_download(f, downloads_dir, Path(run_dir).name) for f in (*export(report.frame, run_dir), paths["verdict"]))
    base = report.comparisons[0].baseline.variant if report.comparisons else ""
    table = comparison_table(report.frame, markdown=True).reset_index()
    figures = {name: styled(name, report.figures.get(name)) for name in CHARTS}
    # A chart with nothing to draw (its measurement was not picked) is hidden rather than shown as empty axes.
    plots = [gr.Plot(value=fig, visible=has_data(fig)) for fig in figures.values()]
    names = list(sides(run_dir, report.frame))
    a, b, task, tasks = _explorer_defaults(names, report.frame)
    status = f"Run saved as `{escape(Path(run_dir).name)}` ({len(report.frame)} rows)."
    return (
        str(run_dir), status, gr.Column(visible=True), verdict_markdown(report.verdict_lines(), base),
        gr.Dropdown(choices=names, value=base or None),
        table, *plots, [str(csv), str(js), str(verdict)],
        manifest_markdown(report.manifest), _manifest_json(run_dir), gr.Dropdown(choices=names, value=a), gr.Dropdown(choices=names, value=b),
        gr.Dropdown(choices=tasks, value=task), explore_run(run_dir, a, b, task, "all"),
    )  # fmt: skip


def _manifest_json(run_dir: Path) -> dict:
    from evals.manifest import read_manifest

    try:
        return read_manifest(run_dir)
    except G3nError as err:
        return {"error": str(err)}


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
    """Run the selected variants x tasks x measurements with evals; the run's view (VIEW order), then the run list."""
    from evals.engines import engine_from_env
    from evals.measure import MeasureSettings
    from evals.runner import run

    variants = picked_variants(chosen, names)
    if not tasks and not measures:
        raise gr.Error("Pick at least one suite or measurement.", title="Nothing to run")
    check_all_fit(bench, variants)
    run_dir = new_run_dir(bench.results_root, variants)
    try:
        bench.quota.make_room(RUN_RESERVE_BYTES, keep=bench.models_in_use(), what="a Compare run")
        # Its own cache (same budget): the memory measurement loads each variant afresh, without evicting the chat's models.
        # With $G3N_RAY_ADDRESS set, the units run on that Ray cluster instead.
        run(variants, list(tasks), run_dir, measures=list(measures), limit=int(limit) or None,
                 engine=engine_from_env(ModelCache(budget_bytes=bench.cache.budget_bytes)),
                 measure_settings=MeasureSettings(repeats=int(repeats)), progress=progress_callback(progress))
    except G3nError as err:
        raise readable_error(err) from err
    shown = results_view(run_dir, bench.downloads_dir)
    bench.quota.enforce(keep=[*bench.models_in_use(), *in_view(bench, run_dir)])
    return (*shown, runs_dropdown(bench, str(run_dir)))


def in_view(bench: Workbench, run_dir: Path) -> list[Path]:
    """What showing a run uses: its folder and its download copies (kept by the results quota's clean-up)."""
    return [Path(run_dir), bench.downloads_dir / Path(run_dir).name]


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


def run_folder(bench: Workbench, path: str | None) -> Path:
    """A run folder of this app (only folders under the results root)."""
    if not path:
        raise gr.Error("Choose a run first.", title="Earlier runs")
    folder = allowed_path(path, (Path(bench.results_root),))
    if folder is None or not folder.is_dir():
        raise gr.Error("That folder is not one of this app's runs.", title="Earlier runs")
    return folder


def show_run(bench: Workbench, path: str) -> tuple:
    """Everything the page shows of an earlier run (in VIEW order)."""
    folder = run_folder(bench, path)
    bench.quota.touch(folder)  # shown again: the last to be cleaned up
    shown = results_view(folder, bench.downloads_dir)
    bench.quota.enforce(keep=[*bench.models_in_use(), *in_view(bench, folder)])
    return shown


def rebaseline(bench: Workbench, path: str, baseline: str) -> str:
    """The verdict of a run against another baseline (verdict.md is rewritten with it)."""
    from evals.report import build_report, save_report

    try:
        report = build_report(run_folder(bench, path), baseline or None)
        save_report(report)
    except G3nError as err:
        raise readable_error(err) from err
    return verdict_markdown(report.verdict_lines(), report.comparisons[0].baseline.variant if report.comparisons else "")


def explore_run(run_dir: Path, a: str | None, b: str | None, task: str | None, only: str) -> str:
    """The disagreement explorer's HTML for two variants of a run on a task."""
    from evals.diff import disagreements, find_side, sides
    from evals.paired import primary_metrics
    from evals.results import load_results
    from evals.tasks.builtin import DATA

    if not (a and b and task):
        return "<p>Pick two variants and a task.</p>"
    if a == b:
        return "<p>Pick two different variants.</p>"
    try:
        frame = load_results(run_dir)
        found = sides(run_dir, frame)
        side_a, side_b = find_side(found, a), find_side(found, b)
        rows = frame[frame["task"] == task]
        if rows.empty or str(task).startswith("measure:"):
            raise gr.Error(f"{escape(str(task))} is not a task of this run.", title="Disagreements")
        directed = rows.dropna(subset=["higher_is_better"])
        listed = disagreements(side_a, side_b, task, primary_metrics(task, list(dict.fromkeys(rows["metric"]))),
                               dict(zip(directed["metric"], directed["higher_is_better"].astype(bool))), only=only)  # fmt: skip
    except (G3nError, ValueError) as err:
        raise readable_error(err) from err
    return explorer_html(listed, a, b, task, DATA)


def explore(bench: Workbench, path: str, a: str, b: str, task: str, only: str) -> str:
    """`explore_run` on one of this app's runs."""
    return explore_run(run_folder(bench, path), a, b, task, only or "all")
