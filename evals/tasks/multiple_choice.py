"""Multiple choice scored by log-likelihood, as lm-evaluation-harness's `output_type: multiple_choice`.

The prompt of an example is lm-eval's plain-text few-shot context:
    description + (query + " " + answer + "\\n\\n") per few-shot example + query
and each choice is scored as the continuation " " + choice. acc / acc_norm come from the
`multiple_choice` metric module (np.argmax, character-length normalisation).

Near ties. The fast scorer shares the context pass between choices and pads contexts into batches,
so its float32 log-likelihoods differ from lm-eval's one-pass-per-choice numbers in the last bits
(about 1e-6 relative). A ranking decided by less than `NEAR_TIE` is therefore re-scored with lm-eval's
own computation (`score_pairs_exact`) before the choice is made, so choices cannot flip; the count
of re-scored examples is reported in the task's notes and samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..metrics import load_metric
from ..requests import LoglikelihoodRequest
from .base import Docs, MetricValue, Progress, Task, TaskResult, chunked, example_ids, per_example_metrics
from .fewshot import FewshotSampler

NEAR_TIE = 1e-4  # relative gap between the best two (normalised) log-likelihoods that triggers re-scoring
DOCS_PER_STEP = 64  # examples scored per call (progress is reported between calls)


def near_tie(values: np.ndarray, tolerance: float = NEAR_TIE) -> bool:
    """True when the best two values are closer than `tolerance` relative to the best (floor: absolute)."""
    if len(values) < 2:
        return False
    top2 = np.sort(values)[-2:]
    return bool(top2[1] - top2[0] <= tolerance * max(1.0, abs(top2[1])))


@dataclass
class MultipleChoiceTask(Task):
    """Docs are {"query": str, "choices": [str], "gold": int} (loaders convert datasets to this)."""

    kind: str = "multiple_choice"
    metric_names: tuple[str, ...] = ("acc", "acc_norm")
    fewshot: Docs | None = None  # the few-shot pool, in the same doc schema
    num_fewshot: int = 0
    sampler: str = "random"  # "random" (lm-eval's default, seed 1234) or "first_n"
    fewshot_same_split: bool = False
    prompt_prefix: str = ""  # lm-eval's `description`, e.g. MMLU's subject line
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"

    def context(self, doc: dict, sampler: FewshotSampler | None) -> str:
        """The prompt before the choices. A doc may bring its own "shots" and "prefix" (MMLU: per subject)."""
        if "shots" in doc:
            shots = doc["shots"][: self.num_fewshot]
        else:
            shots = sampler.sample(self.num_fewshot, doc) if sampler and self.num_fewshot else []
        examples = "".join(
            s["query"] + self.target_delimiter + s["choices"][s["gold"]] + self.fewshot_delimiter for s in shots
        )
        return doc.get("prefix", self.prompt_prefix) + examples + doc["query"]

    def requests_for(self, doc: dict, context: str) -> list[LoglikelihoodRequest]:
        """One request per choice."""
        return [LoglikelihoodRequest(context, self.target_delimiter + choice) for choice in doc["choices"]]

    def build_requests(self, docs: list[dict]) -> list[list[LoglikelihoodRequest]]:
        """Requests of every doc, with few-shot examples drawn in doc order (as lm-eval does)."""
        sampler = None
        if self.num_fewshot and not all("shots" in doc for doc in docs):
            if self.fewshot is None:
                raise ValueError(f"task {self.name} asks for {self.num_fewshot} shots but has no few-shot pool")
            sampler = FewshotSampler(self.fewshot(), self.sampler, same_split=self.fewshot_same_split)
        return [self.requests_for(doc, self.context(doc, sampler)) for doc in docs]

    def evaluate(self, model, limit: int | None = None, progress: Progress | None = None) -> TaskResult:
        """Score every choice, re-score near ties exactly, and compute acc / acc_norm."""
        docs = self.docs(limit)
        per_doc = self.build_requests(docs)
        lls: list[list[float]] = []
        for step in chunked(per_doc, DOCS_PER_STEP):
            flat = [r for requests in step for r in requests]
            answers = iter(model.loglikelihood(flat))
            lls += [[next(answers).logprob for _ in requests] for requests in step]
            if progress:
                progress(len(lls), len(docs))
        rescored = self._rescore_near_ties(model, docs, per_doc, lls)
        computed = load_metric("multiple_choice").compute(
            loglikelihoods=lls,
            choice_lengths=[[len(c) for c in doc["choices"]] for doc in docs],
            references=[doc["gold"] for doc in docs],
        )
        ids = example_ids(docs)
        samples = [
            {
                "doc_id": i,
                "example_id": ids[i],
                "prompt": doc["query"],
                "choices": doc["choices"],
                "gold": doc["gold"],
                "loglikelihoods": lls[i],
                "pred": computed["predictions"][i],
                "pred_norm": computed["predictions_norm"][i],
                "acc": computed["acc_scores"][i],
                "acc_norm": computed["acc_norm_scores"][i],
                "rescored": i in rescored,
            }
            for i, doc in enumerate(docs)
        ]
        notes = [f"{len(rescored)} near-tied examples re-scored exactly"] if rescored else []
        metrics: list[MetricValue] = per_example_metrics(list(self.metric_names), computed, len(docs))
        return TaskResult(metrics, samples, notes)

    def _rescore_near_ties(self, model, docs, per_doc, lls) -> set[int]:
        """Replace the log-likelihoods of examples whose ranking is too close to call by exact ones."""
        rescored = set()
        for i, doc in enumerate(docs):
            values = np.asarray(lls[i])
            lengths = np.asarray([len(c) for c in doc["choices"]], dtype=np.float64)
            if near_tie(values) or near_tie(values / lengths):
                lls[i] = [a.logprob for a in model.loglikelihood(per_doc[i], exact=True)]
                rescored.add(i)
        return rescored
