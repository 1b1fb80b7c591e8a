"""Log-probabilities of every token of a text prompt given the tokens before it (the OpenAI completions API's `echo` + `logprobs`).

One forward pass over the whole prompt, as lm-evaluation-harness scores a continuation. The
vocabulary projection is applied in slices of positions (a hook hands the model only the last
position and keeps the hidden states), so memory stays bounded on a 262k-token vocabulary;
log-softmax is taken in float32, after the model's final logit soft-capping.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

POSITIONS_PER_SLICE = 128  # logits held at once: 128 x 262,144 float32 = 128 MiB for the real vocabulary


@dataclass
class PromptLogprobs:
    """Per token: its log-probability (None for the first) and the `top` most likely tokens there (ids, log-probs)."""

    token_logprobs: list[float | None]
    top: list[list[tuple[int, float]] | None]


@torch.inference_mode()
def prompt_logprobs(loaded, ids: list[int], top: int = 1) -> PromptLogprobs:
    """log P(ids[i] | ids[:i]) for every i > 0 of one sequence, and the `top` alternatives at each position."""
    model = loaded.model
    head = model.get_output_embeddings()
    kept: dict[str, torch.Tensor] = {}

    def keep_hidden(module, args):
        kept["hidden"] = args[0]
        return (args[0][:, -1:],)

    tensor = torch.tensor([ids], device=loaded.device)
    cap = getattr(loaded.text_config, "final_logit_softcapping", None)
    targets = tensor[0, 1:]
    scores: list[float | None] = [None]
    alternatives: list[list[tuple[int, float]] | None] = [None]
    with loaded.lock:  # the hook must see only this forward pass: nothing else may run the model meanwhile
        handle = head.register_forward_pre_hook(keep_hidden)
        try:
            model(input_ids=tensor, attention_mask=torch.ones_like(tensor), use_cache=False)
        finally:
            handle.remove()
        hidden = kept["hidden"][0, :-1]  # position i predicts token i + 1
        for start in range(0, hidden.shape[0], POSITIONS_PER_SLICE):
            logits = head(hidden[start : start + POSITIONS_PER_SLICE]).float()
            if cap:
                logits = torch.tanh(logits / cap) * cap
            logprobs = F.log_softmax(logits, dim=-1)
            scores += logprobs.gather(-1, targets[start : start + POSITIONS_PER_SLICE, None])[:, 0].tolist()
            if top > 0:
                values, indices = logprobs.topk(top, dim=-1)
                alternatives += [list(zip(i.tolist(), v.tolist())) for i, v in zip(indices, values)]
            else:
                alternatives += [[] for _ in range(logprobs.shape[0])]
    return PromptLogprobs(scores, alternatives)
