"""The MatFormer tab (wired to g3n_core.matformer slicing once it is merged)."""

from __future__ import annotations

import gradio as gr

from .workbench import Workbench


def render_matformer_tab(bench: Workbench, compare_variants: gr.State) -> None:
    """Placeholder until the MatFormer slicing lands."""
    gr.Markdown("MatFormer slicing is not merged yet.")
