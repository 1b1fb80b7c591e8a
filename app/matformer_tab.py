"""The MatFormer tab: pick a Lab preset or edit per-layer FFN widths and skipped layers, see the slice's
profile and sizes next to the Lab's published MMLU, send it to Compare, export it as a checkpoint.

All slicing and sizing is g3n_core.matformer's (check/plan, slice_report, preset_table, export_slice);
this module turns its rows into tables and plotly figures and wires the components.
"""

from __future__ import annotations

import re
import shutil
from functools import partial
from html import escape
from pathlib import Path

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from g3n_core import G3nError, MatformerSlice, SliceError, Variant
from g3n_core.info import human_bytes, human_count
from g3n_core.matformer.export import export_bytes, export_slice
from g3n_core.matformer.presets import find_preset, lab_presets
from g3n_core.matformer.sizes import ffn_profile, preset_table, slice_report
from g3n_core.sources import HUB_IDS
from g3n_core.variant import default_dtype

from .compare import add_variant, variant_label
from .export_zip import zip_link
from .feedback import progress_callback, show_error
from .safety import allowed_model
from .workbench import Workbench

EDITOR_COLUMNS = ["layer", "attn", "kv", "parent", "width", "skip"]
CUSTOM = "custom"
NO_FIT = "does not fit"


def parent_choices(bench: Workbench) -> list[str]:
    """Models to slice: the launch model, tiny, e4b-shape (the Lab presets' parent) and the E4B/E2B hub ids."""
    e4b_ids = [h for h in HUB_IDS if h.endswith("-it")]
    return list(dict.fromkeys([bench.default_variant.model, "tiny", "e4b-shape", *e4b_ids]))


def lab_table(model: str, dtype: str) -> pd.DataFrame:
    """Every Lab preset with its published effective params and MMLU, and our sizes where it fits `model`."""
    fitted = {row["preset"]: row for row in preset_table(model, dtype)}
    rows = []
    for preset in lab_presets():
        ours = fitted.get(preset.key)
        rows.append({
            "preset": preset.key,
            "layers": preset.layers,
            "Lab effective (B)": preset.effective_params_b,
            "Lab MMLU (%)": preset.mmlu_pt_accuracy,
            "effective params": human_count(ours["effective_params"]) if ours else NO_FIT,
            f"bytes ({dtype})": human_bytes(ours["bytes"]) if ours else "",
        })
    return pd.DataFrame(rows)


def fitting_presets(table: pd.DataFrame) -> list[str]:
    """Keys of the presets in a `lab_table` that fit its model (those of the 35-layer E4B)."""
    return table.loc[table["effective params"] != NO_FIT, "preset"].tolist()


def lab_chart(selected: str | None = None) -> go.Figure:
    """The Lab's published MMLU against its effective parameters, one labelled point per preset."""
    presets = lab_presets()
    colours = ["#dc2626" if p.key == selected else "#4f46e5" for p in presets]
    figure = go.Figure(
        go.Scatter(
            x=[p.effective_params_b for p in presets],
            y=[p.mmlu_pt_accuracy for p in presets],
            text=[p.key if p.key in ("E2B", "E4B", selected) else "" for p in presets],
            customdata=[p.key for p in presets],
            mode="markers+text",
            textposition="top center",
            textfont=dict(size=10),
            marker=dict(size=[15 if p.key == selected else 10 for p in presets], color=colours),
            hovertemplate="%{customdata}<br>%{x:.2f} B effective<br>MMLU %{y:.1f}%<extra></extra>",
        )
    )
    figure.update_layout(
        title="MatFormer Lab: MMLU vs effective parameters",
        xaxis_title="effective parameters (billions, Lab)",
        yaxis_title="MMLU, pretrained (%)",
        height=380,
        margin=dict(l=50, r=20, t=50, b=45),
        template="plotly_white",
    )
    return figure


def editor_rows(model: str, slc: MatformerSlice | None) -> pd.DataFrame:
    """One editable row per parent layer: its attention type and KV role, parent width, sliced width, skipped."""
    rows = [
        {"layer": r["layer"], "attn": r["attention"], "kv": r["kv"], "parent": r["parent_width"],
         "width": r["width"] if not r["skipped"] else r["parent_width"], "skip": r["skipped"]}
        for r in ffn_profile(model, slc)
    ]
    return pd.DataFrame(rows, columns=EDITOR_COLUMNS)


def slice_from_editor(table: pd.DataFrame, preset: str | None = None) -> MatformerSlice:
    """The slice the editor describes: skipped layers, and the widths of the kept ones in kept-layer order."""
    skip = tuple(int(r["layer"]) for _, r in table.iterrows() if _truthy(r["skip"]))
    ffn = tuple(_width(r) for _, r in table.iterrows() if not _truthy(r["skip"]))
    return MatformerSlice(ffn=ffn, skip=skip, preset=preset)


def _width(row) -> int:
    try:
        return int(float(row["width"]))
    except (TypeError, ValueError) as err:
        raise SliceError(f"the FFN width {row['width']} is not a number; give a whole number of neurons", layer=int(row["layer"])) from err


def _truthy(value) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes") if not isinstance(value, bool) else value


def profile_chart(profile: list[dict], title: str) -> go.Figure:
    """Per-layer FFN width of the slice over the parent's, skipped layers marked, global layers outlined."""
    layers = [r["layer"] for r in profile]
    figure = go.Figure()
    figure.add_bar(x=layers, y=[r["parent_width"] for r in profile], name="parent", marker_color="#e5e7eb")
    figure.add_bar(
        x=layers,
        y=[r["width"] for r in profile],
        name="slice",
        marker_color=["#4f46e5" if r["attention"] == "local" else "#0ea5e9" for r in profile],
        customdata=[[r["attention"], r["kv"]] for r in profile],
        hovertemplate="layer %{x}: %{y} (%{customdata[0]}, KV %{customdata[1]})<extra></extra>",
    )
    skipped = [r["layer"] for r in profile if r["skipped"]]
    if skipped:
        top = max(r["parent_width"] for r in profile)
        figure.add_scatter(x=skipped, y=[top * 0.5] * len(skipped), mode="markers", name="skipped",
                           marker=dict(symbol="x", size=12, color="#dc2626"), hovertemplate="layer %{x} skipped<extra></extra>")
    figure.update_layout(
        title=title, barmode="overlay", xaxis_title="parent layer (dark: local attention, light blue: global)",
        yaxis_title="FFN width", height=340, margin=dict(l=50, r=20, t=50, b=45), legend=dict(orientation="h", y=1.12),
    )
    return figure


def report_label(report: dict) -> str:
    """'full model' for an empty slice, else the slice's label (a preset key or custom-<hash>)."""
    cut = report["slice"]
    return "full model" if cut["ffn"] is None and not cut["skip"] else report["label"]


def report_markdown(report: dict) -> str:
    """The slice's sizes next to its parent's (and the Lab's figures for a preset)."""
    parent = report["parent"]
    lines = [
        f"**{report_label(report)}** of `{report['model']}`: {report['layers']} of {parent['layers']} layers, "
        f"{report['kv_shared_layers']} KV-shared",
        f"- effective parameters: **{human_count(report['effective_params'])}** "
        f"({report['effective_fraction']:.0%} of {human_count(parent['effective_params'])})",
        f"- total parameters: {human_count(report['total_params'])} of {human_count(parent['total_params'])}",
        f"- weights at {report['dtype']}: **{human_bytes(report['bytes'])}** of {human_bytes(parent['bytes'])}",
    ]
    if "lab_mmlu" in report:
        lines.append(f"- MatFormer Lab: {human_count(report['lab_effective_params'])} effective, MMLU {report['lab_mmlu']:.1f}%")
    return "\n".join(lines)


def parent_model(bench: Workbench, model: str) -> str:
    """The parent the user named, through the app's one allow-list (built-ins, hub ids, folders under the model roots)."""
    return allowed_model(model, bench.model_roots)


# Event functions. None of them fails its event: a problem (a slice that cannot work, a parent that is
# not allowed, an unreachable hub) is shown as a toast and written into the page, next to what it is about.


def show_slice(bench: Workbench, model: str, table: pd.DataFrame, preset: str, dtype: str) -> tuple:
    """Check and size the edited slice: (slice, sizes, profile chart, Lab chart); a slice that cannot work
    leaves no slice and its message (naming the layer) in the summary."""
    try:
        model = parent_model(bench, model)
        slc = slice_from_editor(table, preset if preset not in (None, "", CUSTOM) else None)
        report = slice_report(model, slc, dtype)
    except G3nError as err:
        return None, show_error(err), gr.skip(), gr.skip()
    return slc, report_markdown(report), profile_chart(report["ffn_profile"], f"FFN profile: {report_label(report)}"), lab_chart(slc.preset)


def parent_view(bench: Workbench, model: str, dtype: str) -> tuple[pd.DataFrame, list[str], pd.DataFrame, str, go.Figure]:
    """For a parent model: the Lab table, the presets that fit, the editor on the full model, its sizes and profile."""
    model = parent_model(bench, model)
    table = lab_table(model, dtype)
    fits = fitting_presets(table)
    editor = editor_rows(model, None)
    report = slice_report(model, MatformerSlice(), dtype)
    note = "" if fits else "\n\n_The Lab's presets slice the 35-layer E4B (try `e4b-shape`); for this model edit the widths and skips._"
    return table, fits, editor, report_markdown(report) + note, profile_chart(report["ffn_profile"], "FFN profile: full model")


def choose_parent(bench: Workbench, model: str, dtype: str) -> tuple:
    """A new parent model (or byte dtype): everything in the tab follows it (or the summary says why it cannot)."""
    try:
        table, fits, editor, summary, profile = parent_view(bench, model, dtype)
    except G3nError as err:
        return gr.skip(), gr.skip(), gr.skip(), show_error(err), gr.skip()
    return table, gr.Dropdown(choices=[CUSTOM, *fits], value=CUSTOM), editor, summary, profile


def choose_preset(bench: Workbench, model: str, preset: str) -> pd.DataFrame:
    """The editor filled with a Lab preset's widths and skips."""
    try:
        model = parent_model(bench, model)
        return editor_rows(model, None if preset in (None, "", CUSTOM) else find_preset(preset).to_slice())
    except G3nError as err:
        show_error(err)
        return gr.skip()


def slice_variant(bench: Workbench, model: str, slc: MatformerSlice | None) -> Variant:
    """The Variant that runs `slc` of `model` with every other knob of the launch variant (sparsity, speed features, ...)."""
    if slc is None:
        raise SliceError("no checked slice yet: edit the table or pick a preset, then press Show slice")
    model = parent_model(bench, model)
    base = bench.default_variant
    dtype = base.dtype if model == base.model else default_dtype(model, base.device)
    return base.replace(model=model, dtype=dtype, matformer=slc)


def send_to_compare(bench: Workbench, model: str, slc: MatformerSlice | None, chosen: dict, selected: list[str]) -> tuple:
    """Add the slice to the Compare tab's variants and select it; (known variants, picker, note saying what was added)."""
    try:
        variant = slice_variant(bench, model, slc)
    except G3nError as err:
        return gr.skip(), gr.skip(), show_error(err)
    label = variant_label(chosen, variant)  # the name add_variant gives it
    chosen, dropdown = add_variant(chosen, variant, selected)
    gr.Info(f"Added {escape(label)} to the Compare tab", title="Compare")
    return chosen, dropdown, f"✅ Added **{escape(label)}** to the Compare tab, selected there."


def export_name(model: str, slc: MatformerSlice) -> str:
    """The export's folder name: the parent's name and the slice's label, safe for a path."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{Path(model).name}-{slc.label}")


def export_checkpoint(bench: Workbench, model: str, slc: MatformerSlice | None, progress: gr.Progress = gr.Progress()) -> str:
    """Write the slice as a checkpoint under <results>/exports, within the results quota; the note links its zip.

    The export's size is read from the parent's safetensors headers first: one that would take the
    results folder over its quota (after clean-up of the least recently used exports and runs) is
    refused before anything is deleted or written. The zip is made on demand as it downloads (app.export_zip).
    A refusal is shown in the note (and a toast) without failing the event.
    """
    in_use = bench.models_in_use()
    try:
        if slc is None:
            raise SliceError("no checked slice yet: edit the table or pick a preset, then press Show slice")
        model = parent_model(bench, model)
        name = export_name(model, slc)
        out = bench.exports_dir / name
        needed = export_bytes(model, slc)
        if out.exists():  # replaced: its bytes are free for the new one
            bench.quota.make_room(0, keep=[*in_use, out])
            shutil.rmtree(out)
        bench.quota.make_room(needed, keep=in_use, what=f"the export {name}")
        folder = export_slice(model, slc, out, progress=progress_callback(progress))
    except G3nError as err:
        return show_error(err)
    bench.quota.enforce(keep=[*in_use, folder])
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return (
        f"✅ Wrote `{folder}` ({human_bytes(size)}): load it in the model panel (type the folder), or "
        f"`python app.py --model {folder}`. [Download it as a zip]({zip_link(name)}) (made as it downloads)."
    )


def render_matformer_tab(bench: Workbench, compare_variants: gr.State, compare_picker: gr.Dropdown) -> None:
    """The Lab table beside its MMLU chart, the per-layer editor, the profile chart, and the Compare/export buttons."""
    start, dtype0 = bench.default_variant.model, bench.default_variant.dtype
    table0, fits0, editor0, summary0, profile0 = parent_view(bench, start, dtype0)
    current = gr.State(None)  # the last checked slice
    gr.Markdown(
        "MatFormer nests smaller models inside Gemma 3n: keep the first *k* neurons of each layer's FFN and "
        "optionally skip whole layers. Start from a MatFormer Lab preset or edit the table, then **Show slice**."
    )
    with gr.Row():
        model = gr.Dropdown(parent_choices(bench), value=start, allow_custom_value=True, label="Parent model")
        dtype = gr.Dropdown(["bfloat16", "float32", "float16"], value=dtype0, label="Count bytes at")
        preset = gr.Dropdown([CUSTOM, *fits0], value=CUSTOM, label="Start from preset", elem_id="matformer-preset")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            presets = gr.Dataframe(table0, label="MatFormer Lab presets (published) and their size here", interactive=False, wrap=True)
        with gr.Column(scale=2):
            lab = gr.Plot(lab_chart(), show_label=False)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            editor = gr.Dataframe(
                editor0, label="Per layer: FFN width and skip (editable)", interactive=True,
                datatype=["number", "str", "str", "number", "number", "bool"], static_columns=[0, 1, 2, 3],
                max_height=430, column_widths=["95px", "85px", "100px", "100px", "90px", "95px"], elem_id="slice-editor",
            )
            with gr.Row():
                check = gr.Button("Show slice", variant="primary", elem_id="slice-show")
                to_compare = gr.Button("Add to Compare", elem_id="slice-to-compare")
                export = gr.Button("Export checkpoint", elem_id="slice-export")
            note = gr.Markdown(elem_id="slice-note")  # what Add to Compare / Export did, or why not
        with gr.Column(scale=1):
            summary = gr.Markdown(summary0, elem_id="slice-summary")
            profile = gr.Plot(profile0, show_label=False, elem_id="slice-profile")

    ui = dict(api_visibility="undocumented")  # queued: messages (toasts) reach the page only from queued events
    shown = [current, summary, profile, lab]
    for knob, api_name in ((model, "matformer_parent"), (dtype, "matformer_dtype")):
        knob.change(partial(choose_parent, bench), [model, dtype], [presets, preset, editor, summary, profile], api_name=api_name,
                    api_visibility="undocumented")
    preset.input(partial(choose_preset, bench), [model, preset], [editor], **ui).then(partial(show_slice, bench), [model, editor, preset, dtype], shown, **ui)
    check.click(partial(show_slice, bench), [model, editor, preset, dtype], shown, api_name="matformer_show", **ui)
    to_compare.click(partial(send_to_compare, bench), [model, current, compare_variants, compare_picker], [compare_variants, compare_picker, note], **ui)
    export.click(partial(export_checkpoint, bench), [model, current], [note], concurrency_id="export", api_name="matformer_export",
                 concurrency_limit=1, api_visibility="undocumented")
