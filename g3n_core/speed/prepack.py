"""Linear weights pre-packed for oneDNN on the CPU (prepack=True, bfloat16).

A bfloat16 `F.linear` on the CPU runs through oneDNN with the weight in PyTorch's plain row-major
layout; for one-token decode products it reaches ~16 GB/s here. Re-laying the weight out once in
oneDNN's blocked format (`torch.ops.mkldnn._reorder_linear_weight`) and calling the packed kernel
(`_linear_pointwise`) reads it at ~19 GB/s with bit-identical results on a CPU with AVX512_BF16 and
AMX off (same kernel and summation order; measured equal for 1..128 tokens). With AMX, or without
AVX512_BF16, a few outputs round differently: `g3n_core.hardware` says which holds on this CPU.
In float32 PyTorch uses MKL instead, the packed oneDNN kernel is neither faster nor identical, so
the option is bfloat16-only.

The packed tensor is opaque (no storage, no data pointer), so it is held as a plain attribute, not a
buffer: code that walks buffers keeps working, and `packed_bytes()` reports its size.
"""

from __future__ import annotations

import torch
from torch import nn

from .file_pages import release_file_pages
from .linear_swap import swap_linears


def pack_weight(weight: torch.Tensor) -> torch.Tensor:
    """A [out, in] bfloat16 weight re-laid out for oneDNN, tuned for one-token products (opaque tensor)."""
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), 1)


def packed_linear(x: torch.Tensor, packed: torch.Tensor) -> torch.Tensor:
    """x @ W.T with W packed by `pack_weight` (any leading dimensions)."""
    return torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")


class PackedLinear(nn.Module):
    """A bias-free bfloat16 nn.Linear whose weight lives in oneDNN's blocked layout."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.packed = pack_weight(linear.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return packed_linear(x, self.packed)

    def packed_bytes(self) -> int:
        """Bytes of the packed weight."""
        return self.packed.numel() * self.packed.element_size()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, oneDNN-packed"


def packable(linear: nn.Module) -> bool:
    """A plain, bias-free bfloat16 Linear on the CPU."""
    return (
        type(linear) is nn.Linear
        and linear.bias is None
        and linear.weight.dtype == torch.bfloat16
        and linear.weight.device.type == "cpu"
    )


def prepack_linears(model: nn.Module) -> int:
    """Replace every packable Linear of the text decoder and the LM head with a PackedLinear (and pack fused
    projections, fuse_linears=True); returns how many."""
    from .fused_linears import FusedGroup

    groups = [m for m in model.modules() if isinstance(m, FusedGroup) and m.weight.dtype == torch.bfloat16 and m.weight.device.type == "cpu"]
    for group in groups:
        weight = group.weight
        group.pack_(pack_weight)
        release_file_pages([weight])
    return swap_linears(model, packable, PackedLinear) + len(groups)
