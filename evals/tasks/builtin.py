"""The built-in offline suites (evals/data): text multiple choice, short answers, image QA, speech.

Docs are read from the committed JSONL files; media paths are resolved against the data folder.
See evals/data/README.md for what each set holds and its licence (CC0 1.0).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from .generation import GenerationTask, media_request, short_answer_request, speech_recognition_task
from .multiple_choice import MultipleChoiceTask

DATA = Path(__file__).resolve().parent.parent / "data"
LICENCE = "CC0 1.0, written for this project (evals/data/README.md)"
# Room for the longest one-word answer ("triangle", 8 letters) in a character vocabulary such as
# mini's, where every letter is a token; a model that stops (end of turn, newline) pays nothing for it.
SHORT_ANSWER_TOKENS = 16


@lru_cache(maxsize=None)
def _read(name: str) -> tuple[dict, ...]:
    with open(DATA / name, encoding="utf-8") as file:
        return tuple(json.loads(line) for line in file if line.strip())


def read_jsonl(name: str, media_key: str | None = None) -> list[dict]:
    """Rows of evals/data/<name>, with the media field made an absolute path."""
    rows = [dict(row) for row in _read(name)]
    if media_key:
        for row in rows:
            row[media_key] = str(DATA / row[media_key])
    return rows


def mc_doc(row: dict) -> dict:
    """A text_mc row as a multiple-choice doc (the ARC prompt format)."""
    return {"query": f"Question: {row['question']}\nAnswer:", "choices": row["choices"], "gold": row["answer"]}


def builtin_tasks() -> list:
    """Every built-in task."""
    from .builtin_media import media_tasks  # long speech, videos with sound

    return [
        MultipleChoiceTask(
            name="builtin_mc",
            description="100 held-out arithmetic, comparison, successor, word-length and colour questions, 4 choices, 3-shot; acc and acc_norm by log-likelihood",
            load=lambda: [mc_doc(r) for r in read_jsonl("text_mc.jsonl")],
            fewshot=lambda: [mc_doc(r) for r in read_jsonl("text_mc_fewshot.jsonl")],
            num_fewshot=3,
            sampler="first_n",
            licence=LICENCE,
            source={"files": ["text_mc.jsonl", "text_mc_fewshot.jsonl"]},
        ),
        GenerationTask(
            name="builtin_short_answer",
            description="100 held-out questions of the same families, 3-shot completion, stop at newline; exact match and token F1",
            load=lambda: read_jsonl("short_answer.jsonl"),
            fewshot=lambda: read_jsonl("short_answer_fewshot.jsonl"),
            num_fewshot=3,
            make_request=short_answer_request(max_new_tokens=SHORT_ANSWER_TOKENS),
            reference=lambda doc: doc["answers"],
            licence=LICENCE,
            source={"files": ["short_answer.jsonl", "short_answer_fewshot.jsonl"]},
        ),
        GenerationTask(
            name="builtin_image_qa",
            kind="image_qa",
            description="96 Pillow-drawn images (colours, shapes, counts of 1-6 dots, words); exact match after normalisation",
            load=lambda: read_jsonl("image_qa.jsonl", media_key="image"),
            make_request=media_request("image", lambda doc: doc["question"], max_new_tokens=SHORT_ANSWER_TOKENS),
            reference=lambda doc: doc["answers"],
            towers=("vision",),
            licence=LICENCE,
            source={"files": ["image_qa.jsonl"]},
        ),
        speech_recognition_task(
            "builtin_speech_asr",
            "40 espeak-ng clips of 1-5 spoken digits (16 kHz); word and character error rate",
            lambda: read_jsonl("speech_asr.jsonl", media_key="audio"),
            suite="builtin",
            licence=LICENCE,
            max_new_tokens=24,
            source={"files": ["speech_asr.jsonl"]},
        ),
        GenerationTask(
            name="builtin_speech_translation",
            kind="speech_translation",
            description="38 espeak-ng clips of an English colour or number word, translated to French; BLEU and chrF",
            load=lambda: read_jsonl("speech_translation.jsonl", media_key="audio"),
            make_request=media_request("audio", lambda doc: f"Translate this audio clip into {doc['language']}.", max_new_tokens=24),
            reference=lambda doc: [doc["translation"]],
            metric="translation",
            metric_names=("bleu", "chrf"),
            corpus_metrics=("bleu", "chrf"),
            towers=("audio",),
            licence=LICENCE,
            source={"files": ["speech_translation.jsonl"]},
        ),
        *media_tasks(),
    ]
