"""How the app reports to the page: typed errors as readable toasts (raised, or shown without failing the event), load progress as a gr.Progress bar."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

import gradio as gr

from g3n_core import G3nError, ModelSourceError, SliceError, VariantError


def readable_error(err: Exception) -> gr.Error:
    """A gr.Error for the page: the typed error's own message (it says what to do), HTML-escaped."""
    if isinstance(err, (VariantError, ModelSourceError, SliceError)):
        return gr.Error(escape(str(err)), title="Model settings error")
    if isinstance(err, G3nError):
        return gr.Error(escape(str(err)), title="Request error")
    return gr.Error(escape(f"{type(err).__name__}: {err}"), title="Unexpected error")


def progress_callback(progress: gr.Progress | None) -> Callable[[float, str], None] | None:
    """g3n_core's progress(fraction, message) feeding a gr.Progress bar."""
    if progress is None:
        return None
    return lambda fraction, message: progress(fraction, desc=message)


def show_error(err: Exception) -> str:
    """Show `err` as a toast without failing the event (a failed event marks its outputs "Error") and return
    the same message as one Markdown line for the page."""
    shown = err if isinstance(err, gr.Error) else readable_error(err)
    gr.Warning(shown.message, duration=20, title=shown.title or "Error")
    return f"⚠️ **{shown.title or 'Error'}:** {shown.message}"
