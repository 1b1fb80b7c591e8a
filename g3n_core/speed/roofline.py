"""The memory-bandwidth roofline of decoding: bytes read per token, and how fast this machine can read.

Decoding one token reads every weight the step uses once, so tokens/s <= bandwidth / bytes per
token. The bytes are counted from the model as it runs: embedding tables give one row per token
(the LM head, tied to the token table, reads all of it), a sparse-FFN layer reads its gate in full
but only the surviving neurons' up rows and down columns, int8 layers read one byte per weight, and
attention reads the KV cache of its window. The bandwidth is measured in the same run two ways: a
large streaming read (the ceiling for any kernel) and the best large matrix-vector product at the
model's dtype (what a decode step's kernels actually reach).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import hardware
from ..sparsity import text_decoder
from .ple_mmap import MappedPerLayerEmbedding
from .hugepages import huge_page_tensor
from .prepack import PackedLinear, pack_weight, packed_linear
from .quantize import int8_linear, quantize_rows
from .sparse_ffn import RowTable, SparseDecodeMLP

# Matrix shapes of a Gemma 3n decode step (out x in): FFN up/gate, FFN down, and the LM head.
MATVEC_SHAPES = ((8192, 2048), (2048, 8192), (262_144, 2048))


@dataclass
class DecodeBytes:
    """Bytes read from memory to decode one token, by part."""

    weights: int
    kv_cache: int
    parts: dict[str, int]

    @property
    def total(self) -> int:
        """Weights plus KV cache."""
        return self.weights + self.kv_cache

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {**asdict(self), "total": self.total}


def _tensor_bytes(tensor: torch.Tensor | None) -> int:
    return 0 if tensor is None else tensor.numel() * tensor.element_size()


def _part_of(name: str) -> str:
    if ".layers." in f".{name}." and ".mlp" in name:
        return "ffn"
    if ".layers." in f".{name}." and ".self_attn" in name:
        return "attention"
    if ".layers." in f".{name}.":
        return "layer_other"
    if "lm_head" in name:
        return "lm_head"
    if name.endswith(("embed_tokens", "embed_tokens_per_layer")):
        return "embeddings"
    return "decoder_other"


def _module_bytes(module: nn.Module, seen: set[int], active_fraction: float) -> int:
    if isinstance(module, (nn.Embedding, MappedPerLayerEmbedding)):
        table = module.table if isinstance(module, MappedPerLayerEmbedding) else module.weight
        scale = sum(_tensor_bytes(b) for b in module.buffers(recurse=False))
        return table.shape[1] * table.element_size() + scale  # one row per token
    if isinstance(module, PackedLinear) or getattr(module, "packed", None) is not None:  # opaque oneDNN layouts
        return module.packed_bytes()
    if isinstance(module, RowTable):
        return round((_tensor_bytes(module.rows) + _tensor_bytes(module.scale)) * active_fraction)
    total = 0
    for tensor in [*module.parameters(recurse=False), *module.buffers(recurse=False)]:
        if tensor.data_ptr() in seen or tensor.device.type == "meta":
            continue
        seen.add(tensor.data_ptr())
        total += _tensor_bytes(tensor)
    return total


def decode_bytes_per_token(model: nn.Module, context: int, sparse_active: float | None = None) -> DecodeBytes:
    """Bytes one decode step reads at `context` tokens of history (text decoder and LM head only).

    `sparse_active` is the fraction of neurons a sparse-FFN layer computes per step; by default each
    layer's own measured fraction (from the calls it has served), else the layer's sparsity target.
    """
    decoder = text_decoder(model)
    seen: set[int] = set()
    parts: dict[str, int] = {}
    lm_head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    modules = [("lm_head", lm_head)] if lm_head is not None else []
    modules += [(f"decoder.{name}", module) for name, module in decoder.named_modules()]
    for name, module in modules:
        fraction = 1.0
        owner = _sparse_owner(decoder, name)
        if owner is not None and isinstance(module, RowTable):
            measured = owner.active_fraction()
            fraction = sparse_active if sparse_active is not None else (measured or 1.0 - owner.activation_sparsity)
        part = _part_of(name)
        parts[part] = parts.get(part, 0) + _module_bytes(module, seen, fraction)
    return DecodeBytes(weights=sum(parts.values()), kv_cache=_kv_bytes(decoder, context), parts=parts)


def _sparse_owner(decoder: nn.Module, name: str) -> SparseDecodeMLP | None:
    if not name.startswith("decoder.layers.") or ".mlp." not in name:
        return None
    index = int(name.split(".")[2])
    mlp = decoder.layers[index].mlp
    return mlp if isinstance(mlp, SparseDecodeMLP) else None


def _kv_bytes(decoder: nn.Module, context: int) -> int:
    """K and V of every attention layer's visible history (KV-shared layers read their producer's)."""
    config = decoder.config
    per_token = 2 * config.num_key_value_heads * config.head_dim * decoder.embed_tokens.weight.element_size()
    total = 0
    for layer_type in config.layer_types[: config.num_hidden_layers]:
        window = config.sliding_window if layer_type == "sliding_attention" else context
        total += per_token * min(context, window)
    return total


# -- bandwidth -------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_seconds(fn, device: torch.device, repeats: int) -> float:
    fn()
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def measure_stream_read(device: str = "cpu", nbytes: int = 1 << 30, repeats: int = 5) -> float:
    """GB/s of summing a float32 buffer far larger than the caches (best of `repeats`)."""
    dev = torch.device(device)
    buffer = torch.ones(nbytes // 4, dtype=torch.float32, device=dev)
    seconds = _best_seconds(lambda: buffer.sum(), dev, repeats)
    return nbytes / seconds / 1e9


def _matvec_layouts(weights: list[torch.Tensor], x: torch.Tensor, int8: bool):
    """(label, run) for each way of storing the weights, converting them in place one layout after the other."""
    if int8:
        for i, w in enumerate(weights):
            weights[i] = quantize_rows(w)
        yield "int8pack", lambda: [int8_linear(x, q, s) for q, s in weights]
        return
    yield "linear", lambda: [F.linear(x, w) for w in weights]
    if x.device.type == "cpu" and hardware.thp_mode() != "never":  # hugepages=True: the same kernel, 2 MiB pages
        for i, w in enumerate(weights):
            weights[i] = huge_page_tensor(w).copy_(w)
        yield "linear (huge pages)", lambda: [F.linear(x, w) for w in weights]
    if x.device.type == "cpu" and x.dtype == torch.bfloat16 and hardware.cpu_info().onednn_bf16:  # packing needs oneDNN bf16
        packed = [pack_weight(w) for w in weights]
        yield "oneDNN-packed", lambda: [packed_linear(x, p) for p in packed]
        del packed
    if x.device.type == "cpu" and x.dtype == torch.bfloat16 and not hardware.cpu_info().onednn_bf16:
        return  # the sparse FFN's [in, out] product runs in float32 there (RowTable.float32_combine): ~0.3 GB/s in bf16
    for i, w in enumerate(weights):
        weights[i] = w.t().contiguous()  # [in, out]: the layout the sparse FFN uses for down_proj
    yield "x @ w(in x out)", lambda: [x @ w for w in weights]


def measure_matvec(
    device: str = "cpu",
    dtype: torch.dtype = torch.bfloat16,
    int8: bool = False,
    total_bytes: int = 768 << 20,
    repeats: int = 5,
    shapes: tuple[tuple[int, int], ...] = MATVEC_SHAPES,
) -> tuple[float, str]:
    """Best GB/s (weight bytes read / time) of one-token matrix products over Gemma 3n's shapes, and which one."""
    dev = torch.device(device)
    generator = torch.Generator(device="cpu").manual_seed(0)
    element = torch.finfo(dtype).bits // 8
    best = (0.0, "")
    for rows, cols in shapes:
        count = max(1, total_bytes // (rows * cols * element))
        weights = [torch.randn(rows, cols, generator=generator).to(device=dev, dtype=dtype) for _ in range(count)]
        x = torch.randn(1, cols, generator=generator).to(device=dev, dtype=dtype)
        read = count * rows * cols * (1 if int8 else element)
        for label, run in _matvec_layouts(weights, x, int8):
            gbps = read / _best_seconds(run, dev, repeats) / 1e9
            if gbps > best[0]:
                best = (gbps, f"{label} {rows}x{cols}")
        del weights
    return best


@dataclass
class Roofline:
    """Decode tokens/s against the two bandwidth bounds."""

    bytes_per_token: int
    stream_gbps: float
    matvec_gbps: float
    matvec_kernel: str
    tokens_per_s: float

    @property
    def stream_bound(self) -> float:
        """Tokens/s if every byte were read at streaming speed."""
        return self.stream_gbps * 1e9 / self.bytes_per_token

    @property
    def matvec_bound(self) -> float:
        """Tokens/s if every byte were read at the best matrix-vector speed."""
        return self.matvec_gbps * 1e9 / self.bytes_per_token

    def to_dict(self) -> dict:
        """JSON-ready dict, the bounds and fractions included."""
        return {
            **asdict(self),
            "achieved_gbps": self.tokens_per_s * self.bytes_per_token / 1e9,
            "stream_bound_tokens_per_s": self.stream_bound,
            "matvec_bound_tokens_per_s": self.matvec_bound,
            "fraction_of_stream": self.tokens_per_s / self.stream_bound,
            "fraction_of_matvec": self.tokens_per_s / self.matvec_bound,
        }
