"""The Compare tab's layout and events; the logic is in compare."""

from __future__ import annotations

import gradio as gr

from . import compare as c
from .workbench import Workbench


def render_compare_tab(bench: Workbench) -> tuple[gr.State, gr.Dropdown, None]:
    """The variant picker (suites, measurements and runs come with evals).

    Returns the known-variants state and the picker (the MatFormer tab adds slices to them).
    """
    suggested = c.suggested_variants(bench)
    chosen = gr.State(suggested)
    gr.Markdown("Compare **2 to 6 variants**. _Suites, measurements and runs are wired to `evals` once it is merged._")
    picker = gr.Dropdown(list(suggested), value=list(suggested)[:2], multiselect=True, label="Variants", elem_id="compare-variants",
                         info="Suggestions change one knob of the launch model; add your own below or from the MatFormer tab")
    with gr.Row():
        spec = gr.Textbox(placeholder="tiny attn=eager sparsity=0.9@0-4 towers=text", show_label=False, scale=4)
        add = gr.Button("Add", scale=1)
    ui = dict(queue=False, api_visibility="undocumented")
    add.click(c.add_spec, [chosen, picker, spec], [chosen, picker, spec], **ui)
    spec.submit(c.add_spec, [chosen, picker, spec], [chosen, picker, spec], **ui)
    return chosen, picker, None
