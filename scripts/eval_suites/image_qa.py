"""builtin_image_qa: held-out renderings of mini's image families, drawn with Pillow (CC0 1.0).

Colours (one filled shape, 8 colours), shapes (circle, square, triangle, star), counts (1..6 dots)
and written words, 24 of each, with random position, size, rotation and font drawn on the
evaluation side of the held-out split (g3n_core.builtin.mini_data.render).
"""

from __future__ import annotations

import random

from g3n_core.builtin.mini_data.families import EVAL_SEED, IMAGE_COLOURS, IMAGE_QUESTIONS, SHAPES
from g3n_core.builtin.mini_data.render import draw, draw_params, world

PER_KIND = 24
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six"]


def _labels(kind: str) -> list[str]:
    """Answers cycled so each category is balanced."""
    space = {
        "colour": list(IMAGE_COLOURS),
        "shape": list(SHAPES),
        "count": [str(n) for n in range(1, 7)],
        "word": [w.lower() for w in world()["image_words"]],
    }[kind]
    return [space[i % len(space)] for i in range(PER_KIND)]


def eval_params():
    """(category, drawing parameters, answers) for every image question, drawn on the evaluation side."""
    rnd = random.Random(f"{EVAL_SEED}-images")
    for kind in IMAGE_QUESTIONS:
        for label in _labels(kind):
            params = draw_params(kind, rnd, "eval")
            while params.label != label:
                params = draw_params(kind, rnd, "eval")
            yield kind, params, ([label, NUMBER_WORDS[int(label)]] if kind == "count" else [label])


def all_items():
    """(category, image, question, answers) for every image question."""
    for kind, params, answers in eval_params():
        yield kind, draw(params), IMAGE_QUESTIONS[kind], answers
