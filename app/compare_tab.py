"""The Compare tab (wired to evals once it is merged)."""

from __future__ import annotations

import gradio as gr

from .workbench import Workbench


def render_compare_tab(bench: Workbench) -> gr.State:
    """Placeholder until evals lands; returns the state holding the variants to compare."""
    gr.Markdown("Comparisons need the `evals` package.")
    return gr.State({})
