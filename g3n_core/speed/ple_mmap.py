"""Per-layer embeddings left in the checkpoint file (ple="mmap").

Gemma 3n's per-layer embedding table (`embed_tokens_per_layer`, 262144 x 7680 for E2B: 2.0B
parameters, 3.8 GiB in bf16) is read one row per token. With ple="mmap" the table is a
memory-mapped view of the safetensors file: a lookup reads only the pages of the rows of the tokens
in use, the table is never copied into memory nor onto a GPU, and rows are cast to the model's
dtype after the lookup (the same values as casting the whole table first).

The table is deliberately not a parameter or buffer: `model.to(device)` must not copy it. Nor is it
ever loaded: the model is built with a weightless PendingPerLayerTable (`deferring_per_layer_table`),
so `from_pretrained` skips the checkpoint's table, and the mapped view replaces the placeholder.
"""

from __future__ import annotations

import json
import math
import struct
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import Gemma3nTextConfig

from ..errors import ModelSourceError
from ..matformer.spec import MatformerSlice
from ..sparsity import text_decoder

PLE_NAME = "embed_tokens_per_layer.weight"
PLE_KEYS = ("model." + PLE_NAME, "model.language_model." + PLE_NAME)  # text-only and multimodal layouts
SAFETENSORS_DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}


def _safetensors_files(checkpoint: Path) -> list[Path]:
    index = checkpoint / "model.safetensors.index.json"
    if index.is_file():
        return sorted({checkpoint / name for name in json.loads(index.read_text())["weight_map"].values()})
    single = checkpoint / "model.safetensors"
    if not single.is_file():
        raise ModelSourceError(f"{checkpoint} has no model.safetensors; ple=mmap needs a safetensors checkpoint")
    return [single]


def _header(path: Path) -> tuple[dict, int]:
    with open(path, "rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
        return json.loads(file.read(length)), 8 + length


def checkpoint_numel(checkpoint: Path) -> int:
    """Elements of every tensor a checkpoint folder's safetensors files hold (read from their headers only)."""
    total = 0
    for path in _safetensors_files(checkpoint):
        header, _ = _header(path)
        total += sum(math.prod(entry["shape"]) for key, entry in header.items() if key != "__metadata__")
    return total


def map_tensor(path: Path, entry: dict, data_start: int) -> torch.Tensor:
    """A read-only-in-practice tensor backed by a private memory map of one safetensors entry."""
    if entry["dtype"] not in SAFETENSORS_DTYPES:
        raise ModelSourceError(f"{path.name}: cannot map a {entry['dtype']} tensor; expected one of {', '.join(SAFETENSORS_DTYPES)}")
    begin, end = entry["data_offsets"]
    # mode "c" (copy-on write, MAP_PRIVATE): torch wants a writable array; nothing ever writes to it.
    raw = np.memmap(path, dtype=np.uint8, mode="c", offset=data_start + begin, shape=(end - begin,))
    return torch.from_numpy(raw).view(SAFETENSORS_DTYPES[entry["dtype"]]).view(entry["shape"])


def map_per_layer_table(checkpoint: Path) -> torch.Tensor:
    """The per-layer embedding table of a checkpoint folder, memory-mapped from its safetensors file."""
    for path in _safetensors_files(checkpoint):
        header, data_start = _header(path)
        for key in PLE_KEYS:
            if key in header:
                return map_tensor(path, header[key], data_start)
    raise ModelSourceError(f"{checkpoint} holds no {PLE_NAME}; is it a Gemma 3n checkpoint?")


class MappedPerLayerEmbedding(nn.Module):
    """Drop-in for Gemma3nTextScaledWordEmbedding whose table stays in the file (and on the CPU)."""

    def __init__(
        self, table: torch.Tensor, embed_scale: float, dtype: torch.dtype, padding_idx: int | None, columns: torch.Tensor | None = None
    ):
        super().__init__()
        self.table = table  # [vocab_per_layer, layers * per_layer_dim], checkpoint dtype, memory-mapped
        self.columns = columns  # the kept layers' blocks when a MatFormer slice skips layers, else None
        self.num_embeddings = table.shape[0]
        self.embedding_dim = table.shape[1] if columns is None else len(columns)
        self.padding_idx = padding_idx
        self.dtype = dtype
        self.scalar_embed_scale = embed_scale
        self.embed_scale = nn.Buffer(torch.tensor(embed_scale), persistent=False)

    @torch.compiler.disable  # a file-backed table is no graph constant; the lookup stays eager
    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        rows = F.embedding(input_ids.cpu(), self.table, self.padding_idx)
        if self.columns is not None:
            rows = rows.index_select(-1, self.columns)
        rows = rows.to(device=self.embed_scale.device, dtype=self.dtype)
        return rows * self.embed_scale.to(self.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, memory-mapped {self.table.dtype}"


class PendingPerLayerTable(nn.Module):
    """Stands in for the per-layer table from construction until `map_per_layer_embeddings` maps it: no weight.

    Built in place of Gemma3nTextScaledWordEmbedding by `deferring_per_layer_table`, so `from_pretrained`
    has no parameter to load the checkpoint's table into: it never reads, converts or allocates it (a
    float32 load of E2B would otherwise materialise 7.5 GiB), and a MatFormer slice has nothing to cut.
    """

    def __init__(self, table: nn.Module):
        super().__init__()
        self.num_embeddings, self.embedding_dim = table.num_embeddings, table.embedding_dim
        self.padding_idx, self.scalar_embed_scale = table.padding_idx, table.scalar_embed_scale

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        raise ModelSourceError("the per-layer embedding table was never mapped (ple=mmap): load the model with g3n_core.load_model")


@lru_cache(maxsize=None)
def deferring_per_layer_table(model_class: type) -> type:
    """A subclass of a Gemma 3n model class whose per-layer table is a PendingPerLayerTable from construction on."""

    class Deferred(model_class):
        def __init__(self, config, *args, **kwargs):
            super().__init__(config, *args, **kwargs)
            decoder = text_decoder(self)
            decoder.embed_tokens_per_layer = PendingPerLayerTable(decoder.embed_tokens_per_layer)

    Deferred.__name__ = Deferred.__qualname__ = model_class.__name__  # transformers looks classes up by name
    Deferred.__module__ = model_class.__module__
    return Deferred


def kept_columns(parent: Gemma3nTextConfig, matformer: MatformerSlice | None) -> torch.Tensor | None:
    """Columns of the parent's per-layer table that a MatFormer slice keeps (None when it keeps every layer)."""
    if matformer is None:
        return None
    from ..matformer.slicing import layer_blocks, plan_slice

    plan = plan_slice(parent, matformer)
    if len(plan.kept) == parent.num_hidden_layers:
        return None
    return torch.cat([torch.arange(low, high) for low, high in layer_blocks(plan)])


def map_per_layer_embeddings(
    model: nn.Module, checkpoint: Path, dtype: torch.dtype, parent: Gemma3nTextConfig, matformer: MatformerSlice | None = None
) -> MappedPerLayerEmbedding:
    """Replace the decoder's per-layer embedding with a view of the checkpoint file; returns the new module.

    `parent` is the checkpoint's text config; with a MatFormer slice that skips layers the lookup
    keeps the kept layers' columns of the parent's table.
    """
    decoder = text_decoder(model)
    current = decoder.embed_tokens_per_layer
    table = map_per_layer_table(checkpoint)
    columns = kept_columns(parent, matformer)
    width = table.shape[1] if columns is None else len(columns)
    if (table.shape[0], width) != (current.num_embeddings, current.embedding_dim):
        raise ModelSourceError(
            f"{checkpoint}: the per-layer table is {tuple(table.shape)} but the model runs with "
            f"{(current.num_embeddings, current.embedding_dim)}; the config and the weights disagree"
        )
    mapped = MappedPerLayerEmbedding(table, current.scalar_embed_scale, dtype, current.padding_idx, columns)
    decoder.embed_tokens_per_layer = mapped
    return mapped
