"""Corpus metrics recomputed from per-example sufficient statistics, for resampling examples.

The metric modules record, per example, the statistics whose sums give the corpus value
(`<metric>_stats` in their output): WER and CER `[edits, reference words or characters]`,
BLEU and chrF sacrebleu's segment statistics. `CORPUS_SCORES[name](summed)` turns statistics
summed over any subset of examples (leading axes: many subsets at once) into the metric, exactly
as the module computes it over the whole corpus (tests/test_evals_stats.py checks that), so
evals.stats can bootstrap a corpus metric without re-running the model or the metric module.
This is how sacrebleu's own paired tests (`sacrebleu.significance`) resample BLEU.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sacrebleu.metrics import BLEU, CHRF


def edit_rate(summed: np.ndarray) -> np.ndarray:
    """Total edits over total reference length (jiwer's corpus WER and CER)."""
    return summed[..., 0] / summed[..., 1]


def _sacrebleu_score(metric) -> Callable[[np.ndarray], np.ndarray]:
    def score(summed: np.ndarray) -> np.ndarray:
        flat = np.asarray(summed).reshape(-1, summed.shape[-1]).astype(np.int64)
        values = [metric._compute_score_from_stats(row.tolist()).score for row in flat]
        return np.asarray(values, dtype=np.float64).reshape(summed.shape[:-1])

    return score


CORPUS_SCORES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "wer": edit_rate,
    "cer": edit_rate,
    "bleu": _sacrebleu_score(BLEU()),
    "chrf": _sacrebleu_score(CHRF()),
}
