"""builtin_mc: held-out instances of mini's text families as 4-way multiple choice (CC0 1.0).

Items come from g3n_core.builtin.mini_data.families: only held-out items (and colour-world facts,
which are knowledge) are drawn, with the evaluation seed; the choices are the answer and three
distractors (no choice a prefix of another) in a seeded order. The few-shot pool is training items.
"""

from __future__ import annotations

import random

from g3n_core.builtin.mini_data.families import EVAL_SEED, evaluation_items, fewshot_items

# Questions per family: 100 in all.
COUNTS = {"plus": 16, "minus": 14, "larger": 16, "after_number": 12, "after_letter": 6, "letters": 16, "colour": 20}


def draw_items(counts: dict[str, int], salt: str) -> list:
    """`counts[family]` held-out items per family, drawn with the evaluation seed, in family order."""
    rnd = random.Random(f"{EVAL_SEED}-{salt}")
    chosen = []
    for family, n in counts.items():
        pool = [i for i in evaluation_items() if i.family == family]
        chosen += rnd.sample(pool, n)
    return chosen


def as_choices(item, rnd: random.Random) -> tuple[str, list[str], int]:
    """(question, choices, index of the answer)."""
    choices = [item.answer, *item.distractors[:3]]
    rnd.shuffle(choices)
    return item.question, choices, choices.index(item.answer)


def _rows(items, salt: str) -> list[tuple[str, list[str], int]]:
    rnd = random.Random(f"{EVAL_SEED}-{salt}-order")
    return [as_choices(item, rnd) for item in items]


QUESTIONS = _rows(draw_items(COUNTS, "mc"), "mc")
FEWSHOT = _rows(fewshot_items(), "mc-fewshot")
