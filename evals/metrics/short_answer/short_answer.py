"""Short answers: exact match after normalisation and token F1 (the SQuAD definitions).

Normalisation: lower case, drop punctuation, drop the articles a/an/the, collapse white space.
With several references per example, an example scores its best match (as SQuAD does).
"""

import collections
import re
import string

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Exact match after normalisation and token-level F1 between a prediction and its reference answers."
_KWARGS = """
Args:
    predictions: generated answers (strings).
    references: per example, a list of acceptable answers.
Returns:
    exact_match, f1 (means over examples), exact_match_scores, f1_scores (per example).
"""


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall after normalisation."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = collections.Counter(pred) & collections.Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


class ShortAnswer(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Rajpurkar et al. 2016, SQuAD evaluation script v1.1",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
            ),
        )

    def _compute(self, predictions, references):
        em = [max(float(normalize_answer(p) == normalize_answer(r)) for r in refs) for p, refs in zip(predictions, references)]
        f1 = [max(token_f1(p, r) for r in refs) for p, refs in zip(predictions, references)]
        return {
            "exact_match": float(np.mean(em)) if em else float("nan"),
            "f1": float(np.mean(f1)) if f1 else float("nan"),
            "exact_match_scores": em,
            "f1_scores": f1,
        }
