"""Linear layers that read the same input computed as one product (fuse_linears=True): q|k|v, gate|up.

Gemma 3n's attention projects one hidden state three times (q, k, v; KV-shared layers only q) and
its MLP twice (gate, up). Stacking those weights into one matrix turns three (two) matrix-vector
products into one: fewer kernel launches and parallel regions per decode step, the same bytes read.
Each output element is still one dot product over the same input in the same kernel, so the results
are bit-identical (checked for ATen's AVX2 kernels and oneDNN's, 1 to 100 tokens; tests).

The modules calling them (transformers' Gemma3nTextAttention / Gemma3nTextMLP) stay as they are:
each projection is replaced by a `FusedPart`; the first part called on an input computes the stacked
product and hands the other parts their slices when they are called on that same input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..sparsity import text_layers
from .file_pages import release_file_pages


class FusedGroup(nn.Module):
    """The stacked weight of several bias-free linears that read one input, and the outputs of the last call."""

    def __init__(self, linears: list[nn.Linear]):
        super().__init__()
        self.weight = nn.Parameter(torch.cat([linear.weight.detach() for linear in linears]), requires_grad=False)
        edges = [0]
        for linear in linears:
            edges.append(edges[-1] + linear.out_features)
        self.bounds = list(zip(edges[:-1], edges[1:]))
        self._input: torch.Tensor | None = None
        self._outputs: list[torch.Tensor | None] = []
        self.packed: torch.Tensor | None = None  # oneDNN's layout of the weight, when prepack=True packed it

    def pack_(self, pack) -> None:
        """Keep the stacked weight only in the layout `pack` makes (prepack: oneDNN-packed bfloat16)."""
        self.packed = pack(self.weight)
        del self.weight

    def packed_bytes(self) -> int:
        """Bytes of the packed weight (0 while it is a plain parameter)."""
        return 0 if self.packed is None else self.packed.numel() * self.packed.element_size()

    def product(self, x: torch.Tensor) -> torch.Tensor:
        """x @ W.T for the stacked weight, in whichever layout it is kept."""
        if self.packed is not None:
            from .prepack import packed_linear

            return packed_linear(x, self.packed)
        return F.linear(x, self.weight)

    def output(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Part `index` of the stacked product of `x`, computing it when `x` is a new input."""
        if self._input is not x or self._outputs[index] is None:
            y = self.product(x)
            self._input, self._outputs = x, [y[..., low:high].contiguous() for low, high in self.bounds]
        out, self._outputs[index] = self._outputs[index], None
        if all(o is None for o in self._outputs):
            self._input, self._outputs = None, []  # every part taken: hold no activations between calls
        return out


class FusedPart(nn.Module):
    """One projection of a FusedGroup, in place of the nn.Linear it was."""

    def __init__(self, group: FusedGroup, index: int, in_features: int):
        super().__init__()
        self.index, self.in_features = index, in_features
        low, high = group.bounds[index]
        self.out_features = high - low
        self.__dict__["group"] = group  # not a submodule: the parent owns it once, every part shares it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.group.output(self.index, x)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, part {self.index} of a fused product"


def _fuse(parent: nn.Module, names: list[str]) -> None:
    linears = [getattr(parent, name) for name in names]
    group = FusedGroup(linears)
    parent.fused_projections = group
    for index, (name, linear) in enumerate(zip(names, linears)):
        setattr(parent, name, FusedPart(group, index, linear.in_features))
        release_file_pages(linear.parameters())  # read once into the stacked copy


def _plain(*modules: nn.Module) -> bool:
    return all(type(m) is nn.Linear and m.bias is None for m in modules)


def fuse_linears(model: nn.Module) -> int:
    """Stack q|k|v (q alone in KV-shared layers: nothing to fuse) and gate|up in every text layer; returns groups made."""
    groups = 0
    for layer in text_layers(model):
        attention, mlp = layer.self_attn, layer.mlp
        if not getattr(attention, "is_kv_shared_layer", False) and _plain(attention.q_proj, attention.k_proj, attention.v_proj):
            _fuse(attention, ["q_proj", "k_proj", "v_proj"])
            groups += 1
        if _plain(getattr(mlp, "gate_proj", None), getattr(mlp, "up_proj", None)):
            _fuse(mlp, ["gate_proj", "up_proj"])
            groups += 1
    return groups
