"""Writing a safetensors file one piece at a time, so a tensor never needs to be whole in memory.

`safetensors.torch.save_file` takes a dict of finished tensors: writing a checkpoint that way holds
a full copy of it. The format is simple enough to stream instead: an 8-byte little-endian header
length, a JSON header with each tensor's dtype, shape and byte range, then the raw bytes in order.
Knowing every output shape in advance, we write the header first and then each tensor's rows.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ..weight_files import pad_header

ITEM_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


@dataclass
class StreamedTensor:
    """One output tensor: its name, safetensors dtype, shape, and a producer of its rows in order."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    pieces: Callable[[], Iterator[torch.Tensor]]

    @property
    def nbytes(self) -> int:
        """Size in the file."""
        return math.prod(self.shape) * ITEM_BYTES[self.dtype]


def _header(tensors: list[StreamedTensor], metadata: dict[str, str]) -> bytes:
    entries: dict = {"__metadata__": metadata}
    offset = 0
    for tensor in tensors:
        entries[tensor.name] = {"dtype": tensor.dtype, "shape": list(tensor.shape), "data_offsets": [offset, offset + tensor.nbytes]}
        offset += tensor.nbytes
    return pad_header(json.dumps(entries, separators=(",", ":")).encode())


def _write_piece(file, piece: torch.Tensor) -> int:
    raw = piece.detach().contiguous().reshape(-1).view(torch.uint8)
    file.write(raw.numpy().data)  # a view of the tensor's memory: no extra copy
    return raw.numel()


def write_streamed(path: Path, tensors: list[StreamedTensor], metadata: dict[str, str] | None = None) -> int:
    """Write `tensors` to a safetensors file, pulling one piece at a time; returns the data bytes written."""
    header = _header(tensors, metadata or {"format": "pt"})
    written = 0
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(header)))
        file.write(header)
        for tensor in tensors:
            size = 0
            for piece in tensor.pieces():
                size += _write_piece(file, piece)
                del piece  # let the piece go before the next one is read
            if size != tensor.nbytes:
                raise RuntimeError(f"{tensor.name}: wrote {size} bytes, the header promised {tensor.nbytes}")
            written += size
    return written
