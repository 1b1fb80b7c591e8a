"""The resident-size estimate the page shows before Load (model panel) and Run (Compare), and what it refuses.

The estimate is g3n_core.footprint's, the very figure `ModelCache` checks before it loads, so a
variant the page shows as too large is also refused by the API behind Load and by a Compare run.
"""

from __future__ import annotations

from html import escape

import gradio as gr

from g3n_core import G3nError, ModelTooLargeError, Variant
from g3n_core.footprint import too_large_error
from g3n_core.info import human_bytes

from .feedback import readable_error
from .workbench import Workbench


def fit_error(bench: Workbench, variant: Variant) -> ModelTooLargeError | None:
    """The refusal `variant` would meet in the shared model cache, or None when it fits."""
    needed = bench.cache.estimate(variant)
    return too_large_error(variant, needed, bench.cache.budget_bytes) if needed > bench.cache.budget_bytes else None


def fit_markdown(bench: Workbench, variant: Variant) -> tuple[str, bool]:
    """(one Markdown line: the estimate against the budget, or why it is refused; whether it fits)."""
    refused = fit_error(bench, variant)
    if refused is not None:
        return f"⛔ **Too large for this server.** {escape(str(refused))}", False
    needed = bench.cache.estimate(variant)
    size = f"about **{human_bytes(needed)}**" if needed else "an unknown size (it cannot be read before loading)"
    return f"Needs {size} in memory once loaded; the model cache holds up to {human_bytes(bench.cache.budget_bytes)}.", True


def estimate_update(bench: Workbench, make_variant) -> tuple[str, gr.Button]:
    """The estimate line and the Load/Run button (disabled when the variant cannot fit or cannot be built)."""
    try:
        text, fits = fit_markdown(bench, make_variant())
    except G3nError as err:
        return f"⚠️ {escape(str(err))}", gr.Button(interactive=False)
    return text, gr.Button(interactive=fits)


def variants_markdown(bench: Workbench, variants: dict[str, Variant]) -> tuple[str, bool]:
    """One line per picked variant with its estimate (and a refusal where it cannot fit); whether all fit."""
    lines, all_fit = [], True
    for name, variant in variants.items():
        refused = fit_error(bench, variant)
        needed = bench.cache.estimate(variant)
        if refused is None:
            lines.append(f"- `{escape(name)}`: about {human_bytes(needed)}")
        else:
            all_fit = False
            lines.append(f"- ⛔ `{escape(name)}`: {escape(str(refused))}")
    head = f"**Memory per variant** (loaded one at a time; budget {human_bytes(bench.cache.budget_bytes)}):"
    return "\n".join([head, *lines]) if lines else "", all_fit


def check_all_fit(bench: Workbench, variants: list[Variant]) -> None:
    """Refuse a run (before anything is written) when one of its variants cannot fit the model cache's budget."""
    for variant in variants:
        refused = fit_error(bench, variant)
        if refused is not None:
            raise readable_error(refused)
