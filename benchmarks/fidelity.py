"""How close a variant's outputs are to plain transformers': greedy tokens, and logits under teacher forcing."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks.timing import first_difference


def teacher_forced_logits(model, input_ids: torch.Tensor, forced: list[int], **generate_kwargs) -> torch.Tensor:
    """Logits [steps, vocab] of one prefill then one decode step per forced token (the decode path, not a long prefill)."""
    del generate_kwargs  # the cache kind does not change the arithmetic checked here
    steps = []
    with torch.inference_mode():
        out = model(input_ids, use_cache=True, logits_to_keep=1)
        steps.append(out.logits[0, -1].float().cpu())
        cache = out.cache
        for token in forced[:-1]:
            step = torch.tensor([[token]], device=input_ids.device)
            out = model(step, cache=cache, use_cache=True)
            cache = out.cache
            steps.append(out.logits[0, -1].float().cpu())
    return torch.stack(steps)


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
