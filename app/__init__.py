"""The Gradio workbench: composition and wiring over g3n_core (models, chat) and evals (metrics).

`python app.py` starts it. Each tab has a module of plain, importable functions (tested directly)
and a `render_*` function that lays out its components and wires their events.
"""
