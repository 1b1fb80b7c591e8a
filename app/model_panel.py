"""The Model panel: choose the model and its Variant knobs, load it with progress, show what is loaded.

Each session keeps its own Variant (gr.State); all sessions share the Workbench's ModelCache, so
switching back to a variant someone already loaded is instant.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from functools import partial
from html import escape
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
import torch

from g3n_core import G3nError, LoadedModel, Variant
from g3n_core.hardware import features_note
from g3n_core.info import describe, human_bytes, human_count
from g3n_core.matformer.presets import presets_for
from g3n_core.sources import HUB_IDS
from g3n_core.variant import default_dtype, field_from_text, field_kind, knobs

from .feedback import progress_callback, show_error
from .memory_fit import estimate_update, fit_markdown
from .safety import allowed_model
from .workbench import Workbench
from .zerogpu import on_gpu

MODEL_CHOICES = [
    ("mini: a small Gemma 3n trained here (arithmetic, colours, shapes, counting, spoken digits)", "mini"),
    ("tiny: built-in test model (random weights, instant)", "tiny"),
    *[(f"{hub_id} (Hugging Face hub)", hub_id) for hub_id in HUB_IDS if hub_id.endswith("-it")],
    ("e2b-shape: E2B's real size, random weights", "e2b-shape"),
    ("e4b-shape: E4B's real size, random weights", "e4b-shape"),
]
NO_SLICE = "none (full model)"
MINI_BANNER = "a small Gemma 3n trained here on arithmetic, colours, shapes, counting and spoken digits; real checkpoints load from the model panel."
# Where each knob sits in the panel; knobs not named here (the speed and memory features, and any
# field added to Variant later) go under "Speed and memory", so every Variant field has a control.
LAYOUT = (("model",), ("attn", "dtype", "device"), ("towers",), ("matformer", "sparsity"))
PLACED = {name for row in LAYOUT for name in row}


def devices() -> list[str]:
    """Devices this server can run on."""
    return ["cpu"] + ([f"cuda:{i}" if i else "cuda" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else [])


def slice_choices(bench: Workbench, model: str) -> list[tuple[str, str]]:
    """MatFormer choices for `model`: none, then each preset that fits it (the Lab's with its published MMLU, mini's ladder with its measured accuracy).

    Only an allowed model is read; a custom slice (ffn=...;skip=...) can always be typed.
    """
    try:
        presets = presets_for(allowed_model(model, bench.model_roots))
    except G3nError:
        presets = []
    return [(NO_SLICE, NO_SLICE), *[(f"{p.key}: {p.summary}", p.key) for p in presets]]


def variant_from_panel(bench: Workbench, values: Mapping[str, Any]) -> Variant:
    """The Variant the panel's controls describe (`values` by field name); a typed G3nError names the field that is wrong."""
    model = allowed_model(values.get("model"), bench.model_roots)
    fields: dict[str, Any] = {}
    for f in knobs():
        value, kind = values.get(f.name), field_kind(f)
        if f.name == "model" or value is None:
            continue
        if kind == "slice":
            fields[f.name] = None if value in ("", NO_SLICE) else field_from_text(f.name, value, model)
        elif kind == "list":
            fields[f.name] = tuple(value)
        elif kind == "bool":
            fields[f.name] = bool(value)
        elif str(value).strip():  # an emptied text box means the field's default
            fields[f.name] = str(value).strip()
    return Variant(model=model, **fields)


def knob_control(bench: Workbench, f, variant: Variant) -> gr.components.Component:
    """The control of one Variant knob, made from its metadata (label, help, choices) and type."""
    meta, value, kind = f.metadata, getattr(variant, f.name), field_kind(f)
    common = dict(label=meta["label"], info=meta["help"], elem_id=f"knob-{f.name}")
    if f.name == "model":
        return gr.Dropdown(MODEL_CHOICES, value=value, allow_custom_value=True, **{**common, "info": "Built-in, a hub id, or a checkpoint folder the operator allowed"})
    if f.name == "device":
        return gr.Dropdown(devices(), value=value, **common)
    if kind == "slice":
        return gr.Dropdown(slice_choices(bench, variant.model), value=NO_SLICE if value is None else value.spec, allow_custom_value=True,
                           **{**common, "info": "Lab presets that fit this model, or type ffn=...;skip=... (e.g. ffn=256*14;skip=7)"})
    if kind == "bool":
        return gr.Checkbox(value=value, **common)
    if kind == "list":
        return gr.CheckboxGroup(list(meta["choices"]), value=list(value), **common)
    if meta["choices"]:
        return gr.Dropdown(list(meta["choices"]), value=value, **common)
    return gr.Textbox(value, **common)


def size_table(loaded: LoadedModel) -> pd.DataFrame:
    """Parameters and bytes by component of the loaded model (after slicing and dropped towers)."""
    info = describe(loaded.model, loaded.variant.model, loaded.variant.dtype, loaded.random_weights)
    rows = [
        {"component": name.replace("_", " "), "params": human_count(info.params[name]), "bytes": human_bytes(info.bytes[name])}
        for name in info.params
        if info.params[name]
    ]
    rows.append({"component": "total", "params": human_count(info.total_params), "bytes": human_bytes(info.total_bytes)})
    rows.append({"component": "effective (Gemma 3n count)", "params": human_count(info.effective_params), "bytes": ""})
    return pd.DataFrame(rows)


def model_status(loaded: LoadedModel) -> str:
    """One Markdown line saying what this session runs."""
    variant = loaded.variant
    towers = ", ".join(t for t, on in (("vision", loaded.has_vision), ("audio", loaded.has_audio)) if on) or "text only"
    params = sum(p.numel() for p in loaded.model.parameters())
    parent = loaded.extras.get("elastic_parent")
    memory = f"elastic slice of the loaded `{parent.variant.name}` (its weights, none of its own)" if parent else f"{human_bytes(loaded.weight_bytes())} in memory"
    return (
        f"**Model:** `{variant.name}` on {variant.device} · {human_count(params)} parameters · "
        f"{memory} · towers: {towers} · context {loaded.context_length} tokens"
        + "".join(f" · ⚠️ {warning}" for warning in variant.warnings)
    )


def weights_banner(loaded: LoadedModel | None, notes: list[str]) -> str:
    """HTML banner: start-up notes (e.g. hub fallback), what mini is, and a plain warning when the weights are random."""
    parts = [f"<div class='g3n-note'>ℹ️ {escape(note)}</div>" for note in notes]
    if loaded is not None and loaded.variant.model == "mini":
        parts.append(f"<div class='g3n-note'>ℹ️ <b>mini</b>: {MINI_BANNER}</div>")
    if loaded is not None and loaded.random_weights:
        parts.append(
            "<div class='g3n-banner'>⚠️ <b>Random weights.</b> "
            f"<code>{escape(loaded.variant.model)}</code> was built by this project with random weights, so its replies are gibberish. "
            "It is here to try the app and measure speed and memory; for real answers load a Gemma 3n checkpoint "
            "(google/gemma-3n-E2B-it or E4B-it) in the model panel.</div>"
        )
    return "\n".join(parts)


def load_from_panel(bench: Workbench, values: Mapping[str, Any], progress: gr.Progress | None = None) -> tuple:
    """Load the panel's variant for this session: (variant, status, banner, size table, note beside Load).

    A variant that cannot load changes nothing; the note (and a toast) says why, naming the field.
    """
    started = time.perf_counter()
    try:
        variant = variant_from_panel(bench, values)
        loaded = bench.cache.get(variant, progress_callback(progress))
    except G3nError as err:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), show_error(err)
    if Path(variant.model).is_dir():
        bench.quota.touch(variant.model)  # an export in use is the last the results quota cleans up
    note = f"✅ Loaded `{escape(variant.name)}` ({time.perf_counter() - started:.1f} s); the chat now runs it."
    return variant, model_status(loaded), weights_banner(loaded, []), size_table(loaded), note


def panel_estimate(bench: Workbench, names: list[str], *values) -> tuple[str, gr.Button]:
    """The panel's size estimate before Load, and Load disabled when the variant cannot fit (or has a bad value)."""
    return estimate_update(bench, lambda: variant_from_panel(bench, dict(zip(names, values))))


def apply_slice_at_once(bench: Workbench, values: Mapping[str, Any]) -> tuple:
    """A slice chosen while its parent is loaded runs at once (an elastic view: nothing loads); else Load does it.

    Returns what Load returns: (variant, status, banner, size table, note beside Load).
    """
    try:
        variant = variant_from_panel(bench, values)
    except G3nError as err:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), show_error(err)
    if not bench.cache.ready(variant):
        note = f"`{escape(variant.name)}` needs a load: press **Load** (a slice applies at once only while its parent is loaded)."
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), note
    loaded = bench.cache.get(variant)
    note = f"✅ `{escape(variant.name)}` runs now, served from the loaded parent's weights (nothing loaded); the chat now runs it."
    return variant, model_status(loaded), weights_banner(loaded, []), size_table(loaded), note


def describe_session(bench: Workbench, variant: Variant) -> tuple[str, str, pd.DataFrame]:
    """Status, banner and size table of a session's variant (the launch model on page load)."""
    loaded = bench.cache.get(variant)
    return model_status(loaded), weights_banner(loaded, bench.notes), size_table(loaded)


def follow_model(bench: Workbench, device: str, model: str) -> tuple[gr.Dropdown, gr.Dropdown]:
    """A new model in the panel: its default dtype, and the MatFormer presets that fit it."""
    return gr.Dropdown(value=default_dtype(model, device)), gr.Dropdown(choices=slice_choices(bench, model), value=NO_SLICE)


def render_model_panel(bench: Workbench, variant_state: gr.State) -> tuple[gr.Markdown, gr.HTML]:
    """The collapsible model panel, one control per Variant knob; returns the status line and banner shown above the tabs."""
    default = bench.default_variant
    status_md, banner_html, sizes = describe_session(bench, default)
    banner = gr.HTML(banner_html, elem_id="weights-banner")
    status = gr.Markdown(status_md, elem_id="model-status")
    controls: dict[str, gr.components.Component] = {}
    by_name = {f.name: f for f in knobs()}
    with gr.Accordion("⚙️ Model and variant: choose what the chat runs", open=False, elem_id="model-panel"):
        with gr.Row():
            with gr.Column(scale=2):
                for row in LAYOUT:
                    with gr.Row():
                        controls.update({name: knob_control(bench, by_name[name], default) for name in row})
                with gr.Accordion("Speed and memory features", open=False, elem_id="knobs-speed"):
                    gr.Markdown("Compared against plain transformers in benchmarks/README.md; int8 changes the outputs. " + features_note())
                    with gr.Row():
                        controls.update({f.name: knob_control(bench, f, default) for f in knobs() if f.name not in PLACED})
                with gr.Row(equal_height=True):
                    load = gr.Button("Load", variant="primary", elem_id="model-load", scale=1)
                    load_note = gr.Markdown(elem_id="model-load-note")  # progress shows here, then "Loaded" or why not
                fit = gr.Markdown(fit_markdown(bench, default)[0], elem_id="model-fit")
            with gr.Column(scale=1, min_width=400):
                table = gr.Dataframe(sizes, label="Size by component", interactive=False, wrap=True,
                                     column_widths=["52%", "24%", "24%"], elem_id="model-sizes")
    names = [f.name for f in knobs()]

    def load_variant(progress=gr.Progress(), *values):  # progress first: Gradio hands it only to parameters before *values
        return load_from_panel(bench, dict(zip(names, values)), progress)

    def apply_slice(*values):
        return apply_slice_at_once(bench, dict(zip(names, values)))

    # a slice of the loaded parent applies without Load (picked from the list, or typed and submitted)
    controls["matformer"].input(apply_slice, [controls[name] for name in names], [variant_state, status, banner, table, load_note],
                                api_visibility="undocumented")
    controls["model"].change(partial(follow_model, bench, default.device), [controls["model"]], [controls["dtype"], controls["matformer"]],
                             queue=False, api_visibility="undocumented")
    # The estimate follows every knob before anything loads: one listener, the latest change only, so a slow
    # estimate (a refusal names what would fit) never lands after a newer one.
    gr.on([controls[name].change for name in names], partial(panel_estimate, bench, names), [controls[name] for name in names], [fit, load],
          trigger_mode="always_last", concurrency_limit=None, show_progress="hidden", api_visibility="undocumented")
    load.click(
        on_gpu(load_variant, duration=300),
        [controls[name] for name in names],
        [variant_state, status, banner, table, load_note],
        show_progress_on=[load_note],
        concurrency_id="load",
        concurrency_limit=1,
        api_name="load_model",
        api_visibility="undocumented",
    )
    return status, banner
