"""The Model panel: choose the model and its Variant knobs, load it with progress, show what is loaded.

Each session keeps its own Variant (gr.State); all sessions share the Workbench's ModelCache, so
switching back to a variant someone already loaded is instant.
"""

from __future__ import annotations

from functools import partial
from html import escape

import gradio as gr
import pandas as pd
import torch

from g3n_core import G3nError, LoadedModel, Variant
from g3n_core.cli import default_dtype
from g3n_core.hardware import features_note
from g3n_core.info import describe, human_bytes, human_count
from g3n_core.matformer.presets import lab_presets, parse_slice
from g3n_core.sources import HUB_IDS, num_text_layers
from g3n_core.variant import ATTN_IMPLS, DTYPES

from .feedback import progress_callback, readable_error
from .safety import check_model_choice
from .workbench import Workbench
from .zerogpu import on_gpu

MODEL_CHOICES = [
    ("tiny: built-in test model (random weights, instant)", "tiny"),
    *[(f"{hub_id} (Hugging Face hub)", hub_id) for hub_id in HUB_IDS if hub_id.endswith("-it")],
    ("e2b-shape: E2B's real size, random weights", "e2b-shape"),
    ("e4b-shape: E4B's real size, random weights", "e4b-shape"),
]
NO_SLICE = "none (full model)"
CUSTOM_SLICE = "custom (below)"


def devices() -> list[str]:
    """Devices this server can run on."""
    return ["cpu"] + ([f"cuda:{i}" if i else "cuda" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else [])


def slice_choices() -> list[tuple[str, str]]:
    """MatFormer choices: none, each Lab preset (with its published MMLU), or a custom slice."""
    presets = [(f"{p.key}: {p.effective_params_b:.2f} B effective, MMLU {p.mmlu_pt_accuracy:.1f}", p.key) for p in lab_presets()]
    return [(NO_SLICE, NO_SLICE), *presets, (CUSTOM_SLICE, CUSTOM_SLICE)]


# Speed features as the panel names them -> the Variant fields they set (see docs/speed.md).
SPEED_FEATURES = {
    "sparse FFN decode": {"sparse_ffn": True},
    "packed bf16 weights (CPU)": {"prepack": True},
    "PLE memory-mapped": {"ple": "mmap"},
    "static KV cache": {"kv_cache": "static"},
    "torch.compile (static cache)": {"compile": True, "kv_cache": "static"},
    "int8 weights": {"quant": "int8"},
}


def speed_fields(features: list[str] | None) -> dict:
    """Variant fields for the speed features ticked in the panel."""
    fields: dict = {}
    for name in features or ():
        fields.update(SPEED_FEATURES[name])
    return fields


def variant_from_panel(
    bench: Workbench,
    model: str,
    attn: str,
    dtype: str,
    device: str,
    towers: list[str],
    preset: str,
    custom_slice: str,
    sparsity: str,
    features: list[str] | None = None,
) -> Variant:
    """The Variant the panel describes; a typed G3nError names the field that is wrong."""
    model = check_model_choice(model, bench.model_roots)
    if preset in (None, "", NO_SLICE):
        matformer = None
    elif preset == CUSTOM_SLICE:
        matformer = parse_slice(custom_slice, num_text_layers(model)) if (custom_slice or "").strip() else None
    else:
        matformer = parse_slice(preset)
    return Variant(
        model=model,
        attn=attn,
        dtype=dtype,
        device=device,
        towers=tuple(towers or ()),
        sparsity=(sparsity or "default").strip(),
        matformer=matformer,
        **speed_fields(features),
    )


def size_table(loaded: LoadedModel) -> pd.DataFrame:
    """Parameters and bytes by component of the loaded model (after slicing and dropped towers)."""
    info = describe(loaded.model, loaded.variant.model, loaded.variant.dtype, loaded.random_weights)
    rows = [
        {"component": name.replace("_", " "), "parameters": human_count(info.params[name]), "bytes": human_bytes(info.bytes[name])}
        for name in info.params
        if info.params[name]
    ]
    rows.append({"component": "total", "parameters": human_count(info.total_params), "bytes": human_bytes(info.total_bytes)})
    rows.append({"component": "effective (Gemma 3n count)", "parameters": human_count(info.effective_params), "bytes": ""})
    return pd.DataFrame(rows)


def model_status(loaded: LoadedModel) -> str:
    """One Markdown line saying what this session runs."""
    variant = loaded.variant
    towers = ", ".join(t for t, on in (("vision", loaded.has_vision), ("audio", loaded.has_audio)) if on) or "text only"
    params = sum(p.numel() for p in loaded.model.parameters())
    return (
        f"**Model:** `{variant.name}` on {variant.device} · {human_count(params)} parameters · "
        f"{human_bytes(loaded.weight_bytes())} in memory · towers: {towers} · context {loaded.context_length} tokens"
        + "".join(f" · ⚠️ {warning}" for warning in variant.warnings)
    )


def weights_banner(loaded: LoadedModel | None, notes: list[str]) -> str:
    """HTML banner: start-up notes (e.g. hub fallback) and a plain warning when the weights are random."""
    parts = [f"<div class='g3n-note'>ℹ️ {escape(note)}</div>" for note in notes]
    if loaded is not None and loaded.random_weights:
        parts.append(
            "<div class='g3n-banner'>⚠️ <b>Random weights.</b> "
            f"<code>{escape(loaded.variant.model)}</code> was built by this project with random weights, so its replies are gibberish. "
            "It is here to try the app and measure speed and memory; for real answers load a Gemma 3n checkpoint "
            "(google/gemma-3n-E2B-it or E4B-it) in the model panel.</div>"
        )
    return "\n".join(parts)


def load_from_panel(
    bench: Workbench,
    model: str,
    attn: str,
    dtype: str,
    device: str,
    towers: list[str],
    preset: str,
    custom_slice: str,
    sparsity: str,
    features: list[str] | None = None,
    progress: gr.Progress = gr.Progress(),
) -> tuple[Variant, str, str, pd.DataFrame]:
    """Load the panel's variant for this session: (variant, status, banner, size table)."""
    try:
        variant = variant_from_panel(bench, model, attn, dtype, device, towers, preset, custom_slice, sparsity, features)
        loaded = bench.cache.get(variant, progress_callback(progress))
    except G3nError as err:
        raise readable_error(err) from err
    return variant, model_status(loaded), weights_banner(loaded, []), size_table(loaded)


def describe_session(bench: Workbench, variant: Variant) -> tuple[str, str, pd.DataFrame]:
    """Status, banner and size table of a session's variant (the launch model on page load)."""
    loaded = bench.cache.get(variant)
    return model_status(loaded), weights_banner(loaded, bench.notes), size_table(loaded)


def render_model_panel(bench: Workbench, variant_state: gr.State) -> tuple[gr.Markdown, gr.HTML]:
    """The collapsible model panel; returns the status line and banner shown above the tabs."""
    default = bench.default_variant
    status_md, banner_html, sizes = describe_session(bench, default)
    banner = gr.HTML(banner_html, elem_id="weights-banner")
    status = gr.Markdown(status_md, elem_id="model-status")
    with gr.Accordion("⚙️ Model and variant: choose what the chat runs", open=False, elem_id="model-panel"):
        with gr.Row():
            with gr.Column(scale=2):
                model = gr.Dropdown(
                    MODEL_CHOICES, value=default.model, allow_custom_value=True, label="Model",
                    info="Built-in, a hub id, or a checkpoint folder the operator allowed",
                )
                with gr.Row():
                    attn = gr.Dropdown(list(ATTN_IMPLS), value=default.attn, label="Attention")
                    dtype = gr.Dropdown(list(DTYPES), value=default.dtype, label="dtype")
                    device = gr.Dropdown(devices(), value=default.device, label="Device")
                towers = gr.CheckboxGroup(["vision", "audio"], value=list(default.towers), label="Towers", info="Leave both off for a text-only model")
                with gr.Row():
                    preset = gr.Dropdown(slice_choices(), value=NO_SLICE, label="MatFormer slice", info="Presets from the MatFormer Lab (for E4B)")
                    custom = gr.Textbox(label="Custom slice", placeholder="ffn=8192,20-24:16384  or  ffn=256*14;skip=7")
                sparsity = gr.Textbox(default.sparsity, label="Activation sparsity", info="default · off · 0.9 · 0.9@0-4 · one value per layer")
                features = gr.CheckboxGroup(
                    list(SPEED_FEATURES), value=[], label="Speed and memory features",
                    info="Compared against plain transformers in benchmarks/README.md; int8 changes the outputs. " + features_note(),
                )
                load = gr.Button("Load", variant="primary")
            with gr.Column(scale=1):
                table = gr.Dataframe(sizes, label="Size by component", interactive=False, wrap=True)
    model.change(lambda m: default_dtype(m, default.device), [model], [dtype], queue=False, api_visibility="undocumented")
    load.click(
        on_gpu(partial(load_from_panel, bench), duration=300),
        [model, attn, dtype, device, towers, preset, custom, sparsity, features],
        [variant_state, status, banner, table],
        concurrency_id="load",
        concurrency_limit=1,
        api_visibility="undocumented",
    )
    return status, banner
