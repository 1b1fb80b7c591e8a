"""Elastic MatFormer slices: a slice that runs from its resident parent's weights, copying none of them.

A slice is a prefix of each kept layer's FFN plus a set of bypassed layers, so it needs no weights
of its own. `elastic_view(parent, variant)` builds a second module tree over the parent's tensors:

- the root, the decoder and each kept layer are new module objects (shallow copies) carrying the
  slice's config, layer index and cache slot; every other module (towers, embeddings, attention
  projections, norms, AltUp, LAuReL) is the parent's own object;
- FFN widths are views: gate/up rows [:k] (contiguous) and down columns [:, :k], a strided view that
  `F.linear` reads in place (measured: the same kernel time and bit-identical output as a contiguous
  copy on this CPU, bf16 and fp32; see benchmarks/elastic.py);
- skipped layers are simply absent from the view's layer list; the per-layer-embedding lookup and
  the per-layer projection return only the kept layers' blocks;
- KV sharing is the exported slice's: producers are never skipped (`plan_slice` checks it), every
  kept layer keeps its role, and a KV-shared layer reads the states its attention type's producer
  stored in the same forward pass, so the mapping an export writes into its config holds here too.

Nothing in the parent changes and nothing is switched: a view is its own model object, so
requests on different slices of one parent never see each other's configuration (they share the
parent's lock, so on one machine they take turns, as requests on one model always did).

Speed features: views compose with `sparse_ffn` (row tables narrowed as views), `ple=mmap` (the
mapped table's lookup, then the kept blocks) and `kv_cache`/`compile` (per-view generate settings).
`quant=int8` and `prepack=True` are refused (`elastic_refusal`): an int8 row scale over a full
down_proj row is not the scale of its prefix, and oneDNN's packed weights are opaque; such slices
load on their own.
"""

from __future__ import annotations

import time
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import VariantError
from ..loading import LoadedModel
from ..sources import classify, read_config
from ..sparsity import parse_sparsity, resolve_pattern, set_activation_sparsity
from ..speed.generation_settings import generate_kwargs
from ..speed.sparse_ffn import RowTable, SparseDecodeMLP
from ..variant import Variant
from .slicing import SlicePlan, plan_slice, slice_config, text_model


def elastic_refusal(variant: Variant) -> str | None:
    """Why `variant` cannot run as an elastic view of its parent (None when it can)."""
    if variant.matformer is None:
        return "it is not a MatFormer slice"
    if variant.quant != "none":
        return "int8 weights are quantized per full row, which is not the scale of a narrower FFN; the slice loads on its own"
    if variant.prepack:
        return "oneDNN-packed weights are opaque and cannot be narrowed in place; the slice loads on its own"
    return None


def parent_key(variant: Variant) -> Variant:
    """What a resident model must equal to serve `variant` elastically: the variant without its slice and sparsity.

    Sparsity is an attribute of each MLP, not of the weights, so a view sets its own. Memoised on the
    variant (`Variant.unsliced`), so a cache look-up re-reads no config.
    """
    return variant.unsliced()


def parent_variant(variant: Variant) -> Variant:
    """The parent to load for a slice: the same Variant without `matformer` (its sparsity when the parent takes it)."""
    try:
        return variant.replace(matformer=None)
    except VariantError:  # e.g. one sparsity value per kept layer: not a setting for the parent's layer count
        return parent_key(variant)


# -- module trees that share tensors -----------------------------------------------------------------


def _clone(module: nn.Module, **changes) -> nn.Module:
    """A new module object holding the same tensors and children, with `changes` applied; its own
    registries (parameters, buffers, children, hooks) are copies, so nothing reaches the original.

    Changes go straight into the registries (a parameter, a child module, else a plain attribute):
    nn.Module.__setattr__ would do the same with checks that cost more than the whole copy.
    """
    new = object.__new__(type(module))
    state = new.__dict__
    state.update(module.__dict__)
    for key, value in state.items():
        if key[0] == "_" and isinstance(value, (dict, set)):
            state[key] = value.copy()
    for name, value in changes.items():
        if isinstance(value, nn.Parameter):
            state["_parameters"][name] = value
        elif isinstance(value, nn.Module):
            state["_modules"][name] = value
        else:
            state[name] = value
    return new


def _view_param(param: nn.Parameter, view: torch.Tensor) -> nn.Parameter:
    """A parameter that is a view of `param`'s storage (no bytes copied)."""
    return nn.Parameter(view, requires_grad=param.requires_grad)


def _narrow_rows(linear: nn.Linear, width: int) -> nn.Linear:
    return _clone(linear, weight=_view_param(linear.weight, linear.weight[:width]), out_features=width)


def _narrow_columns(linear: nn.Linear, width: int) -> nn.Linear:
    # strided: F.linear reads a column prefix in place
    return _clone(linear, weight=_view_param(linear.weight, linear.weight[:, :width]), in_features=width)


def _narrow_table(table: RowTable, width: int) -> RowTable:
    return _clone(table, rows=_view_param(table.rows, table.rows[:width]))


def _mlp_view(mlp: nn.Module, width: int, config) -> nn.Module:
    """The MLP reading its first `width` neurons (dense Gemma3nTextMLP or SparseDecodeMLP)."""
    if width == mlp.intermediate_size:
        return _clone(mlp, config=config)
    if isinstance(mlp, SparseDecodeMLP):  # both tables are [intermediate, hidden]: row prefixes
        tables = {"up_rows": _narrow_table(mlp.up_rows, width), "down_rows": _narrow_table(mlp.down_rows, width)}
        counters = {"last_active": None, "sparse_calls": 0, "sparse_active_total": 0}
        return _clone(mlp, config=config, intermediate_size=width, gate_proj=_narrow_rows(mlp.gate_proj, width), **tables, **counters)
    projections = {"up_proj": _narrow_rows(mlp.up_proj, width), "down_proj": _narrow_columns(mlp.down_proj, width)}
    return _clone(mlp, config=config, intermediate_size=width, gate_proj=_narrow_rows(mlp.gate_proj, width), **projections)


def _layer_ranges(plan: SlicePlan) -> list[tuple[int, int]]:
    """Kept layers as maximal runs [a, b) of parent indices."""
    runs: list[list[int]] = []
    for i in plan.kept:
        if runs and runs[-1][1] == i:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return [(a, b) for a, b in runs]


class KeptLayerEmbedding(nn.Module):
    """The parent's per-layer embedding lookup [.., L*P], keeping the kept layers' blocks [.., K*P]."""

    def __init__(self, inner: nn.Module, plan: SlicePlan):
        super().__init__()
        self.inner = inner
        self.layers, self.per_layer_dim = plan.parent_layers, plan.per_layer_dim
        self.register_buffer("kept", torch.tensor(plan.kept), persistent=False)
        self.num_embeddings = inner.num_embeddings
        self.embedding_dim = len(plan.kept) * plan.per_layer_dim
        self.padding_idx = inner.padding_idx

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        rows = self.inner(input_ids).unflatten(-1, (self.layers, self.per_layer_dim))
        return rows.index_select(-2, self.kept.to(rows.device)).flatten(-2)


class KeptLayerProjection(nn.Module):
    """The parent's per-layer model projection [H -> L*P], computing only the kept layers' rows [H -> K*P]."""

    def __init__(self, inner: nn.Linear, plan: SlicePlan):
        super().__init__()
        p = plan.per_layer_dim
        self.inner = inner
        self.rows = [(a * p, b * p) for a, b in _layer_ranges(plan)]
        self.in_features, self.out_features = inner.in_features, len(plan.kept) * p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.inner.weight
        return torch.cat([F.linear(x, weight[a:b]) for a, b in self.rows], dim=-1)


# -- the view ----------------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _checkpoint_sparsity(model: str) -> tuple[float, ...]:
    """The checkpoint's own per-layer sparsity (a loaded parent's config may carry its variant's setting instead)."""
    return tuple(float(v) for v in read_config(classify(model)).text_config.activation_sparsity_pattern)


def _sparsity_pattern(variant: Variant, plan: SlicePlan) -> list[float]:
    """The view's per-layer sparsity: the variant's setting over the checkpoint's pattern of the kept layers."""
    checkpoint = _checkpoint_sparsity(variant.model)
    try:
        return resolve_pattern(parse_sparsity(variant.sparsity), [checkpoint[i] for i in plan.kept])
    except ValueError as err:
        raise VariantError("sparsity", str(err)) from err


def _view_decoder(parent_text: nn.Module, plan: SlicePlan, config) -> nn.Module:
    """The parent's Gemma3nTextModel as the slice sees it: kept layers renumbered, FFNs narrowed, PLE blocks kept."""
    layers = []
    for new, (old, width) in enumerate(zip(plan.kept, plan.widths)):
        layer = parent_text.layers[old]
        attention = _clone(layer.self_attn, layer_idx=new, config=config)  # the cache slot it writes: the exported slice's
        layers.append(_clone(layer, layer_idx=new, config=config, self_attn=attention, mlp=_mlp_view(layer.mlp, width, config)))
    changes = {"config": config, "layers": nn.ModuleList(layers)}
    if len(plan.kept) < plan.parent_layers:
        changes["embed_tokens_per_layer"] = KeptLayerEmbedding(parent_text.embed_tokens_per_layer, plan)
        changes["per_layer_model_projection"] = KeptLayerProjection(parent_text.per_layer_model_projection, plan)
    return _clone(parent_text, **changes)


def elastic_model(parent_model: nn.Module, plan: SlicePlan) -> nn.Module:
    """A model object that runs the slice `plan` on `parent_model`'s tensors (the parent is untouched)."""
    config = slice_config(parent_model.config, plan)
    decoder = _view_decoder(text_model(parent_model), plan, config.get_text_config())
    if hasattr(parent_model.model, "language_model"):  # multimodal: Gemma3nModel holds the decoder
        inner = _clone(parent_model.model, config=config, language_model=decoder)
    else:  # text-only: root.model is the decoder itself
        inner = decoder
    return _clone(parent_model, config=config, model=inner)


def elastic_view(parent: LoadedModel, variant: Variant) -> LoadedModel:
    """`variant`'s slice served from the resident `parent` (same weights, own configuration, the parent's lock)."""
    start = time.perf_counter()
    reason = elastic_refusal(variant)
    if reason is not None:
        raise VariantError("matformer", f"{variant.name} cannot run elastically: {reason}")
    if parent_key(parent.variant) != parent_key(variant):
        raise VariantError("matformer", f"{parent.variant.name} is not the parent of {variant.name}")
    plan = plan_slice(text_model(parent.model).config, variant.matformer)
    model = elastic_model(parent.model, plan)
    set_activation_sparsity(model, _sparsity_pattern(variant, plan))
    extras = {"elastic_parent": parent, "generate_kwargs": generate_kwargs(variant)}
    if variant.sparse_ffn:
        extras["sparse_ffn_layers"] = [i for i, layer in enumerate(text_model(model).layers) if isinstance(layer.mlp, SparseDecodeMLP)]
    return LoadedModel(
        variant=variant,
        model=model,
        processor=parent.processor,
        config=model.config if hasattr(model.model, "language_model") else slice_config(parent.config, plan),
        random_weights=parent.random_weights,
        checkpoint=parent.checkpoint,
        load_seconds=time.perf_counter() - start,
        lock=parent.lock,
        extras=extras,
    )


def is_elastic(loaded: LoadedModel) -> bool:
    """True for a view built by `elastic_view`."""
    return "elastic_parent" in loaded.extras
