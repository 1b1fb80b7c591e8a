"""MatFormer exports downloaded as a zip made on demand and streamed: no zip is ever kept on disk.

`GET /g3n/exports/<name>.zip` zips the export folder `<results>/exports/<name>` as it is sent
(stored, not deflated: safetensors weights do not compress), a megabyte at a time, so a 10 GB
checkpoint costs no extra disk and a few MB of memory. Only folders directly under the exports
folder are served, and only the checkpoint files an export writes (nothing planted beside them).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

from fastapi import HTTPException
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute

from g3n_core.matformer.export import is_export_file

ZIP_ROUTE = "g3n/exports"  # relative to the app's root URL: the page links to it as it is, behind any proxy prefix
CHUNK_BYTES = 2**20
EXPORT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class _Pipe:
    """A write-only, unseekable file whose bytes are collected for the next chunk of the response."""

    def __init__(self):
        self.pieces: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.pieces.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.pieces = b"".join(self.pieces), []
        return data


def export_files(folder: Path) -> list[Path]:
    """The checkpoint files of an export folder (regular files with the names an export writes; nothing planted beside them)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.is_symlink() and is_export_file(p.name))


def zip_chunks(files: list[Path], chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The bytes of a zip of `files` (by their names), produced while reading them."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for path in files:
            with open(path, "rb") as source, archive.open(path.name, "w", force_zip64=True) as target:
                while block := source.read(chunk_bytes):
                    target.write(block)
                    yield pipe.take()
            yield pipe.take()
    yield pipe.take()  # the central directory


def export_folder(exports_dir: Path, name: str) -> Path | None:
    """The export folder `name` names, when it is a real folder directly under `exports_dir`."""
    if not EXPORT_NAME.match(name) or name.startswith("."):
        return None
    folder = Path(exports_dir) / name
    if folder.is_symlink() or not folder.is_dir() or folder.resolve().parent != Path(exports_dir).resolve():
        return None
    return folder


def zip_link(name: str) -> str:
    """The page's (relative) link to an export's zip."""
    return f"{ZIP_ROUTE}/{name}.zip"


def export_zip_route(exports_dir: Path) -> APIRoute:
    """The FastAPI route streaming export zips (given to Gradio's app through launch(app_kwargs={"routes": ...}))."""

    def download(name: str) -> StreamingResponse:
        folder = export_folder(exports_dir, name)
        if folder is None:
            raise HTTPException(status_code=404, detail="no such export")
        headers = {"Content-Disposition": f'attachment; filename="{name}.zip"'}
        return StreamingResponse(zip_chunks(export_files(folder)), media_type="application/zip", headers=headers)

    return APIRoute(f"/{ZIP_ROUTE}/{{name}}.zip", download, methods=["GET"])
