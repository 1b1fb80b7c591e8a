"""The MatFormer tab's "Find the best slice under a budget": `matformer search` on the shared model cache.

The search is evals.slice_search's (the same as the CLI's): every candidate is an elastic view of the
parent, so the parent loads once and nothing else does. A public server bounds what one click may
cost: at most `MAX_EVALS` evaluations of at most `MAX_EXAMPLES` dev examples, one search at a time.
"""

from __future__ import annotations

import time
from functools import partial

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from evals.slice_search import AGREEMENT, front_table, run_search, search_chart
from evals.tasks import all_tasks
from g3n_core import G3nError, MatformerSlice
from g3n_core.info import human_count
from g3n_core.matformer.presets import presets_for
from g3n_core.matformer.search import budget_from_texts
from g3n_core.variant import parse_variant_spec

from .feedback import readable_error
from .safety import allowed_model
from .workbench import Workbench

MAX_EVALS = 40
MAX_EXAMPLES = 24
NO_PRESET = "none"


def task_choices() -> list[tuple[str, str]]:
    """The synthetic objective first (it works on random weights), then the built-in tasks."""
    builtin = [(f"{name}: {task.description}", name) for name, task in all_tasks().items() if task.suite == "builtin"]
    return [("agreement with the parent (synthetic: works on random weights)", AGREEMENT), *builtin]


def found_table(result) -> pd.DataFrame:
    """Every evaluated slice, smallest first, with its flags."""
    rows = []
    for row in front_table(result):
        flags = [f for f, on in (("best", row["best"]), ("in budget", row["under_budget"]), ("front", row["front"])) if on]
        rows.append({
            "slice": row["slice"], "origin": row["origin"], "score": round(row["score"], 4),
            "effective params": human_count(row["effective_params"]),
            "tokens/s": round(row["tokens_per_s"], 1) if row["tokens_per_s"] is not None else None, "": ", ".join(flags),
        })  # fmt: skip
    return pd.DataFrame(rows)


def find_best_slice(
    bench: Workbench,
    variant_for,
    model: str,
    task: str,
    max_params: str,
    max_memory: str,
    min_speed: str,
    like: str,
    max_evals: float,
    examples: float,
    progress: gr.Progress = gr.Progress(),
) -> tuple[str, pd.DataFrame, go.Figure, MatformerSlice | None]:
    """Search `model`'s slices under the budget: (summary, table of every slice, chart, the best slice)."""
    parent = variant_for(model)
    like = None if like in (None, "", NO_PRESET) else like
    try:
        budget = budget_from_texts(parent.model, max_params, max_memory, min_speed, like)
        seeds = [parse_variant_spec(f"{parent.model} matformer={like}").matformer] if like else []
        out = bench.results_root / "searches" / time.strftime("%Y%m%d-%H%M%S")
        evals = max(1, min(MAX_EVALS, int(max_evals)))
        result, summary = run_search(
            parent, task, budget, out, max_evals=evals, limit=max(1, min(MAX_EXAMPLES, int(examples))), seeds=seeds,
            cache=bench.cache, progress=lambda done, total, what: progress(done / max(1, total), desc=what),
        )  # fmt: skip
    except G3nError as err:
        raise readable_error(err) from err
    figure = search_chart(result, summary["objective"])
    if result.best is None:
        return f"No evaluated slice meets the budget ({budget.describe()}); allow more evaluations or loosen it.", found_table(result), figure, None
    best = result.best
    lines = [
        f"**Best under the budget** ({budget.describe()}): `{best.slice.label}` ({best.origin}), score {best.score:.4f} on "
        f"{summary['objective']}, {human_count(best.effective_params)} effective parameters; {result.evaluations} slices evaluated.",
    ]
    if summary.get("use"):
        lines += [f"- export: `{summary['use']['export']}`", f"- run: `{summary['use']['variant']}`",
                  "- it is now in the editor: **Show slice**, **Add to Compare** or **Export checkpoint**."]  # fmt: skip
    lines.append(f"- saved in `{out}` (search.json, results.csv, charts)")
    return "\n".join(lines), found_table(result), figure, best.slice


def preset_keys(bench: Workbench, model: str) -> list[str]:
    """Keys of the presets that fit `model` (the Lab's fit E4B, mini's ladder mini); only an allowed model is read."""
    try:
        return [p.key for p in presets_for(allowed_model(model, bench.model_roots))]
    except G3nError:
        return []


def _like_choices(bench: Workbench, model: str) -> gr.Dropdown:
    return gr.Dropdown(choices=[NO_PRESET, *preset_keys(bench, model)], value=NO_PRESET)


def _editor_for(editor_rows, model: str, found: MatformerSlice | None):
    return editor_rows(model, found) if found is not None else gr.skip()


def render_slice_search(bench: Workbench, model: gr.Dropdown, editor: gr.Dataframe, variant_for, editor_rows) -> None:
    """The search controls and results; the best slice found fills `editor` (via `editor_rows(model, slice)`)."""
    with gr.Accordion("Find the best slice under a budget", open=False, elem_id="slice-search"):
        gr.Markdown(
            "Explores slices of the parent under the Lab's rules (widths from its presets, skips KV sharing allows), "
            "each measured elastically on the task's **dev** half (the test half is never seen), and keeps the best under "
            "the budget. Presets are evaluated too and charted beside the searched slices."
        )
        with gr.Row():
            task = gr.Dropdown(task_choices(), value=AGREEMENT, label="Task")
            like = gr.Dropdown([NO_PRESET, *preset_keys(bench, model.value)], value=NO_PRESET, label="Budget: as large as preset",
                               allow_custom_value=True, info="a preset key, or ffn=...;skip=... of this parent")  # fmt: skip
        with gr.Row():
            max_params = gr.Textbox(label="Budget: max effective params", placeholder="e.g. 1.9B or 1e6", elem_id="slice-search-params")
            max_memory = gr.Textbox(label="Budget: max memory of the slice", placeholder="e.g. 4GiB")
            min_speed = gr.Textbox(label="Budget: min decode tokens/s", placeholder="e.g. 20")
        with gr.Row():
            max_evals = gr.Slider(3, MAX_EVALS, value=20, step=1, label="Evaluations at most", elem_id="slice-search-evals")
            examples = gr.Slider(1, MAX_EXAMPLES, value=8, step=1, label="Dev examples per evaluation", elem_id="slice-search-examples")
            run = gr.Button("Find the best slice", variant="primary", elem_id="slice-search-run")
        summary = gr.Markdown(elem_id="slice-search-summary")
        with gr.Row(equal_height=False):
            table = gr.Dataframe(label="Every slice evaluated (smallest first)", interactive=False, wrap=True)
            chart = gr.Plot(show_label=False)
        found = gr.State(None)
    model.change(partial(_like_choices, bench), [model], [like], queue=False, api_visibility="undocumented")
    run.click(
        partial(find_best_slice, bench, variant_for),
        [model, task, max_params, max_memory, min_speed, like, max_evals, examples],
        [summary, table, chart, found],
        concurrency_id="slice-search",
        concurrency_limit=1,
        api_visibility="undocumented",
    ).then(partial(_editor_for, editor_rows), [model, found], [editor], api_visibility="undocumented")
