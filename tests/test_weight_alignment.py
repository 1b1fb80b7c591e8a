"""load_model copies weights that safetensors left unaligned (float32 GEMV rounds by alignment on some CPUs)."""

from __future__ import annotations

import torch
from torch import nn

from g3n_core import Variant, load_model
from g3n_core.loading import WEIGHT_ALIGNMENT, _align_weights


def _misaligned(shape: tuple[int, int]) -> torch.Tensor:
    buffer = torch.randn(shape[0] * shape[1] + 2)
    return buffer[2:].view(shape)  # 8 bytes past an aligned start, as safetensors maps them


def test_unaligned_weights_are_copied_and_values_kept():
    model = nn.Sequential(nn.Linear(64, 32, bias=False), nn.Linear(32, 8, bias=False))
    weight = _misaligned((32, 64))
    model[0].weight.data = weight
    assert model[0].weight.data_ptr() % WEIGHT_ALIGNMENT != 0
    assert _align_weights(model) == 1
    assert model[0].weight.data_ptr() % WEIGHT_ALIGNMENT == 0 and torch.equal(model[0].weight, weight)


def test_named_parameters_can_be_left_in_place():
    model = nn.Sequential(nn.Linear(64, 32, bias=False))
    model[0].weight.data = _misaligned((32, 64))
    assert _align_weights(model, skip="0.weight") == 0
    assert model[0].weight.data_ptr() % WEIGHT_ALIGNMENT != 0


def test_loaded_model_weights_are_aligned():
    loaded = load_model(Variant(dtype="float32"))
    assert all(p.data_ptr() % WEIGHT_ALIGNMENT == 0 for p in loaded.model.parameters())
