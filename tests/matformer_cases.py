"""Shared pieces of the MatFormer tests: prompts for every modality, and a reference that runs an
untouched parent as if it were sliced (layers bypassed, FFNs cut to their first k neurons).

The reference is written from the architecture's definition, not from g3n_core.matformer: it
neither renumbers layers nor cuts tables, it wraps modules of a parent copy.
"""

from __future__ import annotations

import contextlib
import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from g3n_core import MatformerSlice, Variant, load_model
from g3n_core.prompt import prepare_prompt

# tiny: 15 layers L L L L G x3; layers 3 (local) and 4 (global) store K/V that the shared layers 5-14 reuse;
# activation sparsity 0.95 on layers 0-4; FFN 512 everywhere.
SLICES = {
    "ffn-only": MatformerSlice(ffn=(128, 512, 256, 64, 500, 384, 1, 512, 200, 256, 512, 100, 256, 300, 17)),
    "skip-only": MatformerSlice(skip=(1, 2, 7, 11)),
    "ffn-and-skip": MatformerSlice(ffn=(300, 512, 100, 256, 64, 512, 128, 256, 400, 32, 512, 256), skip=(2, 6, 13)),
    # E4B -> E2B in miniature: drop the first block of KV-shared layers, halve every FFN
    "preset-like": MatformerSlice(ffn=(256,) * 10, skip=(5, 6, 7, 8, 9), preset=None),
}

GREEDY_TOKENS = 10  # new tokens compared between a slice and its reference


def prompts(loaded, media) -> dict[str, dict[str, torch.Tensor]]:
    """Model inputs for a text, an image and an audio prompt (longer than tiny's 16-token window)."""
    text = "Tell me a short story about a fox who learns to read, in three sentences please."
    image = [{"type": "image", "image": str(media["image"])}, {"type": "text", "text": "What is in this picture?"}]
    audio = [{"type": "audio", "audio": str(media["audio"])}, {"type": "text", "text": "Transcribe this."}]
    return {
        name: prepare_prompt(loaded, [{"role": "user", "content": content}], 4).inputs
        for name, content in (("text", [{"type": "text", "text": text}]), ("image", image), ("audio", audio))
    }


def greedy(model, inputs: dict[str, torch.Tensor], n: int = GREEDY_TOKENS) -> torch.Tensor:
    """n greedy new tokens (no early stop)."""
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False)
    return out[0, inputs["input_ids"].shape[1] :]


class CountingLoader:
    """load_model, remembering every variant it was asked to load."""

    def __init__(self):
        self.loads: list[Variant] = []

    def __call__(self, variant, progress=None):
        self.loads.append(variant)
        return load_model(variant, progress)


def logits(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Last-layer logits of one forward pass without a cache."""
    with torch.no_grad():
        return model(**inputs, use_cache=False).logits


class FirstNeurons(nn.Module):
    """A parent MLP that uses only its first k neurons; the sparsity cut-off is over those k only."""

    def __init__(self, mlp: nn.Module, k: int):
        super().__init__()
        self.mlp, self.k = mlp, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, mlp = self.k, self.mlp
        gate = x @ mlp.gate_proj.weight[:k].T
        target = float(mlp.activation_sparsity)
        if target > 0:
            z = math.sqrt(2.0) * torch.erfinv(torch.tensor(2 * target - 1, dtype=torch.float32)).to(gate.dtype)
            cutoff = gate.mean(dim=-1, keepdim=True) + gate.std(dim=-1, keepdim=True, unbiased=False) * z
            gate = F.relu(gate - cutoff)
        up = x @ mlp.up_proj.weight[:k].T
        return (F.gelu(gate, approximate="tanh") * up) @ mlp.down_proj.weight[:, :k].T


class Bypass(nn.Module):
    """A decoder layer that is not there: the residual streams pass through untouched."""

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return hidden_states


@contextlib.contextmanager
def run_as_sliced(parent: nn.Module, widths_by_layer: dict[int, int], skip: set[int]):
    """A copy of `parent` with `skip` bypassed and layer i's FFN cut to widths_by_layer[i] neurons."""
    model = copy.deepcopy(parent)
    text = model.model.language_model
    assert text.config.hidden_activation == "gelu_pytorch_tanh"
    for i in range(len(text.layers)):
        if i in skip:
            text.layers[i] = Bypass()
        elif widths_by_layer.get(i, text.layers[i].mlp.intermediate_size) != text.layers[i].mlp.intermediate_size:
            text.layers[i].mlp = FirstNeurons(text.layers[i].mlp, widths_by_layer[i])
    yield model


def widths_by_parent_layer(ffn: tuple[int, ...] | None, skip: tuple[int, ...], layers: int) -> dict[int, int]:
    """Kept-layer-order widths (the Lab convention) mapped to parent layer indices."""
    kept = [i for i in range(layers) if i not in set(skip)]
    return dict(zip(kept, ffn)) if ffn is not None else {}
