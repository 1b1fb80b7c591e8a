"""Speech recognition error rates with jiwer: word error rate and character error rate over the corpus.

Both are corpus-level (total edits / total reference words or characters), as Hugging Face's wer
and cer metrics compute them. Text is compared after lower-casing, dropping punctuation and
collapsing white space, so that "Hello, world." and "hello world" match.
"""

import re

import datasets
import evaluate
import jiwer

_DESCRIPTION = "Corpus word and character error rates (jiwer) after light normalisation."
_KWARGS = """
Args:
    predictions: transcripts produced by the model.
    references: reference transcripts.
Returns:
    wer, cer (corpus level), wer_scores, cer_scores (per example), wer_stats, cer_stats (per example
    [edits, reference words or characters]: their sums give the corpus rates).
"""


def edit_statistics(measures) -> list[int]:
    """[substitutions + deletions + insertions, reference length] of one jiwer alignment."""
    return [measures.substitutions + measures.deletions + measures.insertions, measures.substitutions + measures.deletions + measures.hits]


def normalize_transcript(text: str) -> str:
    """Lower case, punctuation removed (apostrophes kept), single spaces."""
    text = re.sub(r"[^\w\s']", " ", text.lower())
    return " ".join(text.split())


class ErrorRate(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="jiwer (Morris et al. 2004 measures)",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references):
        refs = [normalize_transcript(r) for r in references]
        # jiwer rejects empty hypotheses' transformations only for references; an empty prediction is all deletions.
        hyps = [normalize_transcript(p) for p in predictions]
        return {
            "wer": float(jiwer.wer(refs, hyps)),
            "cer": float(jiwer.cer(refs, hyps)),
            "wer_scores": [float(jiwer.wer(r, h)) for r, h in zip(refs, hyps)],
            "cer_scores": [float(jiwer.cer(r, h)) for r, h in zip(refs, hyps)],
            "wer_stats": [edit_statistics(jiwer.process_words(r, h)) for r, h in zip(refs, hyps)],
            "cer_stats": [edit_statistics(jiwer.process_characters(r, h)) for r, h in zip(refs, hyps)],
        }
