"""Nested (Matryoshka) training for a Gemma 3n model in memory: per-step FFN widths and layer skips.

`NestedModel.set(widths, skip)` makes each FFN use only its first `widths[i]` neurons and turns
the skipped decoder layers into identities. Both are exactly what `g3n_core.matformer.slice_model`
does to a checkpoint (prefix neurons, activation sparsity's statistics over the kept neurons,
skipped layers gone with the KV-sharing roles unchanged), so a model trained with them serves any
prefix width and the ladder's layer skips.
"""

from __future__ import annotations

import random
import types
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

WIDTH_FRACTIONS = (1.0, 0.75, 0.5, 0.25)  # the nested set each layer's FFN width is drawn from


def _nested_mlp_forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
    width = self.nested_width
    if width >= self.intermediate_size:
        return self.full_forward(hidden_states)
    gate = F.linear(hidden_states, self.gate_proj.weight[:width])
    if self.activation_sparsity > 0.0:
        gate = self._gaussian_topk(gate)  # mean/std over the kept neurons, as in the sliced model
    up = F.linear(hidden_states, self.up_proj.weight[:width])
    return F.linear(self.act_fn(gate) * up, self.down_proj.weight[:, :width])


def _skippable_layer_forward(self, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    if self.nested_skip:
        return hidden_states
    return self.full_forward(hidden_states, *args, **kwargs)


@dataclass(frozen=True)
class SubModel:
    """One step's sub-model: FFN width per layer and the layers skipped."""

    widths: tuple[int, ...]
    skip: tuple[int, ...] = ()


class NestedModel:
    """Installs width/skip switches on a Gemma 3n text decoder's layers (instance methods, removable)."""

    def __init__(self, language_model: nn.Module):
        self.layers = list(language_model.layers)
        self.full_widths = tuple(layer.mlp.intermediate_size for layer in self.layers)
        for layer in self.layers:
            mlp = layer.mlp
            mlp.full_forward, mlp.nested_width = mlp.forward, mlp.intermediate_size
            mlp.forward = types.MethodType(_nested_mlp_forward, mlp)
            layer.full_forward, layer.nested_skip = layer.forward, False
            layer.forward = types.MethodType(_skippable_layer_forward, layer)

    def set(self, sub: SubModel) -> None:
        """Run the sub-model `sub` from now on."""
        for i, layer in enumerate(self.layers):
            layer.mlp.nested_width = sub.widths[i]
            layer.nested_skip = i in sub.skip

    def full(self) -> SubModel:
        """The whole model."""
        return SubModel(self.full_widths)

    def remove(self) -> None:
        """Restore the layers' own forwards."""
        for layer in self.layers:
            layer.mlp.forward, layer.forward = layer.mlp.full_forward, layer.full_forward
            del layer.mlp.full_forward, layer.mlp.nested_width, layer.full_forward, layer.nested_skip


def sample_sub_model(rnd: random.Random, full_widths: tuple[int, ...], skip_sets: list[tuple[int, ...]], p_full: float, p_skip: float) -> SubModel:
    """The whole model with probability `p_full`; else a width per layer from WIDTH_FRACTIONS and, with `p_skip`, one skip set."""
    if rnd.random() < p_full:
        return SubModel(full_widths)
    widths = tuple(max(1, int(w * rnd.choice(WIDTH_FRACTIONS))) for w in full_widths)
    skip = rnd.choice(skip_sets) if skip_sets and rnd.random() < p_skip else ()
    return SubModel(widths, skip)
