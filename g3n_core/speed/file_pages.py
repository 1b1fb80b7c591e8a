"""Dropping this process's hold on memory-mapped weight pages that load-time transformations touched.

transformers 5 maps safetensors checkpoints and uses the mapped bytes as the weights (no copy) when
the dtype matches. Rewriting weights at load (int8 quantization, the sparse FFN's transposed down
projection) reads every byte of the originals, which makes all those pages resident in this process
although the originals are no longer used. `madvise(MADV_DONTNEED)` on a private, never-written file
mapping drops the pages from this process; any page still needed is read again from the file (page
cache) on first touch, with the same bytes. So the resident set afterwards is what running touches.
"""

from __future__ import annotations

import ctypes
import mmap
import struct
from collections.abc import Iterable
from pathlib import Path

import torch

MADV_DONTNEED = 4
MAX_HEADER_BYTES = 100_000_000  # safetensors caps its JSON header far below this
_SAFETENSORS_FILES: dict[tuple[str, int], bool] = {}  # (device, inode) -> whether the mapped file is a safetensors file
_libc = ctypes.CDLL(None, use_errno=True)


def _is_safetensors(path: str) -> bool:
    """A safetensors file by name or, in the Hugging Face cache (blobs/<sha256>, no suffix), by its header."""
    if path.endswith(".safetensors"):
        return True
    try:
        with open(path, "rb") as file:
            head = file.read(10)
    except OSError:
        return False
    return len(head) == 10 and 0 < struct.unpack("<Q", head[:8])[0] < MAX_HEADER_BYTES and head[8:10] == b'{"'


def _private_file_mappings() -> list[tuple[int, int]]:
    """(start, end) of this process's private mappings of safetensors files, recognised per file (device, inode)."""
    spans = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) < 6 or parts[1][3] != "p" or parts[4] == "0" or not parts[5].startswith("/"):
            continue  # shared, anonymous or special ([heap], [stack]) mappings
        key = (parts[3], int(parts[4]))
        if key not in _SAFETENSORS_FILES:
            _SAFETENSORS_FILES[key] = _is_safetensors(parts[5])
        if _SAFETENSORS_FILES[key]:
            low, high = (int(x, 16) for x in parts[0].split("-"))
            spans.append((low, high))
    return spans


def release_file_pages(tensors: Iterable[torch.Tensor]) -> int:
    """Drop the resident pages of CPU tensors that live in a private safetensors mapping; returns bytes released.

    Mappings are matched by the mapped file itself (device and inode from /proc/self/maps, its header
    read once), not by a name: the Hugging Face cache maps `blobs/<sha256>`, which has no suffix.
    """
    spans = _private_file_mappings()
    if not spans:
        return 0
    page = mmap.PAGESIZE
    released = 0
    seen: set[int] = set()
    for tensor in tensors:
        if tensor.device.type != "cpu" or tensor.untyped_storage().data_ptr() in seen:
            continue
        storage = tensor.untyped_storage()
        seen.add(storage.data_ptr())
        start, end = storage.data_ptr(), storage.data_ptr() + storage.nbytes()
        if not any(low <= start and end <= high for low, high in spans):
            continue  # anonymous memory: freeing is the allocator's business, and DONTNEED would zero it
        low, high = -(-start // page) * page, end // page * page  # whole pages inside the tensor only
        if high > low and _libc.madvise(ctypes.c_void_p(low), ctypes.c_size_t(high - low), MADV_DONTNEED) == 0:
            released += high - low
    return released
