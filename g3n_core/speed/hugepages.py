"""Weights copied once into transparent huge pages (hugepages=True): the same bytes, fewer TLB misses.

transformers maps a same-dtype safetensors checkpoint and uses the mapped pages as the weights:
4 KiB page-cache pages, so a decode step that streams ~5 GB (E2B) walks ~1.2 million page-table
entries. A copy in anonymous memory advised as huge pages (`madvise(MADV_HUGEPAGE)`, 2 MiB pages)
holds the same values (bit-identical results) and needs 512x fewer translations. The mapped
originals are released afterwards, so the process's resident set does not grow; the checkpoint
stays in the page cache, where the kernel may drop it.
"""

from __future__ import annotations

import ctypes
import mmap

import torch
from torch import nn

from .file_pages import release_file_pages

HUGE_PAGE = 2 << 20
MADV_HUGEPAGE = 14
MIN_BYTES = 1 << 20  # smaller tensors (norms, scales) stay where they are
_libc = ctypes.CDLL(None, use_errno=True)


def huge_page_tensor(like: torch.Tensor) -> torch.Tensor:
    """An uninitialised CPU tensor shaped like `like`, in anonymous memory advised as huge pages."""
    nbytes = like.numel() * like.element_size()
    buffer = mmap.mmap(-1, nbytes + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    aligned = -(-address // HUGE_PAGE) * HUGE_PAGE
    _libc.madvise(ctypes.c_void_p(aligned), ctypes.c_size_t(nbytes // HUGE_PAGE * HUGE_PAGE), MADV_HUGEPAGE)
    # torch.frombuffer keeps `buffer` alive for as long as the tensor's storage lives.
    return torch.frombuffer(buffer, dtype=torch.uint8, count=nbytes, offset=aligned - address).view(like.dtype).view(like.shape)


def weights_to_huge_pages(model: nn.Module) -> int:
    """Move every CPU parameter of at least MIN_BYTES into huge pages (tied ones once); returns the bytes moved.

    Lookup tables (the per-layer embeddings) stay where they are: a step reads one row of them, so
    their translations do not matter and a copy would only cost memory. The token table is tied to the
    LM head, which reads all of it, so it moves.
    """
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    streamed = {head.weight.data_ptr()} if isinstance(getattr(head, "weight", None), torch.Tensor) else set()
    moved: dict[int, torch.Tensor] = {}
    originals: list[torch.Tensor] = []  # alive until the end, so no freed address can match a data_ptr key
    for module in model.modules():
        if isinstance(module, nn.Embedding) and module.weight.data_ptr() not in streamed:
            continue
        for param in module.parameters(recurse=False):
            old = param.data
            if old.device.type != "cpu" or old.numel() * old.element_size() < MIN_BYTES or not old.is_contiguous():
                continue
            if old.data_ptr() not in moved:
                copy = huge_page_tensor(old)
                copy.copy_(old)
                moved[old.data_ptr()] = copy
                originals.append(old)
                release_file_pages([old])
            param.data = moved[old.data_ptr()]
    return sum(t.numel() * t.element_size() for t in moved.values())
