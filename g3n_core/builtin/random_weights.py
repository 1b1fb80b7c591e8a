"""Deterministic random weights for the built-in models.

Each parameter draws from its own generator, seeded by the seed and the parameter's name in the
full multimodal model. So a text-only build and a full build of the same model hold identical
text weights, whatever order modules are created in.
"""

from __future__ import annotations

import zlib

import torch
from torch import nn

# transformers initialises AltUp's output scale to zero, which would silence the per-layer-embedding
# path entirely; random weights must exercise every part of the architecture.
_UNIT_SCALE_NAMES = ("norm", "correct_output_scale", "layer_scale", "gamma", "scale")
_SMALL_NAMES = ("correction_coefs", "prediction_coefs", "per_dim_scale")


def canonical_name(name: str, text_only: bool) -> str:
    """The parameter's name in Gemma3nForConditionalGeneration (text-only models nest one level less)."""
    if text_only and name.startswith("model."):
        return "model.language_model." + name[len("model.") :]
    return name


def _fill_(name: str, param: torch.Tensor, generator: torch.Generator) -> None:
    leaf = name.rsplit(".", 1)[-1]
    with torch.no_grad():
        if param.ndim <= 1:
            if any(key in name for key in _SMALL_NAMES):
                param.normal_(0.0, 0.1, generator=generator)
            elif leaf == "bias":
                param.normal_(0.0, 0.01, generator=generator)
            elif any(key in name for key in _UNIT_SCALE_NAMES) or leaf == "weight":
                param.normal_(1.0, 0.1, generator=generator)
            else:
                param.normal_(0.0, 0.1, generator=generator)
            return
        fan_in = param[0].numel()
        std = fan_in**-0.5
        if any(key in name for key in _SMALL_NAMES):
            std *= 0.1
        param.normal_(0.0, std, generator=generator)


def fill_random_(model: nn.Module, seed: int, text_only: bool = False) -> None:
    """Overwrite every parameter of `model` with seeded random values scaled to keep activations O(1)."""
    for name, param in model.named_parameters():
        full_name = canonical_name(name, text_only)
        generator = torch.Generator().manual_seed(seed ^ zlib.crc32(full_name.encode()))
        _fill_(full_name, param.data, generator)
