"""An OpenAI-compatible API for a loaded Gemma 3n (chat completions with text, images and audio; completions; scoring).

`python -m g3n_core serve --model tiny` serves it at http://127.0.0.1:8000/v1; the app mounts the
same API at /v1 on its own port. See docs/serve.md.

    from g3n_core.serve import build_api
    api, files = build_api(lambda: cache.get(variant), "tiny", ServeSettings())
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from ..media import MediaPolicy
from .api import mount_root, openai_api
from .errors import APIError
from .files import FileStore
from .replies import ServedModel
from .settings import ServeSettings


def build_api(get_loaded: Callable, model_id: str, settings: ServeSettings | None = None, extra_roots: tuple[Path, ...] = ()) -> tuple[FastAPI, FileStore]:
    """The /v1 FastAPI app answering with `get_loaded()`, and its upload store (close it when done).

    Media may be read only from the store's folder and `extra_roots` (the app passes its upload
    folder); URLs only when `settings.allow_url_media`.
    """
    settings = settings or ServeSettings()
    files = FileStore(settings.max_files)
    policy = MediaPolicy(allow_network=settings.allow_url_media, allowed_roots=(files.root.resolve(), *(Path(r).resolve() for r in extra_roots)), max_bytes=settings.max_media_bytes)
    served = ServedModel(settings.model_name or model_id, get_loaded, settings, policy)
    return openai_api(served, files), files


__all__ = ["APIError", "FileStore", "ServeSettings", "ServedModel", "build_api", "mount_root", "openai_api"]
