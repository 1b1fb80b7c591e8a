"""builtin_short_answer: held-out instances of mini's text families, answered in a few characters (CC0 1.0).

Drawn like builtin_mc (scripts/eval_suites/text_mc.py) with its own draw; the first answer is the
canonical one. The few-shot pool (3) is the first three of mini's few-shot training items.
"""

from __future__ import annotations

from g3n_core.builtin.mini_data.families import fewshot_items

from .text_mc import COUNTS, draw_items

QUESTIONS = [(item.question, [item.answer]) for item in draw_items(COUNTS, "short-answer")]
FEWSHOT = [(item.question, [item.answer]) for item in fewshot_items()[:3]]
