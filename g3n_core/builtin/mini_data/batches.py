"""Examples -> padded model inputs: right-padded ids and labels, pixel values, log-mel features with masks."""

from __future__ import annotations

import math

import numpy as np
import torch

from .examples import IGNORE, Example, MediaPool

PAD_ID = 0  # <pad>


def collate(examples: list[Example], pool: MediaPool | None = None) -> dict[str, torch.Tensor]:
    """One batch: input_ids / attention_mask / labels, plus pixel_values or input_features(+mask) when the examples carry media."""
    width = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), width), PAD_ID, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.ids)
        ids[row, :n] = torch.tensor(example.ids)
        labels[row, :n] = torch.tensor(example.labels)
        mask[row, :n] = 1
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    images = [e.image for e in examples if e.image is not None]
    if images:
        batch["pixel_values"] = torch.from_numpy(pool.pixels[images]).float() / 255.0
    clips = [pool.features[e.audio] for e in examples if e.audio is not None]
    if clips:
        frames = max(len(c) for c in clips)
        features = np.zeros((len(clips), frames, clips[0].shape[1]), dtype=np.float32)
        valid = np.zeros((len(clips), frames), dtype=bool)
        for row, clip in enumerate(clips):
            features[row, : len(clip)] = clip
            valid[row, : len(clip)] = True
        batch["input_features"] = torch.from_numpy(features)
        batch["input_features_mask"] = torch.from_numpy(valid)
    return batch


# What one more forward pass costs beyond its tokens, in padded tokens: measured on mini's text
# batches (1 thread, 2026-12-04), a pass of 8 rows costs about 34 ms plus 0.43 ms per padded token.
PASS_COST_TOKENS = 80


def length_groups(examples: list[Example], size: int, pass_cost: int = PASS_COST_TOKENS) -> list[list[Example]]:
    """Examples sorted by length and cut into passes of at most `size` that cost the fewest padded tokens.

    A pass costs its rows times its longest example, plus `pass_cost`; one long example (a 3-shot
    completion is ~190 tokens, a chat turn ~45) would otherwise pad a whole batch to its length.
    """
    ordered = sorted(examples, key=lambda e: len(e.ids))
    lengths = [len(e.ids) for e in ordered]
    best = [0.0] + [math.inf] * len(ordered)  # best[j]: least cost of the first j examples
    cut = [0] * (len(ordered) + 1)  # cut[j]: where the last pass of that best starts
    for j in range(1, len(ordered) + 1):
        for i in range(max(0, j - size), j):
            cost = best[i] + pass_cost + (j - i) * lengths[j - 1]
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups, j = [], len(ordered)
    while j:
        groups.append(ordered[cut[j] : j])
        j = cut[j]
    return groups[::-1]


def answer_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean next-token cross-entropy over answer tokens, and the detached loss of each labelled position ([B, T], 0 elsewhere)."""
    shifted = labels[:, 1:]
    losses = torch.nn.functional.cross_entropy(
        logits[:, :-1].float().transpose(1, 2), shifted, ignore_index=IGNORE, reduction="none"
    )
    valid = shifted != IGNORE
    # position p's label is scored by the logits at p - 1: pad one column in front so index p means token p
    per_token = torch.nn.functional.pad((losses * valid).detach(), (1, 0))
    return losses.sum() / valid.sum().clamp(min=1), per_token


def family_totals(per_token: torch.Tensor, labels: torch.Tensor, examples: list[Example], totals: dict) -> None:
    """Add each answer span's summed loss and token count to totals[family] ([sum, count])."""
    for row, example in enumerate(examples):
        for family, start, end in example.spans:
            scored = labels[row, start:end] != IGNORE
            totals[family][0] += float(per_token[row, start:end].sum())
            totals[family][1] += int(scored.sum())
