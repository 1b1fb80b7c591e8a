"""Weight-only int8 quantization of the text decoder's linear layers (quant="int8").

Each weight row (one output channel) is stored as int8 with one scale: w ~= q * scale, scale =
max|w_row| / 127. Activations stay in the model's dtype. On the CPU the product runs through
`torch._weight_int8pack_mm`, which reads the int8 bytes directly; torchao's Int8WeightOnlyConfig
builds the same numbers but its CPU path measured ~5x slower than plain bf16 here (tensor-subclass
dispatch per call), so this plain module is used instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..sparsity import text_decoder
from .linear_swap import swap_linears

INT8_K_MULTIPLE = 16


def quantize_rows(weight: torch.Tensor, block_rows: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: (q [rows, cols] int8, scale [rows] in the weight's dtype).

    Works through `block_rows` rows at a time, so the float32 temporaries stay small (the LM head
    alone would need 2 GiB of them at once).
    """
    q = torch.empty(weight.shape, dtype=torch.int8, device=weight.device)
    scale = torch.empty(weight.shape[0], dtype=torch.float32, device=weight.device)
    for start in range(0, weight.shape[0], block_rows):
        w = weight.detach()[start : start + block_rows].float()
        block_scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0
        q[start : start + block_rows] = torch.round(w / block_scale[:, None]).clamp_(-127, 127)
        scale[start : start + block_rows] = block_scale
    return q, scale.to(weight.dtype)


def int8_linear(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x @ (q * scale[:, None]).T without materialising the float weight where a kernel exists."""
    shape = x.shape
    x2 = x.reshape(-1, shape[-1])
    if x2.device.type == "cpu" or x2.dtype in (torch.bfloat16, torch.float16):
        out = torch._weight_int8pack_mm(x2.contiguous(), q, scale.to(x2.dtype))
    else:  # float32 on CUDA has no int8pack kernel
        out = F.linear(x2, q.to(x2.dtype)) * scale.to(x2.dtype)
    return out.reshape(*shape[:-1], q.shape[0])


class Int8Linear(nn.Module):
    """A bias-free nn.Linear with int8 weights and one scale per output channel."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        if linear.bias is not None:
            raise ValueError("Int8Linear takes bias-free layers only (Gemma 3n's decoder has no biases)")
        q, scale = quantize_rows(linear.weight)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight_int8", q)
        self.register_buffer("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return int8_linear(x, self.weight_int8, self.scale)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 per-channel"


def quantize_decoder_int8(model: nn.Module) -> int:
    """Replace every quantizable Linear of the text decoder and the LM head with Int8Linear; returns how many.

    Sparse-FFN MLPs hold their up/down weights as row tables (`quantize_int8_`), one scale per neuron.
    Embedding tables stay in the model's dtype (a lookup reads one row; int8 would save no time).
    """
    for module in text_decoder(model).modules():
        if hasattr(module, "quantize_int8_"):
            module.quantize_int8_()
    return swap_linears(model, quantizable, Int8Linear)


def quantizable(linear: nn.Module) -> bool:
    """A plain bias-free Linear whose input width the int8 kernel takes.

    torch 2.14's CPU `_weight_int8pack_mm` returns NaN or crashes for input widths that are not a
    multiple of 16 (AltUp's 4-wide coefficient layers); those layers hold a few hundred bytes and stay float.
    """
    return type(linear) is nn.Linear and linear.bias is None and linear.in_features % INT8_K_MULTIPLE == 0
