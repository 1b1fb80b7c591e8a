"""Exact sparse FFN decode (sparse_ffn=True).

In a Gemma 3n layer with activation sparsity the gate activations are cut at mean + std *
Phi^-1(target) and everything below is exactly zero (relu, then gelu(0) = 0). A neuron with a zero
activation contributes nothing, so its row of up_proj and its column of down_proj need not be read.
For a few tokens (decode: one token per sequence) this module computes the full gate projection,
finds the surviving neurons (the union over the tokens) and gathers only their up rows and down
columns. The result is the dense result up to float summation order. Longer inputs (prefill) use
the dense path, where a full matrix product is cheaper than gathering most rows.

Memory layout: down_proj.weight is [hidden, intermediate]; its columns are strided. The module keeps
it transposed, once, as rows [intermediate, hidden], so both gathers read contiguous rows. The
transposed table replaces the original (no extra bytes); the dense path multiplies by it directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.models.gemma3n.modeling_gemma3n import Gemma3nTextMLP

from .. import hardware
from ..sparsity import text_layers
from .file_pages import release_file_pages
from .quantize import int8_linear, quantize_rows

# At most this many tokens in one call take the gather path. Each token keeps its own ~5% of the
# neurons, so the union grows with the tokens; beyond a handful a dense product is as cheap.
SPARSE_MAX_TOKENS = 8


class RowTable(nn.Module):
    """A weight stored as rows [n, hidden] (float, or int8 with one scale per row), read whole or by row index."""

    def __init__(self, rows: torch.Tensor):
        super().__init__()
        self.rows = nn.Parameter(rows.detach().contiguous(), requires_grad=False)
        self.register_buffer("scale", None)
        # h @ rows in bfloat16 on a CPU without oneDNN's bfloat16 kernels (AVX2) takes ATen's generic
        # product, ~100x slower than float32 arithmetic (measured 1.9 ms vs 0.27 ms for 400 rows).
        self.float32_combine = rows.dtype == torch.bfloat16 and rows.device.type == "cpu" and not hardware.cpu_info().onednn_bf16

    @property
    def is_int8(self) -> bool:
        """True once quantize_int8_ ran."""
        return self.scale is not None

    def quantize_int8_(self) -> None:
        """Store the rows as int8 with one scale per row (weight-only quantization); a no-op when already int8."""
        if self.is_int8:
            return
        q, scale = quantize_rows(self.rows)
        self.rows = nn.Parameter(q, requires_grad=False)
        self.scale = scale

    def project(self, x: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """x [T, hidden] -> [T, n or k]: x times the (selected) rows, transposed (what up_proj does)."""
        rows = self.rows if index is None else self.rows.index_select(0, index)
        if not self.is_int8:
            return F.linear(x, rows)
        scale = self.scale if index is None else self.scale.index_select(0, index)
        return int8_linear(x, rows, scale)

    def combine(self, h: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """h [T, n or k] -> [T, hidden]: h times the (selected) rows (what down_proj does on its transpose)."""
        rows = self.rows if index is None else self.rows.index_select(0, index)
        if self.is_int8:
            scale = self.scale if index is None else self.scale.index_select(0, index)
            h = h * scale.to(h.dtype)
        if self.float32_combine:
            return (h.float() @ rows.float()).to(h.dtype)
        return h @ rows.to(h.dtype)


class SparseDecodeMLP(Gemma3nTextMLP):
    """Gemma3nTextMLP that, for a few tokens, computes only the neurons surviving the top-k cut."""

    def __init__(self, dense: Gemma3nTextMLP):
        nn.Module.__init__(self)
        self.config = dense.config
        self.hidden_size = dense.hidden_size
        self.intermediate_size = dense.intermediate_size
        self.activation_sparsity = dense.activation_sparsity
        self.act_fn = dense.act_fn
        self.gate_proj = dense.gate_proj
        self.up_rows = RowTable(dense.up_proj.weight)  # [intermediate, hidden], as stored
        self.down_rows = RowTable(dense.down_proj.weight.t())  # [intermediate, hidden], transposed once
        # Neurons computed by sparse calls, for tests and for the bytes-per-token count of the roofline.
        self.last_active: int | None = None
        self.sparse_calls = 0
        self.sparse_active_total = 0

    def active_fraction(self) -> float | None:
        """Mean fraction of the neurons computed per sparse call so far (None before the first)."""
        if self.sparse_calls == 0:
            return None
        return self.sparse_active_total / (self.sparse_calls * self.intermediate_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        shape = hidden_states.shape
        x = hidden_states.reshape(-1, shape[-1])
        gate = self.gate_proj(x)
        if self.activation_sparsity <= 0.0:
            return self._dense(x, self.act_fn(gate)).reshape(shape)
        gate = self._gaussian_topk(gate)  # [T, I], exactly zero below the cut
        if x.shape[0] > SPARSE_MAX_TOKENS:
            return self._dense(x, self.act_fn(gate)).reshape(shape)
        active = gate.ne(0).any(dim=0).nonzero().squeeze(1)  # [k] neurons alive for at least one token
        self.last_active = int(active.numel())
        self.sparse_calls += 1
        self.sparse_active_total += self.last_active
        activations = self.act_fn(gate.index_select(1, active))  # [T, k]
        up = self.up_rows.project(x, active)  # [T, k]
        return self.down_rows.combine(activations * up, active).reshape(shape)

    def _dense(self, x: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
        return self.down_rows.combine(activations * self.up_rows.project(x))


def enable_sparse_ffn(model: nn.Module) -> list[int]:
    """Swap the MLP of every layer with activation sparsity for a SparseDecodeMLP; returns those layers."""
    swapped = []
    for index, layer in enumerate(text_layers(model)):
        mlp = layer.mlp
        if isinstance(mlp, SparseDecodeMLP) or mlp.activation_sparsity <= 0.0:
            continue
        layer.mlp = SparseDecodeMLP(mlp)
        release_file_pages([mlp.down_proj.weight])  # read once for the transposed copy, never again
        swapped.append(index)
    return swapped
