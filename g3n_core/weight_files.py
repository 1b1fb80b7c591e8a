"""Safetensors files whose tensors start on a 64-byte boundary once the file is memory-mapped.

safetensors pads its JSON header to 8 bytes only, so every tensor of a mapped file starts 8 bytes
(mod 16) past an aligned address. On some CPUs (measured: an AMD EPYC with AVX-512 and no AMX) a
float32 matrix-vector product, the decode step, rounds differently for a weight that is not 16-byte
aligned: the mapped weights and any fresh copy of them (a fused projection, a huge-page copy, a deep
copy, all allocated 64-byte aligned) then give different logits. The format allows the header to be
padded with spaces, so every checkpoint this project writes pads it until the data starts on a
64-byte boundary; a tensor is then as aligned as its offset in the data (in `tiny` every offset is
a multiple of 32 bytes: tests/test_weight_files.py).
Loading never copies weights to align them: that would turn shared, releasable file pages into
private memory (`speed.file_pages`).
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from pathlib import Path

DATA_ALIGNMENT = 64  # bytes: what torch's CPU allocator gives a fresh tensor


def pad_header(header: bytes) -> bytes:
    """`header` padded with spaces so that the data after it (and its 8-byte length) starts DATA_ALIGNMENT-aligned."""
    return header + b" " * (-(8 + len(header)) % DATA_ALIGNMENT)


def data_start(path: Path) -> int:
    """Byte offset at which a safetensors file's tensor data begins."""
    with open(path, "rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
    return 8 + length


def align_weight_file(path: Path) -> bool:
    """Rewrite one safetensors file with a padded header if its data is not aligned; returns whether it was rewritten."""
    start = data_start(path)
    if start % DATA_ALIGNMENT == 0:
        return False
    with open(path, "rb") as source:
        source.seek(8)
        header = pad_header(source.read(start - 8))
        handle, staging = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as target:
                target.write(struct.pack("<Q", len(header)))
                target.write(header)
                shutil.copyfileobj(source, target, 1 << 24)  # streamed: a shard never needs to fit in memory
            os.replace(staging, path)
        except BaseException:
            Path(staging).unlink(missing_ok=True)
            raise
    return True


def align_weight_files(folder: str | Path) -> int:
    """Align every safetensors file in a checkpoint folder (see the module's docstring); returns how many were rewritten."""
    return sum(align_weight_file(path) for path in sorted(Path(folder).glob("*.safetensors")))
