"""The page: a header, the model panel, and the Chat / Compare / MatFormer tabs, composed into one gr.Blocks."""

from __future__ import annotations

from functools import partial

import gradio as gr

from .chat_tab import render_chat_tab
from .compare import runs_dropdown
from .compare_tab import render_compare_tab
from .compare_view import COMPARE_CSS
from .matformer_tab import render_matformer_tab
from .model_panel import render_model_panel
from .workbench import Workbench

TITLE = "Gemma 3n Workbench"
INTRO = """# 🔬 Gemma 3n Workbench
Chat with Gemma 3n using **text, images, audio and video**, then **compare configurations**
(attention kernel, dtype, MatFormer slice, activation sparsity) on accuracy, latency and memory.
"""
CSS = """
.g3n-banner { background: #fff4e5; border: 1px solid #f5a623; border-radius: 8px; padding: 10px 14px; color: #5a3b00; }
.g3n-note { background: #eef4ff; border: 1px solid #8fb3ff; border-radius: 8px; padding: 8px 14px; margin-bottom: 6px; color: #17346b; }
#model-status { font-size: 0.9em; }
#model-load-note { min-height: 2.5em; }
footer { display: none !important; }
/* Narrow screens (phones, 400 px): every tab stays in the bar (Gradio moves those that do not fit under a
   "more" menu), and the Compare charts stack instead of standing two across. */
@media (max-width: 720px) {
  .tab-container button { padding-left: 6px !important; padding-right: 6px !important; font-size: 0.9em !important; }
  .row:has(> [id^="chart-"]) { flex-direction: column !important; }
  .row:has(> [id^="chart-"]) > * { width: 100% !important; }
}
""" + COMPARE_CSS
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="blue")


def build_demo(bench: Workbench, allow_url_media: bool = False) -> gr.Blocks:
    """The whole app; each session gets its own variant and chat history (gr.State)."""
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(1800, 6 * 3600)) as demo:
        gr.Markdown(INTRO, elem_id="intro")
        variant_state = gr.State(bench.default_variant)
        render_model_panel(bench, variant_state)
        with gr.Tabs():
            with gr.Tab("💬 Chat", id="chat"):
                render_chat_tab(bench, variant_state, allow_url_media)
            with gr.Tab("📊 Compare", id="compare"):
                known_variants, picker, runs = render_compare_tab(bench)
            with gr.Tab("🪆 MatFormer", id="matformer"):
                render_matformer_tab(bench, known_variants, picker)
        demo.load(partial(runs_dropdown, bench), None, [runs], queue=False, api_visibility="undocumented")
    return demo
