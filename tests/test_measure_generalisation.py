"""scripts/measure_mini_generalisation.py: the two sides really are the two sides, and its scoring is what greedy decoding does."""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import measure_mini_generalisation as gap  # noqa: E402

from g3n_core.builtin.mini import build_mini_processor  # noqa: E402
from g3n_core.builtin.configs import MINI_LAYOUT  # noqa: E402
from g3n_core.builtin.mini_data import examples as examples_module  # noqa: E402
from g3n_core.builtin.mini_data import families as fam  # noqa: E402
from g3n_core.builtin.mini_data.examples import TextExamples  # noqa: E402
from g3n_core.builtin.mini_data.render import draw_params  # noqa: E402


@pytest.fixture(scope="module")
def texts() -> TextExamples:
    return TextExamples(build_mini_processor())


def _questions(examples, texts: TextExamples) -> set[str]:
    decoded = {texts.tokenizer.decode(e.ids) for e in examples}
    return {i.question for i in fam.text_items() if any(i.question in d for d in decoded)}


def test_text_sides_are_the_split(texts):
    held = gap.text_examples(texts, "held_out", 6, random.Random(0))
    train = gap.text_examples(texts, "train", 6, random.Random(0))
    held_keys = {i.question for i in fam.text_items() if not i.knowledge and fam.held_out(i.key)}
    asked_held, asked_train = _questions(held, texts), _questions(train, texts)
    assert asked_held and asked_held <= held_keys
    assert not (asked_train - {i.question for i in fam.text_items() if i.knowledge}) & held_keys
    assert {e.family for e in held} == {e.family for e in train} - {"colour/chat", "colour/completion"}


def test_media_sides_are_the_split(texts, monkeypatch):
    drawn = []
    real = examples_module.draw_params

    def spy(kind, rnd, side):
        params = real(kind, rnd, side)
        drawn.append((side, fam.held_out(params.key)))
        return params

    monkeypatch.setattr(examples_module, "draw_params", spy)
    examples, pool = gap.media_examples(texts, "eval", 2, 0)
    assert len(examples) == 2 * len(fam.IMAGE_QUESTIONS) == len(pool.pixels)
    assert drawn and all(side == "eval" and held for side, held in drawn)
    assert draw_params("colour", random.Random(0), "eval")  # the real sampler is untouched


class _Oracle(torch.nn.Module):
    """Teacher forcing's ideal model: the logits at t name token t + 1 (known from the input), or a uniform guess."""

    def __init__(self, vocab: int, right: bool):
        super().__init__()
        self.vocab, self.right = vocab, right

    def forward(self, input_ids, **_):
        logits = torch.zeros(*input_ids.shape, self.vocab)
        if self.right:
            logits[:, :-1].scatter_(2, input_ids[:, 1:, None], 30.0)
        return SimpleNamespace(logits=logits)


def test_scoring_matches_teacher_forced_greedy_decoding(texts):
    examples = gap.text_examples(texts, "held_out", 3, random.Random(1))
    vocab = MINI_LAYOUT.vocab_size
    right = gap.score(_Oracle(vocab, True), examples, None, batch=4)
    wrong = gap.score(_Oracle(vocab, False), examples, None, batch=4)
    assert right.keys() == wrong.keys() == {e.family for e in examples}
    for family in right:
        assert right[family]["exact"] == 1.0 and right[family]["loss"] < 1e-6
        # uniform logits: every token costs log(V); argmax picks id 0 (<pad>), never an answer token
        assert wrong[family]["exact"] == 0.0 and wrong[family]["loss"] == pytest.approx(math.log(vocab), rel=1e-5)
        assert right[family]["n"] == sum(e.family == family for e in examples)
