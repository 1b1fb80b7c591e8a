"""The vision-tower probe: spread, the per-kind head, and the layer-scale opening (g3n_core.builtin.tower_heads)."""

from __future__ import annotations

import pytest
import torch

from g3n_core.builtin.tower_heads import ImageHead, open_unskipped_blocks, spread


def test_spread_is_zero_for_identical_items_and_positive_otherwise():
    same = torch.ones(4, 3, 8)
    assert spread(same) == 0.0
    different = same.clone()
    different[0] += 1.0
    assert spread(different) > 0.1


@pytest.mark.parametrize("pooled", [False, True], ids=["attention", "max-pool"])
def test_the_head_answers_among_its_kinds_answers_and_learns_separable_tokens(pooled):
    labels = [("colour", "red"), ("colour", "blue"), ("shape", "star"), ("shape", "circle")]
    head = ImageHead(8, labels, pooled=pooled)
    torch.manual_seed(0)
    tokens = torch.randn(4, 3, 8)
    optimizer = torch.optim.Adam(head.parameters(), lr=3e-2)
    first = float(head.loss(tokens, labels).detach())
    for _ in range(60):
        loss = head.loss(tokens, labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert float(head.loss(tokens, labels).detach()) < first / 4
    assert head.correct(tokens, labels) == [True] * 4
    # a colour picture is never answered with a shape, whatever the logits
    logits = head._kind_logits(tokens, labels)
    shape_classes = [n for (kind, _), n in head.classes.items() if kind == "shape"]
    assert torch.isinf(logits[:2, shape_classes]).all()


def test_only_blocks_without_a_skip_get_layer_scale_one():
    from transformers import Gemma3nForConditionalGeneration

    from g3n_core.builtin.configs import tiny_config

    tower = Gemma3nForConditionalGeneration(tiny_config()).model.vision_tower
    changed = open_unskipped_blocks(tower)
    assert changed > 0
    for block in tower.modules():
        gamma = getattr(getattr(block, "layer_scale", None), "gamma", None)
        if gamma is not None:
            assert bool((gamma == 1.0).all()) == (not block.has_skip)
