"""Disk within a quota: everything the app writes lives under its results folder, which stays under `--results-quota`.

What the folder holds, each an entry that clean-up may delete, least recently used first:
- `exports/<name>/`: MatFormer checkpoints (used = written, or loaded from the model panel);
- `<run>/`: Compare runs (used = their log last written, or shown again);
- `downloads/<x>`: copies of results offered for download (recreated when a run is shown again).
A write that could not fit even with every other entry deleted is refused before anything is
deleted or written (`DiskQuotaError`), naming the sizes. Entries still in use (the export a
loaded model comes from, the run being written or shown) are kept.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from g3n_core import DiskQuotaError
from g3n_core.info import human_bytes

DEFAULT_RESULTS_QUOTA = "2gb"  # --results-quota: exports are the big items (tiny's: ~38 MiB; E2B-size: ~10 GB)
SIZE_UNITS = {"": 1, "b": 1, "kb": 2**10, "mb": 2**20, "gb": 2**30, "tb": 2**40}
RUN_LOG = "results.jsonl"


def parse_size(text: str | int) -> int:
    """'2gb', '500 MB', '1.5gb', 1073741824 -> bytes (binary units, as Gradio's --max-file-size)."""
    if isinstance(text, int):
        return text
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    if not found or found.group(2).lower() not in SIZE_UNITS:
        raise ValueError(f"cannot read {text!r} as a size; write e.g. 2gb, 500mb or a number of bytes")
    return int(float(found.group(1)) * SIZE_UNITS[found.group(2).lower()])


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under `path` (links not followed), or of `path` itself."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    total = 0
    for folder, _, files in os.walk(path):
        total += sum(os.lstat(os.path.join(folder, f)).st_size for f in files)
    return total


@dataclass(frozen=True)
class Entry:
    """One deletable thing under the results folder."""

    path: Path
    kind: str  # "export", "run" or "download"
    bytes: int
    last_used: float


class ResultsQuota:
    """The results folder's size limit, and least-recently-used clean-up to stay under it (thread-safe)."""

    def __init__(self, root: str | Path, limit_bytes: int):
        self.root = Path(root)
        self.limit_bytes = limit_bytes
        self._lock = threading.Lock()

    def used_bytes(self) -> int:
        """Everything under the results folder now."""
        return tree_bytes(self.root) if self.root.exists() else 0

    def entries(self) -> list[Entry]:
        """Every deletable entry, least recently used first."""
        found: list[Entry] = []
        if not self.root.is_dir():
            return found
        exports, downloads = self.root / "exports", self.root / "downloads"
        for child in sorted(exports.iterdir()) if exports.is_dir() else []:
            found.append(Entry(child, "export", tree_bytes(child), child.lstat().st_mtime))
        for child in sorted(downloads.iterdir()) if downloads.is_dir() else []:
            found.append(Entry(child, "download", tree_bytes(child), child.lstat().st_mtime))
        for child in sorted(self.root.iterdir()):
            if child.is_dir() and not child.is_symlink() and (child / RUN_LOG).is_file():
                found.append(Entry(child, "run", tree_bytes(child), max(child.lstat().st_mtime, (child / RUN_LOG).stat().st_mtime)))
        return sorted(found, key=lambda e: e.last_used)

    @staticmethod
    def touch(path: str | Path) -> None:
        """Mark an entry used now (its folder's modification time), so clean-up takes it last."""
        try:
            os.utime(path)
        except OSError:
            pass

    def make_room(self, needed: int, keep: Iterable[str | Path] = (), what: str = "this") -> list[Path]:
        """Delete least recently used entries until `needed` more bytes fit; the deleted paths.

        Refuses with DiskQuotaError, before deleting anything, when `needed` cannot fit even with
        every entry not in `keep` deleted.
        """
        kept = {Path(k).resolve() for k in keep}
        with self._lock:
            used = self.used_bytes()
            if used + needed <= self.limit_bytes:
                return []
            entries = [e for e in self.entries() if e.path.resolve() not in kept and not _inside_any(e.path, kept)]
            freeable = sum(e.bytes for e in entries)
            if used - freeable + needed > self.limit_bytes:
                held = used - freeable
                busy = f", {human_bytes(held)} of it held by exports and runs in use now" if held > 0 else ""
                raise DiskQuotaError(
                    f"{what} needs about {human_bytes(needed)} on disk, over the results folder's quota of "
                    f"{human_bytes(self.limit_bytes)}{busy}; choose a smaller slice, or the server's operator can raise --results-quota"
                )
            deleted = []
            for entry in entries:
                if used + needed <= self.limit_bytes:
                    break
                _delete(entry.path)
                used -= entry.bytes
                deleted.append(entry.path)
            return deleted

    def enforce(self, keep: Iterable[str | Path] = ()) -> list[Path]:
        """Clean up until the folder is under the quota again (after a write that was larger than estimated)."""
        try:
            return self.make_room(0, keep)
        except DiskQuotaError:
            return []  # only kept entries remain: nothing else can go


def _inside_any(path: Path, roots: set[Path]) -> bool:
    real = path.resolve()
    return any(root.is_relative_to(real) for root in roots)  # an entry holding something in use (a download folder)


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
