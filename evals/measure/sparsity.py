"""Realised activation sparsity per layer: the fraction of exact zeros after the top-k gate.

Forward hooks on every decoder layer's MLP activation (`mlp.act_fn`, applied to the gate after
Gemma 3n's statistical top-k cut) count exact zeros over all positions of a fixed prompt. Layers
whose activation did not run through `act_fn` (a fused kernel) report NaN.
"""

from __future__ import annotations

import torch

from g3n_core.sparsity import text_layers

from .common import Measurement, MeasureSettings, prompt_ids


@torch.inference_mode()
def realised_sparsity(loaded, tokens: int) -> list[float]:
    """Per layer, the fraction of gate activations that are exactly zero on a `tokens`-token prompt."""
    layers = text_layers(loaded.model)
    zeros = [0] * len(layers)
    totals = [0] * len(layers)

    def hook(index: int):
        def count(module, inputs, output) -> None:
            zeros[index] += int((output == 0).sum())
            totals[index] += output.numel()

        return count

    handles = [layer.mlp.act_fn.register_forward_hook(hook(i)) for i, layer in enumerate(layers)]
    ids = torch.tensor([prompt_ids(loaded.tokenizer, min(tokens, loaded.context_length))], device=loaded.device)
    try:
        with loaded.lock:
            loaded.model(input_ids=ids, use_cache=False, logits_to_keep=1)
    finally:
        for handle in handles:
            handle.remove()
    return [z / t if t else float("nan") for z, t in zip(zeros, totals)]


def measure_sparsity(loaded, settings: MeasureSettings | None = None) -> list[Measurement]:
    """One Measurement per decoder layer (`layer_00`, ...), noting the configured target."""
    settings = settings or MeasureSettings()
    targets = list(loaded.text_config.activation_sparsity_pattern)
    fractions = realised_sparsity(loaded, settings.sparsity_prompt_tokens)
    return [
        Measurement(f"layer_{i:02d}", value, "fraction", f"target {targets[i]:g}", settings.sparsity_prompt_tokens)
        for i, value in enumerate(fractions)
    ]
