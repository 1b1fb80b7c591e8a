"""The Compare tab's layout and events; the logic is in compare."""

from __future__ import annotations

from functools import partial

import gradio as gr

from . import compare as c
from . import compare_view as cv
from .workbench import Workbench
from .zerogpu import on_gpu


def render_compare_tab(bench: Workbench) -> tuple[gr.State, gr.Dropdown, gr.Dropdown]:
    """Variant picker, suites and measurements, Run with progress, then the verdict (with a baseline picker), the table,
    the charts, the disagreement explorer, downloads and the run manifest; earlier runs.

    Returns the known-variants state and the picker (the MatFormer tab adds slices to them) and the
    earlier-runs dropdown (refreshed on every page load).
    """
    suggested = c.suggested_variants(bench)
    chosen = gr.State(suggested)
    gr.Markdown(
        "Compare **2 to 6 variants** on the offline suites and on latency, memory and realised sparsity. "
        "Each run is saved under the results folder and stays listed below."
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            picker = gr.Dropdown(list(suggested), value=list(suggested)[:2], multiselect=True, label="Variants", elem_id="compare-variants",
                                 info="Suggestions change one knob of the launch model; add your own below or from the MatFormer tab")
            with gr.Row():
                spec = gr.Textbox(placeholder="tiny attn=eager sparsity=0.9@0-4 towers=text", show_label=False, scale=4)
                add = gr.Button("Add", scale=1)
        with gr.Column(scale=2):
            choices = c.task_choices()
            tasks = gr.CheckboxGroup(choices, value=[t for t in c.DEFAULT_TASKS if t in {name for _, name in choices}],
                                     label="Suites", elem_id="compare-tasks")
            measures = gr.CheckboxGroup(c.measure_choices(), value=c.measure_choices(), label="Measurements", elem_id="compare-measures")
            with gr.Row():
                limit = gr.Slider(0, 200, c.DEFAULT_LIMIT, step=1, label="Examples per suite", info="0 = all", elem_id="compare-limit")
                repeats = gr.Slider(1, 10, 5, step=1, label="Timing repeats", info="median of this many", elem_id="compare-repeats")
    estimates = gr.Markdown(c.picked_estimates(bench, suggested, list(suggested)[:2])[0], elem_id="compare-fit")
    run = gr.Button("Run comparison", variant="primary", elem_id="compare-run")
    status = gr.Markdown(elem_id="compare-status")  # the run's one progress bar shows here
    run_dir = gr.State(None)
    with gr.Column(visible=False, elem_id="compare-results") as results:  # hidden until a run exists
        with gr.Row(equal_height=False):
            verdict = gr.Markdown(elem_id="compare-verdict")
            baseline = gr.Dropdown(label="Baseline", info="the variant the others are compared with", scale=0, min_width=260, elem_id="compare-baseline")
        table = gr.Dataframe(label="Results (best in bold)", interactive=False, wrap=True, datatype="markdown", elem_id="compare-table")
        plots = []
        names = list(c.CHARTS)
        for row in range(0, len(names), 2):
            with gr.Row():
                plots += [gr.Plot(label=c.CHART_TITLES[n], show_label=False, elem_id=f"chart-{n}") for n in names[row : row + 2]]
        with gr.Accordion("Examples where two variants disagree", open=True, elem_id="compare-diff"):
            with gr.Row():
                a = gr.Dropdown(label="Variant A", elem_id="diff-a")
                b = gr.Dropdown(label="Variant B", elem_id="diff-b")
                task = gr.Dropdown(label="Task", elem_id="diff-task")
                only = gr.Radio(cv.FILTER_CHOICES, value="all", label="Show", elem_id="diff-only")
            explorer = gr.HTML(elem_id="compare-explorer")
        files = gr.File(label="Download results (CSV, JSON, verdict)", file_count="multiple", interactive=False, elem_id="compare-files")
        with gr.Accordion("Run manifest (how this run was made; `python -m evals rerun FOLDER` repeats it)", open=False, elem_id="compare-manifest"):
            manifest = gr.Markdown()
            manifest_json = gr.JSON(label="manifest.json")
    with gr.Row():
        runs = gr.Dropdown(c.earlier_runs(bench), label="Earlier runs", scale=4, elem_id="compare-runs")
        show = gr.Button("Show run", scale=1)

    view = dict(zip(c.VIEW, [run_dir, status, results, verdict, baseline, table, *plots, files, manifest, manifest_json, a, b, task, explorer]))
    outputs = [view[name] for name in c.VIEW]
    # queued (not queue=False): only queued events show a bad spec's message as a toast instead of "Error" on the picker
    ui = dict(show_progress="hidden", api_visibility="undocumented")
    picker.change(partial(c.picked_estimates, bench), [chosen, picker], [estimates, run], trigger_mode="always_last",
                  concurrency_limit=None, show_progress="hidden", api_visibility="undocumented")
    add.click(partial(c.add_spec, bench), [chosen, picker, spec], [chosen, picker, spec], api_name="compare_add", **ui)
    spec.submit(partial(c.add_spec, bench), [chosen, picker, spec], [chosen, picker, spec], **ui)
    run.click(
        on_gpu(partial(c.run_comparison, bench), duration=300),
        [chosen, picker, tasks, measures, limit, repeats],
        [*outputs, runs],
        concurrency_id="compare",
        concurrency_limit=1,  # runs time latency: two at once would spoil each other's numbers
        show_progress_on=[status],
        api_visibility="undocumented",
    )
    show.click(partial(c.show_run, bench), [runs], outputs, show_progress_on=[status], api_name="compare_show_run", api_visibility="undocumented")
    baseline.input(partial(c.rebaseline, bench), [run_dir, baseline], [verdict], api_visibility="undocumented")
    for control in (a, b, task, only):
        control.input(partial(c.explore, bench), [run_dir, a, b, task, only], [explorer], api_visibility="undocumented")
    return chosen, picker, runs
