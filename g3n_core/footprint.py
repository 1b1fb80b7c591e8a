"""What a Variant will hold in memory once loaded, estimated before loading, and what would fit a budget.

The estimate is `g3n_core.info`'s meta-device parameter count (nothing is allocated), adjusted for
the features that change what stays resident: the dtype, dropped towers, a MatFormer slice,
`ple="mmap"` (the per-layer table stays in the checkpoint file) and `quant="int8"` (the decoder's
linear weights become one byte each plus one scale per row; the LM head, tied to the token table,
gets an int8 copy of its own). It matches `LoadedModel.weight_bytes()` after the load to within a
few per cent (tested on tiny), so `ModelCache` can refuse a model before the loader allocates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from .errors import G3nError, ModelTooLargeError
from .info import count_components, human_bytes, meta_model
from .matformer.spec import MatformerSlice
from .sources import classify, read_config
from .variant import DTYPES, Variant

TEXT_COMPONENTS = ("token_embeddings", "per_layer_embeddings", "text_decoder")
TOWER_COMPONENTS = {"vision": "vision_tower", "audio": "audio_tower"}


@dataclass(frozen=True)
class Census:
    """Parameter counts that set a model's resident size, whatever its dtype and features."""

    params: dict[str, int]  # by component, tied weights once, only the towers the variant loads
    int8_params: int  # weights of the decoder's linears that quant=int8 stores as int8 (not the tied LM head)
    int8_rows: int  # their output channels: one scale each
    tied_head: tuple[int, int] | None  # (rows, columns) of an LM head tied to the token table: int8 copies it


@dataclass(frozen=True)
class Footprint:
    """The estimated resident bytes of a variant, by component."""

    variant: Variant
    bytes_by_component: dict[str, int]

    @property
    def total_bytes(self) -> int:
        """Everything the loaded model will hold."""
        return sum(self.bytes_by_component.values())


@lru_cache(maxsize=8)
def _tower_params(model: str) -> dict[str, tuple[int, int]]:
    """Per tower component: (the tower's own parameters, its projection into the text model's embeddings)."""
    full = meta_model(read_config(classify(model)))
    inner = full.model
    return {
        component: (count_components(full)[component] - _count(getattr(inner, f"embed_{tower}")), _count(getattr(inner, f"embed_{tower}")))
        for tower, component in TOWER_COMPONENTS.items()
    }


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _towers_params(model: str, towers: tuple[str, ...]) -> dict[str, int]:
    """Tower parameters a variant holds: a dropped tower's projection stays in a multimodal model (loading keeps it)."""
    if not towers:
        return {}
    params = _tower_params(model)
    return {component: params[component][0] * (tower in towers) + params[component][1] for tower, component in TOWER_COMPONENTS.items()}


@lru_cache(maxsize=64)
def _text_census(model: str, matformer: MatformerSlice | None) -> Census:
    """The text model's counts (the towers do not change them): built on meta once per slice (~0.1 s for E4B)."""
    from .sparsity import text_decoder
    from .speed.quantize import quantizable  # the very rule quant=int8 applies

    text = meta_model(read_config(classify(model)), text_only=True)
    if matformer is not None:
        from .matformer.slicing import check_slice, slice_model

        check_slice(text.config, matformer)
        text = slice_model(text, matformer)
    params = {name: count for name, count in count_components(text).items() if name in TEXT_COMPONENTS}
    linears = [m for m in text_decoder(text).modules() if quantizable(m)]
    head = text.lm_head
    tied = head.weight is text.get_input_embeddings().weight
    if not tied and quantizable(head):
        linears.append(head)
    return Census(
        params=params,
        int8_params=sum(m.weight.numel() for m in linears),
        int8_rows=sum(m.out_features for m in linears),
        tied_head=(head.out_features, head.in_features) if tied and quantizable(head) else None,
    )


def census(model: str, towers: tuple[str, ...], matformer: MatformerSlice | None) -> Census:
    """Counts for a model with these towers and slice."""
    text = _text_census(model, matformer)
    return Census({**text.params, **_towers_params(model, towers)}, text.int8_params, text.int8_rows, text.tied_head)


def footprint(variant: Variant) -> Footprint:
    """The resident bytes `variant` will take once loaded, without loading it."""
    counts = census(variant.model, variant.towers, variant.matformer)
    element = torch.empty(0, dtype=DTYPES[variant.dtype]).element_size()
    sizes = {name: count * element for name, count in counts.params.items()}
    if variant.ple == "mmap":
        sizes["per_layer_embeddings"] = 0  # mapped from the checkpoint file: pages are read as tokens need them
    if variant.quant == "int8":
        sizes["text_decoder"] -= counts.int8_params * element - counts.int8_params - counts.int8_rows * element
        if counts.tied_head is not None:
            rows, columns = counts.tied_head
            sizes["lm_head_int8"] = rows * columns + rows * element
    return Footprint(variant, sizes)


def estimate_bytes(variant: Variant) -> int:
    """`footprint(variant).total_bytes`."""
    return footprint(variant).total_bytes


# -- what fits a budget ----------------------------------------------------------------------------

# One-knob (then two-knob) changes that shrink a model, least intrusive first.
SHRINKING_CHANGES: tuple[dict, ...] = (
    {"dtype": "bfloat16"},
    {"quant": "int8"},
    {"dtype": "bfloat16", "quant": "int8"},
    {"ple": "mmap", "dtype": "bfloat16"},
    {"towers": ()},
    {"dtype": "bfloat16", "quant": "int8", "ple": "mmap"},
    {"dtype": "bfloat16", "quant": "int8", "ple": "mmap", "towers": ()},
)
SLICE_BASES: tuple[dict, ...] = ({}, {"dtype": "bfloat16"}, {"dtype": "bfloat16", "quant": "int8"}, SHRINKING_CHANGES[-1])


def change_label(change: dict) -> str:
    """'dtype=bfloat16 quant=int8': a change as spec tokens (towers=text for a text-only model)."""
    words = []
    for key, value in change.items():
        if key == "towers":
            value = "+".join(value) or "text"
        elif key == "matformer":
            value = value.label
        words.append(f"{key}={value}")
    return " ".join(words)


def _changed(variant: Variant, change: dict) -> dict:
    return {k: v for k, v in change.items() if getattr(variant, k) != v}


def _lab_slices(variant: Variant) -> list[MatformerSlice]:
    """The MatFormer Lab presets that fit the model, largest first (only E4B has them)."""
    from .matformer.presets import lab_presets
    from .matformer.slicing import check_slice

    if variant.matformer is not None:
        return []
    parent = read_config(classify(variant.model)).text_config
    fitting = []
    for preset in sorted(lab_presets(), key=lambda p: p.effective_params_b, reverse=True):
        try:
            check_slice(parent, preset.to_slice())
        except G3nError:
            continue
        fitting.append(preset.to_slice())
    return fitting


def _fits(variant: Variant, change: dict, budget_bytes: int) -> int | None:
    try:
        size = estimate_bytes(variant.replace(**change))
    except G3nError:
        return None  # e.g. bfloat16 on a GPU without it, ple=mmap where it cannot run
    return size if size <= budget_bytes else None


def alternatives(variant: Variant, budget_bytes: int, limit: int = 4) -> list[tuple[str, int]]:
    """Up to `limit` changes of `variant` that would fit `budget_bytes`: (spec tokens, estimated bytes).

    The knob changes of SHRINKING_CHANGES first, then the largest MatFormer Lab preset that fits
    (as the variant is, else with each SLICE_BASES change in turn).
    """
    knobs: list[tuple[str, int]] = []
    for change in filter(None, (_changed(variant, c) for c in SHRINKING_CHANGES)):
        size = _fits(variant, change, budget_bytes)
        if size is not None:
            knobs.append((change_label(change), size))
    slices = _lab_slices(variant)
    for base in SLICE_BASES:
        hit = next(((slc, size) for slc in slices if (size := _fits(variant, {"matformer": slc, **base}, budget_bytes))), None)
        if hit:
            return knobs[: limit - 1] + [(change_label({"matformer": hit[0], **_changed(variant, base)}), hit[1])]
    return knobs[:limit]


def too_large_error(variant: Variant, needed: int, budget_bytes: int) -> ModelTooLargeError:
    """The refusal for a variant whose estimate is over the budget, naming what would fit."""
    options = alternatives(variant, budget_bytes)
    advice = (
        "would fit: " + "; ".join(f"{label} ({human_bytes(size)})" for label, size in options)
        if options
        else "no smaller dtype, int8, memory-mapped per-layer embeddings, text-only model or MatFormer preset fits it either; "
        "choose a smaller model"
    )
    return ModelTooLargeError(
        f"{variant.name} needs about {human_bytes(needed)} in memory, over the model cache's budget of "
        f"{human_bytes(budget_bytes)} ($G3N_CACHE_BYTES, default 60% of RAM); {advice}",
        needed=needed,
        budget=budget_bytes,
        alternatives=options,
    )
