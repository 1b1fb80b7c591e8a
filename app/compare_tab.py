"""The Compare tab's layout and events; the logic is in compare."""

from __future__ import annotations

from functools import partial

import gradio as gr

from . import compare as c
from .workbench import Workbench
from .zerogpu import on_gpu


def render_compare_tab(bench: Workbench) -> tuple[gr.State, gr.Dropdown, gr.Dropdown]:
    """Variant picker, suites and measurements, Run with progress, table, charts, downloads, earlier runs.

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
    run = gr.Button("Run comparison", variant="primary", elem_id="compare-run")
    table = gr.Dataframe(label="Results", interactive=False, wrap=True, elem_id="compare-table")
    plots = []
    names = list(c.CHARTS)
    for row in range(0, len(names), 2):
        with gr.Row():
            plots += [gr.Plot(label=c.CHART_TITLES[n], show_label=False, elem_id=f"chart-{n}") for n in names[row : row + 2]]
    files = gr.File(label="Download results (CSV, JSON)", file_count="multiple", interactive=False, elem_id="compare-files")
    with gr.Row():
        runs = gr.Dropdown(c.earlier_runs(bench), label="Earlier runs", scale=4, elem_id="compare-runs")
        show = gr.Button("Show run", scale=1)

    ui = dict(api_visibility="undocumented")  # queued: an error in a spec reaches the page as a toast (not an HTTP 500)
    add.click(partial(c.add_spec, bench), [chosen, picker, spec], [chosen, picker, spec], api_name="compare_add", **ui)
    spec.submit(partial(c.add_spec, bench), [chosen, picker, spec], [chosen, picker, spec], **ui)
    run.click(
        on_gpu(partial(c.run_comparison, bench), duration=300),
        [chosen, picker, tasks, measures, limit, repeats],
        [table, *plots, files, runs],
        concurrency_id="compare",
        concurrency_limit=1,  # runs time latency: two at once would spoil each other's numbers
        api_visibility="undocumented",
    )
    show.click(partial(c.show_run, bench), [runs], [table, *plots, files], api_name="compare_show_run", api_visibility="undocumented")
    return chosen, picker, runs
