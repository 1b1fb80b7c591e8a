"""Uploaded files for `file` / `image_url` references (OpenAI's POST /v1/files), kept in a private folder, bounded in number.

Only images, audio and video are taken (by file name suffix, checked again when decoded); ids are
random (`file-<24 hex>`), so a client can reference only what it uploaded or was given.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from pathlib import Path

from ..media import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES
from .errors import APIError

ID = re.compile(r"^file-[0-9a-f]{24}$")


def media_kind(name: str) -> str | None:
    """'image', 'audio' or 'video' for a file name's suffix (images first: .gif is read as an image), else None."""
    suffix = Path(name).suffix.lower()
    for kind, suffixes in (("image", IMAGE_SUFFIXES), ("audio", AUDIO_SUFFIXES), ("video", VIDEO_SUFFIXES)):
        if suffix in suffixes:
            return kind
    return None


class FileStore:
    """At most `max_files` uploads in `root` (a fresh private temporary folder unless given), oldest removed first."""

    def __init__(self, max_files: int, root: Path | None = None):
        self.max_files = max_files
        # A folder of our own is made on the first upload (a server that gets none leaves nothing behind) and
        # removed with the store, at the latest when the process exits.
        self._own = root is None
        self.root = Path(root) if root else Path(tempfile.gettempdir()) / f"g3n-api-files-{secrets.token_hex(8)}"
        if self._own:
            weakref.finalize(self, shutil.rmtree, str(self.root), True)
        else:
            self.root.mkdir(parents=True, exist_ok=True)
        self._files: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()

    def save(self, filename: str, data: bytes, purpose: str) -> dict:
        """Store an upload; its OpenAI FileObject."""
        kind = media_kind(filename or "")
        if kind is None:
            raise APIError(400, f"{filename!r}: upload images, audio clips or videos (by file name suffix)", param="file")
        if not data:
            raise APIError(400, f"{filename!r} is empty", param="file")
        with self._lock:
            if self._own and not self.root.exists():
                self.root.mkdir(mode=0o700)
        file_id = f"file-{secrets.token_hex(12)}"
        path = self.root / f"{file_id}{Path(filename).suffix.lower()}"
        path.write_bytes(data)
        record = {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()), "filename": Path(filename).name,
                  "purpose": purpose, "status": "processed", "_path": path, "_kind": kind}  # fmt: skip
        with self._lock:
            self._files[file_id] = record
            while len(self._files) > self.max_files:
                _, old = self._files.popitem(last=False)
                old["_path"].unlink(missing_ok=True)
        return self.public(record)

    @staticmethod
    def public(record: dict) -> dict:
        """The FileObject without the server's own fields."""
        return {k: v for k, v in record.items() if not k.startswith("_")}

    def get(self, file_id: str) -> dict:
        """The record of an upload, or a 404 APIError."""
        with self._lock:
            record = self._files.get(file_id) if ID.match(file_id or "") else None
        if record is None:
            raise APIError(404, f"no uploaded file {file_id!r} (uploads are kept until {self.max_files} newer ones arrive)", code="file_not_found", param="file_id")
        return record

    def media(self, file_id: str) -> tuple[Path, str]:
        """(path, kind) of an uploaded media file."""
        record = self.get(file_id)
        return record["_path"], record["_kind"]

    def list(self) -> list[dict]:
        """Every kept upload, oldest first."""
        with self._lock:
            return [self.public(r) for r in self._files.values()]

    def delete(self, file_id: str) -> dict:
        """Remove an upload; OpenAI's deletion object."""
        record = self.get(file_id)
        with self._lock:
            self._files.pop(file_id, None)
        record["_path"].unlink(missing_ok=True)
        return {"id": file_id, "object": "file", "deleted": True}

    def close(self) -> None:
        """Remove the folder and everything in it."""
        shutil.rmtree(self.root, ignore_errors=True)
