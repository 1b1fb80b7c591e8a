"""Metrics as `evaluate` modules shipped inside the project, so they load offline.

Each folder here is an evaluate metric module (`<name>/<name>.py`) loaded by local path with
`evaluate.load`. `load_metric` also accepts any other name evaluate knows (a hub metric, with the
network up). `mean_stderr` is lm-eval's standard error of a mean of per-example scores. Corpus metrics also
record per-example sufficient statistics (`evals.metrics.corpus`) so comparisons can resample them.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

MODULES = Path(__file__).parent
LOCAL_METRICS = ("multiple_choice", "short_answer", "error_rate", "translation")
BINARY_METRICS = ("acc", "acc_norm", "exact_match")  # per-example scores are 0 or 1: compared with McNemar's test
HUNDRED_SCALE = ("bleu", "chrf")  # reported on 0-100 already; every other metric is a fraction (x100 = points)


@lru_cache(maxsize=None)
def load_metric(name: str):
    """The evaluate module for `name`: a local module of this project, else whatever evaluate.load finds."""
    import evaluate

    local = MODULES / name
    return evaluate.load(str(local) if (local / f"{name}.py").is_file() else name)


def mean_stderr(scores: list[float]) -> float | None:
    """Sample standard deviation over sqrt(n) (lm-eval's `mean_stderr`); None below two examples."""
    n = len(scores)
    if n < 2:
        return None
    mean = sum(scores) / n
    variance = sum((s - mean) ** 2 for s in scores) / (n - 1)
    return math.sqrt(variance / n)
