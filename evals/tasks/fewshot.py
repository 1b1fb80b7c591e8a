"""Few-shot examples, drawn the way lm-evaluation-harness 0.4.13 draws them.

`first_n`: the first n examples of the few-shot split (MMLU's dev split, in order).
`random`: lm-eval's default `ContextSampler`: one `random.Random(seed)` per task (seed 1234 by
default), consumed in document order; `rnd.sample(pool, n)`, or `n + 1` with the evaluated example
removed when the few-shot pool is the evaluation split itself. Evaluated in the same order with
the same limit, the prompts match lm-eval's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

LM_EVAL_FEWSHOT_SEED = 1234


@dataclass
class FewshotSampler:
    """Draws few-shot examples for successive evaluation docs."""

    pool: list[dict]
    method: str = "random"  # "random" | "first_n"
    seed: int = LM_EVAL_FEWSHOT_SEED
    same_split: bool = False  # the pool is the evaluation split: never show a doc its own answer

    def __post_init__(self) -> None:
        if self.method not in ("random", "first_n"):
            raise ValueError(f"unknown few-shot sampler {self.method!r}; use 'random' or 'first_n'")
        self._rnd = random.Random(self.seed)

    def sample(self, n: int, doc: dict | None = None) -> list[dict]:
        """The n few-shot examples for `doc` (call once per evaluated doc, in order)."""
        if n == 0:
            return []
        exclude = doc if self.same_split else None
        if self.method == "first_n":
            pool = [d for d in self.pool if d != exclude] if exclude is not None else self.pool
            if n > len(pool):
                raise ValueError(f"{n} few-shot examples asked for, but the pool holds {len(pool)}")
            return pool[:n]
        if exclude is None:
            return self._rnd.sample(self.pool, n)
        picked = [d for d in self._rnd.sample(self.pool, n + 1) if d != exclude][:n]
        if len(picked) < n:
            picked = self._rnd.sample([d for d in self.pool if d != exclude], n)
        return picked
