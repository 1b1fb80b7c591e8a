"""Log-likelihood of continuations: lm-evaluation-harness's tokenization, scored fast.

Tokenization copies lm-eval 0.4.13 (`TemplateLM.loglikelihood` / `_encode_pair` with HFLM's
`tok_encode`), so every (context, continuation) pair becomes the same token lists as there.

Scoring differs in how the work is laid out, not in what is computed. lm-eval runs one forward
pass over context + continuation per choice. Here the choices of a question share one pass over
their common context: the context is prefilled once (several contexts of similar length together,
left-padded), its KV cache is repeated once per choice, and all choices' tokens run together in a
second pass on top of it. Single-token choices need no second pass at all. Log-softmax is taken in
float32. `score_pairs_exact` is lm-eval's own computation (one unpadded pass per pair) for pairs
whose ranking is too close to call (see tasks/multiple_choice.py).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .requests import Loglikelihood

TokenPair = tuple[list[int], list[int]]  # (context ids, continuation ids)


# -- tokenization, as lm-eval does it ------------------------------------------------------------


def prefix_token_id(tokenizer) -> int:
    """The token that stands in for an empty context: BOS, else EOS (HFLM.prefix_token_id)."""
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def tok_encode(tokenizer, text: str, add_special_tokens: bool | None = None) -> list[int]:
    """HFLM.tok_encode: the tokenizer's default special tokens, unless the text already starts with BOS."""
    kwargs = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
    if add_special_tokens is None and text.startswith(tokenizer.decode(prefix_token_id(tokenizer))):
        kwargs["add_special_tokens"] = False
    return tokenizer.encode(text, **kwargs)


def encode_pair(tokenizer, context: str, continuation: str) -> TokenPair:
    """Context and continuation token ids exactly as lm-eval builds them for a causal model."""
    if context == "":
        continuation_ids = tok_encode(tokenizer, continuation, add_special_tokens=False)
        prefix = prefix_token_id(tokenizer)
        if prefix != continuation_ids[0]:
            return [prefix], continuation_ids
        return continuation_ids[:1], continuation_ids[1:]
    spaces = len(context) - len(context.rstrip())
    if spaces:  # trailing spaces of the context belong to the continuation (word-boundary tokens)
        continuation = context[-spaces:] + continuation
        context = context[:-spaces]
    whole = tok_encode(tokenizer, context + continuation)
    context_ids = tok_encode(tokenizer, context)
    return context_ids, whole[len(context_ids) :]


# -- scoring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoringSettings:
    """How much work one forward pass may take: contexts per prefill, tokens per prefill, logits bytes."""

    max_batch: int = 32
    max_batch_tokens: int = 4096
    max_logits_bytes: int = 512 * 2**20


def _truncate(context: list[int], continuation: list[int], max_length: int) -> list[int]:
    """lm-eval's model input: context + continuation, left-truncated to max_length + 1, last token dropped."""
    return (context + continuation)[-(max_length + 1) :][:-1]


def _gather_scores(logprobs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-probs of `targets` [.., T] from `logprobs` [.., T, V], and whether each is the argmax."""
    picked = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked, logprobs.argmax(-1) == targets


@torch.inference_mode()
def score_pairs_exact(model: nn.Module, pairs: list[TokenPair], max_length: int) -> list[Loglikelihood]:
    """lm-eval's computation (HFLM at batch size 1): one unpadded pass over context + continuation per pair."""
    device = next(model.parameters()).device
    results = []
    for context, continuation in pairs:
        ids = torch.tensor([_truncate(context, continuation, max_length)], device=device)
        logits = model(input_ids=ids).logits[0, -len(continuation) :]
        logprobs = F.log_softmax(logits.float(), dim=-1)
        picked, greedy = _gather_scores(logprobs, torch.tensor(continuation, device=device))
        results.append(Loglikelihood(float(picked.sum()), bool(greedy.all()), len(continuation)))
    return results


def _context_batches(contexts: list[tuple[int, ...]], settings: ScoringSettings) -> list[list[tuple[int, ...]]]:
    """Contexts sorted longest first, cut into batches under the batch and token limits (little padding)."""
    ordered = sorted(contexts, key=lambda c: (-len(c), c))
    batches: list[list[tuple[int, ...]]] = []
    for context in ordered:
        if batches:
            batch = batches[-1]
            width = len(batch[0])  # the longest, since sorted
            if len(batch) < settings.max_batch and (len(batch) + 1) * width <= settings.max_batch_tokens:
                batch.append(context)
                continue
        batches.append([context])
    return batches


def _prefill(model: nn.Module, contexts: list[tuple[int, ...]], device: torch.device):
    """One left-padded pass over several contexts. Returns float32 log-probs of the next token, cache, mask, positions."""
    width = max(len(c) for c in contexts)
    ids = torch.zeros(len(contexts), width, dtype=torch.long)
    mask = torch.zeros(len(contexts), width, dtype=torch.long)
    for row, context in enumerate(contexts):
        ids[row, width - len(context) :] = torch.tensor(context)
        mask[row, width - len(context) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    return F.log_softmax(out.logits[:, -1].float(), dim=-1), out.cache, mask, positions[:, -1]


def _continuation_chunks(rows: list[tuple[int, list[int], int]], vocab: int, settings: ScoringSettings):
    """Split (context row, continuation, pair index) rows so that one pass's float32 logits stay under the byte limit."""
    width = max(len(cont) - 1 for _, cont, _ in rows)
    per_row = max(1, width) * vocab * 4 * 2  # logits and their log-softmax
    size = max(1, settings.max_logits_bytes // per_row)
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _score_continuations(model, cache, mask, last_pos, rows, device) -> list[tuple[float, bool]]:
    """Run every choice's tokens but the last on top of its context's cache; sum log-probs of tokens 2..n."""
    index = torch.tensor([row for row, _ in rows], device=device)
    cache.reorder_cache(index)  # one cache row per choice (index_select along the batch)
    width = max(len(cont) - 1 for _, cont in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    targets = torch.zeros(len(rows), width, dtype=torch.long)
    valid = torch.zeros(len(rows), width, dtype=torch.bool)
    for r, (_, cont) in enumerate(rows):
        n = len(cont) - 1
        ids[r, :n], targets[r, :n], valid[r, :n] = torch.tensor(cont[:-1]), torch.tensor(cont[1:]), True
    ids, targets, valid = ids.to(device), targets.to(device), valid.to(device)
    # Right padding after a choice only affects later positions, which are never read.
    full_mask = torch.cat([mask[index], torch.ones_like(ids)], dim=1)
    positions = last_pos[index, None] + 1 + torch.arange(width, device=device)
    logits = model(input_ids=ids, attention_mask=full_mask, position_ids=positions, cache=cache, use_cache=True).logits
    picked, greedy = _gather_scores(F.log_softmax(logits.float(), dim=-1), targets)
    sums = (picked * valid).sum(-1)
    all_greedy = (greedy | ~valid).all(-1)
    return list(zip(sums.tolist(), all_greedy.tolist()))


def _score_batch(model, batch, groups, device, vocab, settings) -> dict[tuple[int, ...], dict[int, Loglikelihood]]:
    """Scores of every pair whose context is in `batch` (a list of distinct contexts)."""
    first, cache, mask, last_pos = _prefill(model, batch, device)
    scores: dict[tuple[int, ...], dict[int, Loglikelihood]] = {}
    longer: list[tuple[int, list[int], int]] = []  # (context row, continuation, pair index)
    for row, context in enumerate(batch):
        scores[context] = {}
        for index, cont in groups[context]:
            head = cont[0]
            scores[context][index] = Loglikelihood(float(first[row, head]), bool(first[row].argmax() == head), len(cont))
            if len(cont) > 1:
                longer.append((row, cont, index))
    chunks = _continuation_chunks(longer, vocab, settings) if longer else []
    for chunk in chunks:
        chunk_cache = cache if len(chunks) == 1 else copy.deepcopy(cache)  # reordering is in place
        rows = [(row, cont) for row, cont, _ in chunk]
        for (row, _, index), (rest, greedy) in zip(chunk, _score_continuations(model, chunk_cache, mask, last_pos, rows, device)):
            result = scores[batch[row]][index]
            result.logprob += rest
            result.is_greedy = result.is_greedy and greedy
    return scores


@torch.inference_mode()
def score_pairs(
    model: nn.Module, pairs: list[TokenPair], max_length: int, settings: ScoringSettings | None = None
) -> list[Loglikelihood]:
    """Log-likelihood of each continuation after its context, sharing one pass per distinct context."""
    settings = settings or ScoringSettings()
    device = next(model.parameters()).device
    vocab = model.config.get_text_config().vocab_size
    results: list[Loglikelihood | None] = [None] * len(pairs)
    groups: dict[tuple[int, ...], list[tuple[int, list[int]]]] = defaultdict(list)
    too_long = []
    for index, (context, continuation) in enumerate(pairs):
        if not context or not continuation:
            raise ValueError("lm-eval scoring needs a non-empty context and continuation (encode_pair provides both)")
        if len(context) + len(continuation) > max_length + 1:
            too_long.append(index)  # truncated per pair from the left, as lm-eval does
        else:
            groups[tuple(context)].append((index, list(continuation)))
    for index, result in zip(too_long, score_pairs_exact(model, [pairs[i] for i in too_long], max_length)):
        results[index] = result
    for batch in _context_batches(list(groups), settings):
        for context, by_index in _score_batch(model, batch, groups, device, vocab, settings).items():
            for index, result in by_index.items():
                results[index] = result
    return results  # type: ignore[return-value]
