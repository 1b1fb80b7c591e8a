"""The fast multiple-choice scorer: lm-eval's tokenization, and the same numbers as one pass per choice."""

from __future__ import annotations

import pytest

import torch

from evals.requests import Loglikelihood, LoglikelihoodRequest
from evals.scoring import ScoringSettings, encode_pair, score_pairs, score_pairs_exact
from evals.tasks.multiple_choice import MultipleChoiceTask, near_tie

pytestmark = pytest.mark.usefixtures("single_thread")


def test_encode_pair_is_lm_evals_tokenization(tiny):
    from lm_eval.models.huggingface import HFLM

    hflm = HFLM(pretrained=tiny.model, tokenizer=tiny.tokenizer, backend="causal")
    cases = [
        ("Question: What is it?\nAnswer:", " a red apple"),
        ("Trailing spaces move  ", "to the continuation"),
        ("", "empty context takes the prefix token"),
        ("<bos>Already starts with BOS", " yes"),
        ("Unicode — ünïcödé", " ✓ done"),
    ]
    for context, continuation in cases:
        if context:
            expected = hflm._encode_pair(context, continuation)
        else:
            cont = hflm.tok_encode(continuation, add_special_tokens=False)
            expected = ([hflm.prefix_token_id], cont)
        assert encode_pair(tiny.tokenizer, context, continuation) == (list(expected[0]), list(expected[1])), context


def _pairs(seed: int) -> list[tuple[list[int], list[int]]]:
    """Questions with shared contexts longer than tiny's 16-token sliding window and 1-6 token choices."""
    g = torch.Generator().manual_seed(seed)
    pairs = []
    for question in range(7):
        context = torch.randint(10, 2000, (int(torch.randint(18, 70, (1,), generator=g)),), generator=g).tolist()
        for choice in range(4):
            length = 1 + (question + choice) % 6
            pairs.append((context, torch.randint(10, 2000, (length,), generator=g).tolist()))
    return pairs


def test_shared_context_scores_equal_one_pass_per_choice(tiny):
    pairs = _pairs(0)
    exact = score_pairs_exact(tiny.model, pairs, tiny.context_length)
    # several batches, padded contexts, and continuation passes split into chunks with copied caches
    for settings in (ScoringSettings(), ScoringSettings(max_batch=3, max_logits_bytes=3 * 6 * 2064 * 8)):
        fast = score_pairs(tiny.model, pairs, tiny.context_length, settings)
        for f, e in zip(fast, exact):
            assert abs(f.logprob - e.logprob) <= 1e-4 * max(1.0, abs(e.logprob))
            assert f.is_greedy == e.is_greedy and f.num_tokens == e.num_tokens


def test_pairs_longer_than_the_context_are_truncated_like_lm_eval(tiny):
    pairs = _pairs(1)[:8]
    short = 40  # forces left truncation of (context + continuation) for the longer pairs
    fast = score_pairs(tiny.model, pairs, short)
    exact = score_pairs_exact(tiny.model, pairs, short)
    assert [round(f.logprob, 3) for f in fast] == [round(e.logprob, 3) for e in exact]


class _TiedModel:
    """Fast scores tie choices 0 and 1; exact scores prefer choice 1. Records what was asked."""

    def __init__(self):
        self.exact_calls = 0

    def loglikelihood(self, requests, exact=False):
        if exact:
            self.exact_calls += 1
            return [Loglikelihood(v, False) for v in (-10.0, -9.0, -20.0)]
        return [Loglikelihood(v, False) for v in (-10.0, -10.0 - 1e-7, -20.0)] * (len(requests) // 3)


def test_near_ties_are_rescored_exactly():
    assert near_tie(torch.tensor([-10.0, -10.0000001]).numpy()) and not near_tie(torch.tensor([-10.0, -9.0]).numpy())
    doc = {"query": "Q:", "choices": ["aa", "bb", "cc"], "gold": 1}
    task = MultipleChoiceTask(name="tie", description="", load=lambda: [doc, doc])
    model = _TiedModel()
    result = task.evaluate(model)
    assert model.exact_calls == 2
    assert [s["pred"] for s in result.samples] == [1, 1] and result.metric("acc").value == 1.0
    assert all(s["rescored"] for s in result.samples) and "2 near-tied" in result.notes[0]
    assert task.requests_for(doc, "Q:")[0] == LoglikelihoodRequest("Q:", " aa")
