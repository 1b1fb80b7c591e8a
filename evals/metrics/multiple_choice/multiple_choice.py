"""Multiple-choice accuracy from log-likelihoods, exactly as lm-evaluation-harness 0.4.13 defines it.

acc: the choice with the highest log-likelihood (np.argmax: the first one on a tie) is the gold one.
acc_norm: the same after dividing each log-likelihood by the character length of its choice (the
choice text without the leading delimiter), as lm-eval's `completion_len`.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "acc and acc_norm (length-normalised by characters) of log-likelihood multiple choice, as lm-eval."
_KWARGS = """
Args:
    loglikelihoods: per example, one log-likelihood per choice.
    choice_lengths: per example, the number of characters of each choice.
    references: per example, the index of the gold choice.
Returns:
    acc, acc_norm (means), acc_scores, acc_norm_scores (per example 0/1), predictions, predictions_norm.
"""


class MultipleChoice(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="lm-evaluation-harness (EleutherAI), lm_eval/api/task.py process_results",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {
                    "loglikelihoods": datasets.Sequence(datasets.Value("float64")),
                    "choice_lengths": datasets.Sequence(datasets.Value("int64")),
                    "references": datasets.Value("int64"),
                }
            ),
        )

    def _compute(self, loglikelihoods, choice_lengths, references):
        predictions, predictions_norm = [], []
        for lls, lengths in zip(loglikelihoods, choice_lengths):
            lls = np.asarray(lls, dtype=np.float64)
            predictions.append(int(np.argmax(lls)))
            predictions_norm.append(int(np.argmax(lls / np.asarray(lengths, dtype=np.float64))))
        acc = [float(p == g) for p, g in zip(predictions, references)]
        acc_norm = [float(p == g) for p, g in zip(predictions_norm, references)]
        return {
            "acc": float(np.mean(acc)) if acc else float("nan"),
            "acc_norm": float(np.mean(acc_norm)) if acc_norm else float("nan"),
            "acc_scores": acc,
            "acc_norm_scores": acc_norm,
            "predictions": predictions,
            "predictions_norm": predictions_norm,
        }
