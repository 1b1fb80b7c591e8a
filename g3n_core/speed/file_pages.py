"""Dropping this process's hold on memory-mapped weight pages that load-time transformations touched.

transformers 5 maps safetensors checkpoints and uses the mapped bytes as the weights (no copy) when
the dtype matches. Rewriting weights at load (int8 quantization, the sparse FFN's transposed down
projection) reads every byte of the originals, which makes all those pages resident in this process
although the originals are no longer used. `madvise(MADV_DONTNEED)` on a private, never-written file
mapping drops the pages from this process; any page still needed is read again from the file (page
cache) on first touch, with the same bytes. So the resident set afterwards is what running touches.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import struct
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

MADV_DONTNEED = 4
MAX_HEADER_BYTES = 100_000_000  # safetensors caps its JSON header far below this
_patch_lock = threading.Lock()
_patch_users = 0
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


@contextlib.contextmanager
def releasing_converted_sources() -> Iterator[None]:
    """While transformers loads weights: drop each mapped source tensor's pages once it is copied to another dtype.

    A dtype-converting load (float32 from a bfloat16 checkpoint) otherwise holds every mapped source page
    until the files close, so its peak is the converted weights plus the checkpoint. Tensors loaded
    zero-copy (same dtype) keep their pages: they are the weights.
    """
    from transformers import core_model_loading

    global _patch_users
    with _patch_lock:  # loads may overlap in threads: patch once, restore when the last one ends
        if _patch_users == 0:
            original = core_model_loading._materialize_copy

            def materialize(tensor: torch.Tensor, device=None, dtype=None) -> torch.Tensor:
                source = tensor[...]  # what transformers' own _materialize_copy does first: the mapped tensor
                copied = original(source, device, dtype)
                if copied.data_ptr() != source.data_ptr():
                    release_file_pages([source])
                return copied

            materialize.original = original
            core_model_loading._materialize_copy = materialize
        _patch_users += 1
    try:
        yield
    finally:
        with _patch_lock:
            _patch_users -= 1
            if _patch_users == 0:
                core_model_loading._materialize_copy = core_model_loading._materialize_copy.original


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
