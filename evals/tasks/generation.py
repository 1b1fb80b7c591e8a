"""Tasks answered by generation: short text answers, image questions, speech recognition and translation.

One class covers them all: a task says how a doc (plus its few-shot examples) becomes a
GenerateRequest, what the reference is, and which metric module scores the outputs. Metrics
computed per example (exact match, F1) get a standard error; corpus metrics (WER, CER, BLEU,
chrF) do not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..metrics import load_metric, mean_stderr
from ..requests import GenerateRequest
from .base import MEDIA_KEYS, Docs, MetricValue, Progress, Task, TaskResult, example_ids
from .fewshot import FewshotSampler

MakeRequest = Callable[[dict, list[dict]], GenerateRequest]  # (doc, few-shot docs) -> request


@dataclass
class GenerationTask(Task):
    """Greedy generation scored against references by an evaluate metric module."""

    kind: str = "generation"
    make_request: MakeRequest | None = None
    reference: Callable[[dict], Any] | None = None  # the metric module's reference for a doc
    metric: str = "short_answer"  # evaluate module (evals/metrics/<metric>)
    metric_names: tuple[str, ...] = ("exact_match", "f1")
    corpus_metrics: tuple[str, ...] = ()  # of metric_names, those computed over the corpus (no stderr)
    fewshot: Docs | None = None
    num_fewshot: int = 0
    sampler: str = "first_n"

    def build_requests(self, docs: list[dict]) -> list[GenerateRequest]:
        """One request per doc, few-shot examples drawn in doc order."""
        sampler = FewshotSampler(self.fewshot(), self.sampler) if self.num_fewshot and self.fewshot else None
        return [self.make_request(doc, sampler.sample(self.num_fewshot, doc) if sampler else []) for doc in docs]

    def evaluate(self, model, limit: int | None = None, progress: Progress | None = None) -> TaskResult:
        """Generate for every doc and score the outputs."""
        docs = self.docs(limit)
        requests = self.build_requests(docs)
        predictions: list[str] = []
        for request in requests:
            predictions.append(model.generate_one(request).text.strip())
            if progress:
                progress(len(predictions), len(docs))
        references = [self.reference(doc) for doc in docs]
        computed = load_metric(self.metric).compute(predictions=predictions, references=references)
        metrics = []
        for name in self.metric_names:
            scores = computed.get(f"{name}_scores")
            stderr = None if name in self.corpus_metrics or scores is None else mean_stderr(scores)
            metrics.append(MetricValue(name, float(computed[name]), len(docs), stderr))
        ids = example_ids(docs)
        samples = [
            {"doc_id": i, "example_id": ids[i], **shown(request), "prediction": p, "reference": r}
            | {name: computed[f"{name}_scores"][i] for name in self.metric_names if f"{name}_scores" in computed}
            | {f"{name}_stats": computed[f"{name}_stats"][i] for name in self.corpus_metrics if f"{name}_stats" in computed}
            for i, (request, p, r) in enumerate(zip(requests, predictions, references))
        ]
        return TaskResult(metrics, samples)


def shown(request: GenerateRequest) -> dict[str, Any]:
    """What a person needs to see of a request: its question (without few-shot examples) and its media file, if any."""
    if isinstance(request.prompt, str):
        return {"prompt": request.prompt.rsplit("\n\n", 1)[-1]}  # few-shot blocks are separated by blank lines
    content = request.prompt[-1]["content"]
    if isinstance(content, str):
        return {"prompt": content}
    text = " ".join(part["text"] for part in content if part.get("type") == "text")
    media = {part["type"]: part[part["type"]] for part in content if part.get("type") in MEDIA_KEYS and isinstance(part.get(part["type"]), str)}
    return {"prompt": text, "media": media}


# -- request builders shared by the built-in suites and the standard benchmarks -----------------


def qa_prompt(question: str) -> str:
    """The completion-style short-answer format."""
    return f"Question: {question}\nAnswer:"


def short_answer_request(max_new_tokens: int = 16) -> MakeRequest:
    """Completion-style few-shot QA: 'Question: ...\\nAnswer: ...' blocks, stop at the end of the line."""

    def make(doc: dict, shots: list[dict]) -> GenerateRequest:
        examples = "".join(f"{qa_prompt(s['question'])} {s['answers'][0]}\n\n" for s in shots)
        return GenerateRequest(examples + qa_prompt(doc["question"]), until=("\n",), max_new_tokens=max_new_tokens)

    return make


def media_request(kind: str, instruction: Callable[[dict], str], max_new_tokens: int, long_audio: str = "truncate") -> MakeRequest:
    """A chat turn with one image, audio clip or video (`doc[kind]`: path or array) and an instruction;
    `long_audio` says what happens to clips over 30 s (g3n_core.long_audio)."""

    def make(doc: dict, shots: list[dict]) -> GenerateRequest:
        content = [{"type": kind, kind: doc[kind]}, {"type": "text", "text": instruction(doc)}]
        return GenerateRequest([{"role": "user", "content": content}], until=(), max_new_tokens=max_new_tokens, long_audio=long_audio)

    return make


def speech_recognition_task(
    name: str, description: str, load: Docs, *, suite: str, licence: str, max_new_tokens: int,
    source: dict | None = None, long_audio: str = "chunk",
) -> GenerationTask:
    """Transcribe `doc["audio"]` (clips over 30 s by windows unless `long_audio="truncate"`); scored by corpus WER
    and CER against `doc["transcript"]`."""
    return GenerationTask(
        name=name,
        kind="speech_recognition",
        suite=suite,
        description=description,
        load=load,
        make_request=media_request("audio", lambda doc: "Transcribe this audio clip.", max_new_tokens, long_audio),
        reference=lambda doc: doc["transcript"],
        metric="error_rate",
        metric_names=("wer", "cer"),
        corpus_metrics=("wer", "cer"),
        towers=("audio",),
        licence=licence,
        source=source or {},
    )
