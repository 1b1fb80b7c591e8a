"""Translation quality with sacrebleu: corpus BLEU and chrF (both 0-100), sacrebleu's default settings."""

import datasets
import evaluate
import sacrebleu
from sacrebleu.metrics import BLEU, CHRF

_DESCRIPTION = "Corpus BLEU (13a tokenization) and chrF (character 6-grams, beta 2) from sacrebleu."
_KWARGS = """
Args:
    predictions: translations produced by the model.
    references: per example, a list of reference translations (the same count for every example).
Returns:
    bleu, chrf (corpus level), chrf_scores (sentence chrF per example), bleu_stats, chrf_stats (per
    example: sacrebleu's segment statistics, whose sums give the corpus scores).
"""


class Translation(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Post 2018, A Call for Clarity in Reporting BLEU Scores (sacrebleu)",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
            ),
        )

    def _compute(self, predictions, references):
        streams = [list(stream) for stream in zip(*references)]  # sacrebleu wants one list per reference set
        return {
            "bleu": float(sacrebleu.corpus_bleu(predictions, streams).score),
            "chrf": float(sacrebleu.corpus_chrf(predictions, streams).score),
            "chrf_scores": [float(sacrebleu.sentence_chrf(p, list(r)).score) for p, r in zip(predictions, references)],
            # one row per sentence; sacrebleu's own paired tests (sacrebleu.significance) resample these
            "bleu_stats": [list(map(int, row)) for row in BLEU()._extract_corpus_statistics(predictions, streams)],
            "chrf_stats": [list(map(int, row)) for row in CHRF()._extract_corpus_statistics(predictions, streams)],
        }
