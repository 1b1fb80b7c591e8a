"""Slicing Gemma 3n to a MatFormer sub-model: check a slice against its parent, rewrite the config,
cut the weights of a model in memory (real tensors or the meta device).

A slice keeps the first k neurons of each kept layer's FFN (Matryoshka nesting: E4B's first 8192
neurons are E2B's FFN) and drops whole layers. The result is an ordinary Gemma 3n model: its
config says how many layers it has, which are KV-shared and how wide each FFN is, so it runs,
generates and round-trips through save_pretrained / from_pretrained like any checkpoint.

KV sharing must survive the cut unchanged: the last `num_kv_shared_layers` layers reuse the keys
and values that the last unshared layer of their attention type ("store" in
`text_config.kv_sharing_modes`) computed. Those producers can never be skipped; skipped consumers
just leave the shared range shorter.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from transformers import Gemma3nConfig, Gemma3nTextConfig

from ..errors import SliceError
from .spec import MatformerSlice, ranges

TOWER_CONFIGS = ("text_config", "vision_config", "audio_config")


@dataclass(frozen=True)
class SlicePlan:
    """A checked slice, resolved against its parent: which parent layers stay and how wide their FFNs are."""

    parent_layers: int
    kept: tuple[int, ...]  # parent indices of the kept layers, in order; new index = position here
    widths: tuple[int, ...]  # FFN width of each kept layer
    per_layer_dim: int  # hidden_size_per_layer_input: one layer's block in the PLE table
    num_kv_shared_layers: int  # of the sliced model

    def is_identity(self, parent: Gemma3nTextConfig) -> bool:
        """True when nothing is cut."""
        return len(self.kept) == self.parent_layers and list(self.widths) == list(parent.intermediate_size)


# -- checking ----------------------------------------------------------------------------------------


def _check_preset_fits(slc: MatformerSlice, parent_layers: int) -> None:
    from .mini_ladder import mini_parent_layers, mini_presets
    from .presets import lab_parent_layers, lab_presets

    if slc.preset in {p.key for p in mini_presets()} and parent_layers != mini_parent_layers():
        raise SliceError(
            f"preset {slc.preset} is a slice of the {mini_parent_layers()}-layer built-in mini, but this model has "
            f"{parent_layers} layers; use --model mini, or give a custom slice with --ffn/--skip"
        )
    if slc.preset is None or slc.preset not in {p.key for p in lab_presets()}:
        return
    if parent_layers != lab_parent_layers():
        raise SliceError(
            f"preset {slc.preset} slices the {lab_parent_layers()}-layer Gemma 3n E4B, but this model has "
            f"{parent_layers} layers; use E4B (or e4b-shape), or give a custom slice with --ffn/--skip"
        )


def _check_skips(parent: Gemma3nTextConfig, skip: tuple[int, ...]) -> None:
    n = parent.num_hidden_layers
    modes = parent.kv_sharing_modes
    for i in skip:
        if i >= n:
            raise SliceError(f"cannot skip it: the parent has layers 0-{n - 1}", layer=i)
        if i in (0, n - 1):
            raise SliceError(f"the {'first' if i == 0 else 'last'} layer cannot be skipped; keep layers 0 and {n - 1}", layer=i)
        if modes[i] == "store":
            layer_type = parent.layer_types[i]
            users = [j for j, mode in enumerate(modes) if mode == "reuse" and parent.layer_types[j] == layer_type]
            raise SliceError(
                f"cannot skip it: it computes the keys and values that the KV-shared {layer_type} layers "
                f"{ranges(users, ', ')} reuse; keep it",
                layer=i,
            )


def _widths(parent: Gemma3nTextConfig, slc: MatformerSlice, kept: list[int]) -> tuple[int, ...]:
    parent_widths = list(parent.intermediate_size)
    if slc.ffn is None:
        return tuple(parent_widths[i] for i in kept)
    if len(slc.ffn) != len(kept):
        missing = kept[len(slc.ffn)] if len(slc.ffn) < len(kept) else None
        raise SliceError(
            f"the slice gives {len(slc.ffn)} FFN widths but keeps {len(kept)} layers "
            f"({parent.num_hidden_layers} in the parent, {len(slc.skip)} skipped); give one width per kept layer",
            layer=missing,
        )
    for layer, width in zip(kept, slc.ffn):
        if width <= 0:
            raise SliceError(f"FFN width must be positive, got {width}", layer=layer)
        if width > parent_widths[layer]:
            raise SliceError(f"FFN width {width} is above the parent's {parent_widths[layer]}; a slice can only narrow", layer=layer)
    return tuple(slc.ffn)


def _check_layer_types(parent: Gemma3nTextConfig, kept: list[int]) -> None:
    left = {parent.layer_types[i] for i in kept}
    for layer_type in sorted(set(parent.layer_types) - left):
        first = next(i for i, t in enumerate(parent.layer_types) if t == layer_type)
        raise SliceError(f"the slice leaves no {layer_type} layer; keep at least one (layer {first} is one)", layer=first)


def _check_kv_sharing(parent: Gemma3nTextConfig, plan: SlicePlan) -> None:
    """The sliced model must share the same layers' keys/values, fed by the same producers."""
    sliced = sliced_text_config(parent, plan)
    try:
        modes = sliced.kv_sharing_modes
    except ValueError as err:  # a KV-shared attention type with no producer left
        raise SliceError(f"KV sharing cannot work after this slice: {err}; keep the layers that store keys/values") from err
    parent_modes = parent.kv_sharing_modes
    for new, old in enumerate(plan.kept):
        if modes[new] != parent_modes[old]:
            raise SliceError(
                f"its KV-sharing role would change from {parent_modes[old]} to {modes[new]}; keep the layers "
                "before the KV-shared range that store keys/values",
                layer=old,
            )


def plan_slice(parent: Gemma3nTextConfig, slc: MatformerSlice) -> SlicePlan:
    """Check `slc` against the parent's text config and resolve it; raises SliceError naming the layer."""
    _check_preset_fits(slc, parent.num_hidden_layers)
    _check_skips(parent, slc.skip)
    kept = [i for i in range(parent.num_hidden_layers) if i not in set(slc.skip)]
    widths = _widths(parent, slc, kept)
    _check_layer_types(parent, kept)
    modes = parent.kv_sharing_modes
    plan = SlicePlan(
        parent_layers=parent.num_hidden_layers,
        kept=tuple(kept),
        widths=widths,
        per_layer_dim=parent.hidden_size_per_layer_input,
        num_kv_shared_layers=sum(1 for i in kept if modes[i] == "reuse"),
    )
    _check_kv_sharing(parent, plan)
    return plan


def check_slice(parent_text_config: Gemma3nTextConfig, slc: MatformerSlice) -> None:
    """Raise SliceError (naming the layer) when `slc` does not fit the parent."""
    plan_slice(parent_text_config, slc)


# -- the config --------------------------------------------------------------------------------------


def _rewrite_text_config_(text: Gemma3nTextConfig, plan: SlicePlan) -> None:
    kept = plan.kept
    types = [text.layer_types[i] for i in kept]
    sparsity = [float(text.activation_sparsity_pattern[i]) for i in kept]
    text.num_hidden_layers = len(kept)
    text.layer_types = types
    text.intermediate_size = list(plan.widths)
    text.activation_sparsity_pattern = sparsity
    text.num_kv_shared_layers = plan.num_kv_shared_layers


def sliced_text_config(parent: Gemma3nTextConfig, plan: SlicePlan) -> Gemma3nTextConfig:
    """A new text config describing the sliced decoder (the parent is untouched)."""
    text = copy.deepcopy(parent)
    _rewrite_text_config_(text, plan)
    return text


def slice_config(config: Gemma3nConfig | Gemma3nTextConfig, plan: SlicePlan) -> Gemma3nConfig | Gemma3nTextConfig:
    """A new full (or text) config for the sliced model; towers are unchanged."""
    new = copy.deepcopy(config)
    _rewrite_text_config_(new.get_text_config(), plan)
    return new


# -- the weights -------------------------------------------------------------------------------------


def text_model(model: nn.Module) -> nn.Module:
    """The Gemma3nTextModel inside a multimodal or text-only Gemma 3n model."""
    inner = model.model
    return inner.language_model if hasattr(inner, "language_model") else inner


def _new_param(old: nn.Parameter, value: torch.Tensor) -> nn.Parameter:
    # clone: a slice of the old weight is a view that would keep the whole old storage alive
    return nn.Parameter(value.clone(memory_format=torch.contiguous_format), requires_grad=old.requires_grad)


def keep_rows(weight: torch.Tensor, blocks: list[tuple[int, int]]) -> torch.Tensor:
    """Rows [a, b) of each block, stacked in order."""
    return torch.cat([weight[a:b] for a, b in blocks], dim=0)


def keep_columns(weight: torch.Tensor, blocks: list[tuple[int, int]]) -> torch.Tensor:
    """Columns [a, b) of each block, side by side in order."""
    return torch.cat([weight[:, a:b] for a, b in blocks], dim=1)


def layer_blocks(plan: SlicePlan) -> list[tuple[int, int]]:
    """Index ranges of the kept layers' blocks in a [L * P] axis (PLE table columns, per-layer projection rows)."""
    p = plan.per_layer_dim
    return [(i * p, (i + 1) * p) for i in plan.kept]


def _narrow_mlp_(mlp: nn.Module, width: int) -> None:
    """Keep the first `width` neurons: gate/up rows, down columns."""
    if width == mlp.intermediate_size:
        return
    for name in ("gate_proj", "up_proj"):
        linear = getattr(mlp, name)
        linear.weight = _new_param(linear.weight, linear.weight[:width])
        linear.out_features = width
    mlp.down_proj.weight = _new_param(mlp.down_proj.weight, mlp.down_proj.weight[:, :width])
    mlp.down_proj.in_features = width
    mlp.intermediate_size = width


def _slice_per_layer_tables_(text: nn.Module, plan: SlicePlan) -> None:
    """PLE table [V, L*P] -> kept columns; per-layer model projection [L*P, H] -> kept rows."""
    blocks = layer_blocks(plan)
    width = len(plan.kept) * plan.per_layer_dim
    table = text.embed_tokens_per_layer
    if getattr(table, "weight", None) is not None:  # a mapped table (ple=mmap) reads the kept columns itself
        table.weight = _new_param(table.weight, keep_columns(table.weight, blocks))
    table.embedding_dim = width
    projection = text.per_layer_model_projection
    projection.weight = _new_param(projection.weight, keep_rows(projection.weight, blocks))
    projection.out_features = width


def _renumber_layers_(text: nn.Module, plan: SlicePlan, config: Gemma3nTextConfig) -> None:
    modes = config.kv_sharing_modes
    layers = nn.ModuleList([text.layers[i] for i in plan.kept])
    for new, (layer, width) in enumerate(zip(layers, plan.widths)):
        layer.layer_idx = new
        attention = layer.self_attn
        attention.layer_idx = new  # the cache slot it writes
        attention.is_kv_shared_layer = modes[new] == "reuse"
        attention.store_full_length_kv = modes[new] == "store"
        assert attention.layer_type == config.layer_types[new]
        _narrow_mlp_(layer.mlp, width)
        layer.mlp.activation_sparsity = config.activation_sparsity_pattern[new]
    text.layers = layers
    # Released checkpoints hold k/v weights for KV-shared layers; from_pretrained must ignore them.
    text._keys_to_ignore_on_load_unexpected = [
        f"layers.{i}.self_attn.{name}"
        for i, layer in enumerate(layers)
        if layer.self_attn.is_kv_shared_layer
        for name in ("k_proj", "v_proj", "k_norm", "v_norm")
    ]


def _rebind_configs_(model: nn.Module, plan: SlicePlan) -> Gemma3nTextConfig:
    """Give every module the sliced config (a new object: the caller's config stays as it was)."""
    old = model.config
    new = slice_config(old, plan)
    replacement = {id(old): new}
    if isinstance(old, Gemma3nConfig):
        for name in TOWER_CONFIGS:
            replacement[id(getattr(old, name))] = getattr(new, name)
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is None:
            continue
        if id(config) in replacement:
            module.config = replacement[id(config)]
        elif isinstance(config, Gemma3nTextConfig):  # a text config copied apart from the top one
            module.config = new.get_text_config()
    return new.get_text_config()


def slice_model(model: nn.Module, slc: MatformerSlice) -> nn.Module:
    """Cut `model` (Gemma3nForConditionalGeneration or Gemma3nForCausalLM) to the slice, in place; returns it."""
    text = text_model(model)
    parent = text.config
    plan = plan_slice(parent, slc)
    if plan.is_identity(parent):
        return model
    config = _rebind_configs_(model, plan)
    _renumber_layers_(text, plan, config)
    _slice_per_layer_tables_(text, plan)
    return model
