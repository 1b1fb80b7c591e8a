"""How close a variant's outputs are to plain transformers': greedy tokens, and logits under teacher forcing."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import LogitsProcessor, LogitsProcessorList

from benchmarks.timing import first_difference


class ForceTokens(LogitsProcessor):
    """Records each step's logits, then makes greedy search pick the given token instead of its own."""

    def __init__(self, forced: list[int]):
        self.forced = forced
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.steps.append(scores[0].float().cpu())
        chosen = torch.full_like(scores, float("-inf"))
        chosen[:, self.forced[len(self.steps) - 1]] = 0.0
        return chosen


def teacher_forced_logits(model, input_ids: torch.Tensor, forced: list[int], **generate_kwargs) -> torch.Tensor:
    """Logits [steps, vocab] at each decode step of `model.generate` (with the variant's cache and compile
    settings) while it is made to follow the `forced` tokens: a comparison that cannot drift apart."""
    force = ForceTokens(forced)
    with torch.inference_mode():
        model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=len(forced),  # no min_new_tokens: its processor would write -inf into the recorded logits
            do_sample=False,
            logits_processor=LogitsProcessorList([force]),
            **generate_kwargs,
        )
    return torch.stack(force.steps)


def compare_logits(ours: torch.Tensor, base: torch.Tensor) -> dict:
    """Max |difference|, mean KL(base || ours), and how often the top token agrees, over the steps."""
    kl = F.kl_div(F.log_softmax(ours, -1), F.log_softmax(base, -1), log_target=True, reduction="none").sum(-1)
    return {
        "steps": int(base.shape[0]),
        "max_abs_diff": float((ours - base).abs().max()),
        "mean_kl": float(kl.mean()),
        "top1_agreement": float((ours.argmax(-1) == base.argmax(-1)).float().mean()),
        "first_step_max_abs_diff": float((ours[0] - base[0]).abs().max()),
    }


def compare_tokens(ours: list[int], base: list[int]) -> dict:
    """Whether greedy tokens are identical, and where they first part."""
    diff = first_difference(ours, base)
    return {"identical": diff is None, "first_difference": diff, "tokens": len(base)}
