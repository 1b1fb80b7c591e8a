"""What the server may read on a user's behalf: only files uploaded to it (plus the app's own
examples), URLs only when the operator started it with --allow-url-media, and model folders only
under roots the operator named.

Gradio already refuses an input naming a server path that was not uploaded, but it *downloads* a
URL given as an input file; `refuse_url_files` closes that door per component. `media_policy`
is the second gate: g3n_core's MediaPolicy reads paths only under the allowed roots.

Server folders a user names (model folders, earlier runs) pass `allowed_path`, one check on real
paths; the file route serves only the examples and the downloads folder the app writes itself.
Remote variants (OpenAI-compatible endpoints) are compared only when the operator listed the endpoint.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder
from gradio_client.utils import is_http_url_like

from g3n_core import MediaPolicy, RemoteVariant
from g3n_core.errors import MediaAccessError, ModelSourceError, VariantError
from g3n_core.sources import BUILTIN_NAMES, is_hub_id

from .feedback import readable_error


def upload_folder() -> Path:
    """Where Gradio keeps uploaded files (GRADIO_TEMP_DIR, else <tmp>/gradio)."""
    return Path(get_upload_folder()).resolve()


def media_policy(examples_dir: Path, allow_network: bool = False, **limits) -> MediaPolicy:
    """The MediaPolicy of every chat request: uploads and the app's examples only; URLs only when allowed; the host's limits."""
    return MediaPolicy(allow_network=allow_network, allowed_roots=(upload_folder(), Path(examples_dir).resolve()), **limits)


def refuse_url_files(component: gr.components.Component, allow_network: bool) -> gr.components.Component:
    """Make `component` refuse, instead of download, a URL sent as one of its input files.

    Gradio moves every input file into its cache through this per-block method before the event
    function runs; for an http(s) path it would fetch the URL. Overriding it on the instance (not
    by subclassing, which makes Gradio write a .pyi file next to this module) keeps the change local.
    """
    if allow_network:
        return component
    move = component.async_move_resource_to_block_cache

    async def move_uploads_only(url_or_file_path):
        if url_or_file_path is not None and is_http_url_like(str(url_or_file_path)):
            refused = MediaAccessError(str(url_or_file_path), "this server does not fetch URLs; upload the file instead")
            raise readable_error(refused)  # escaped: the same check serves the page and the API
        return await move(url_or_file_path)

    component.async_move_resource_to_block_cache = move_uploads_only
    return component


NOT_ALLOWED = (
    "not an allowed model folder: this server loads checkpoint folders only from the folders its operator "
    "allowed (python app.py --model-root DIR) and from its own MatFormer exports; otherwise choose tiny, "
    "e2b-shape, e4b-shape or a hub id such as google/gemma-3n-E2B-it"
)


def allowed_path(path: str | Path, roots: tuple[Path, ...]) -> Path | None:
    """The real path of `path` (symlinks resolved) when it lies in one of `roots` (also resolved), else None.

    The one check for every server path a user names: model folders (model panel, MatFormer parent,
    Compare specs, the API behind them) and earlier Compare runs. It reads nothing but the path itself.
    """
    try:
        real = Path(path).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, an unknown ~user, a NUL byte
        return None
    for root in roots:
        try:
            if real.is_relative_to(Path(root).expanduser().resolve()):
                return real
        except (OSError, RuntimeError, ValueError):
            continue
    return None


def allowed_model(model: str | None, model_roots: tuple[Path, ...]) -> str:
    """A built-in name, a hub id, or the real path of a folder under `model_roots`; else ModelSourceError(NOT_ALLOWED).

    The refusal is the same sentence for every folder outside the roots (existing or not, readable or
    not, a symlink out of a root), so it says nothing about the server's file system. A bare
    `org/name` is a hub id unless a folder of that name in the working directory (the app's own,
    public code) shadows it; such a folder is refused like any other outside the roots.
    """
    name = (model or "").strip()
    if not name:
        raise ModelSourceError("no model given: choose tiny, e2b-shape, e4b-shape or a hub id such as google/gemma-3n-E2B-it")
    if name in BUILTIN_NAMES:
        return name
    hub_like = is_hub_id(name) and not name.startswith((".", "~"))
    if hub_like and not _exists(name):
        return name
    real = allowed_path(name, model_roots)
    if real is None:
        raise ModelSourceError(NOT_ALLOWED)
    return str(real)


def _exists(name: str) -> bool:
    try:
        return Path(name).exists()
    except (OSError, ValueError):
        return False


def offer_download(file: str | Path, downloads_dir: Path, folder: str) -> str:
    """A copy of `file` in `downloads_dir`/`folder`, the only place under the results that the file route serves.

    Run folders and exports hold more than a user should fetch by URL (logs, samples, checkpoints);
    what the page offers for download is copied here first.
    """
    target = Path(downloads_dir) / re.sub(r"[^A-Za-z0-9_.-]+", "-", folder) / Path(file).name
    target.parent.mkdir(parents=True, exist_ok=True)
    if Path(file).resolve() != target.resolve():
        shutil.copyfile(file, target)
    return str(target)


def check_remote_variant(variant, allowed_endpoints: tuple[str, ...]):
    """`variant` unless it is a RemoteVariant whose endpoint the operator did not list (--remote-endpoint): the
    server would otherwise send requests wherever a visitor points it."""
    if isinstance(variant, RemoteVariant) and variant.base_url not in allowed_endpoints:
        listed = ", ".join(allowed_endpoints) or "none"
        raise VariantError("base_url", f"this server compares only the endpoints its operator allowed (start the app with --remote-endpoint URL); allowed: {listed}")
    return variant
