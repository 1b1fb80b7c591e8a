"""What the server may read on a user's behalf: only files uploaded to it (plus the app's own
examples), URLs only when the operator started it with --allow-url-media, and model folders only
under roots the operator named.

Gradio already refuses an input naming a server path that was not uploaded, but it *downloads* a
URL given as an input file; `refuse_url_files` closes that door per component. `media_policy`
is the second gate: g3n_core's MediaPolicy reads paths only under the allowed roots.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder
from gradio_client.utils import is_http_url_like

from g3n_core import MediaPolicy
from g3n_core.errors import ModelSourceError
from g3n_core.sources import BUILTIN_NAMES, classify


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
            raise gr.Error(
                f"{escape(str(url_or_file_path))}: this server does not fetch URLs; upload the file instead",
                title="URL refused",
            )
        return await move(url_or_file_path)

    component.async_move_resource_to_block_cache = move_uploads_only
    return component


def check_model_choice(model: str, model_roots: tuple[Path, ...]) -> str:
    """`model` when it is a built-in name, a hub id, or a folder under one of `model_roots`; else a ModelSourceError.

    Folders outside the roots are refused before anything is read, so the message says nothing
    about whether such a folder exists.
    """
    name = (model or "").strip()
    path = Path(name).expanduser()
    names_a_folder = bool(name) and name not in BUILTIN_NAMES and (name.startswith(("/", ".", "~")) or name.count("/") != 1 or path.exists())
    if names_a_folder and not any(path.resolve().is_relative_to(Path(root).resolve()) for root in model_roots):
        raise ModelSourceError(
            f"{escape(name)!r}: this server loads model folders only from folders its operator allowed "
            "(start the app with --model-root DIR); otherwise choose tiny or a hub id such as google/gemma-3n-E2B-it"
        )
    return classify(name).name
