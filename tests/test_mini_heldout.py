"""No evaluation prompt of the built-in suites can occur in mini's training data.

Text: every family's item space is enumerated, split exactly into training and held-out items, and
everything the trainer can ask (its whole fact list) is compared with the suites' questions.
Media: the suites' pictures and clips are held-out renderings (their keys), and their pixel and PCM
hashes are absent from the hashes of everything mini's training run drew (committed beside the weights).
"""

from __future__ import annotations

import hashlib
import json
import random
import string
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from g3n_core.builtin.mini import MINI_DIR, build_mini_processor
from g3n_core.builtin.mini_data import families as fam
from g3n_core.builtin.mini_data.examples import TextExamples
from g3n_core.builtin.mini_data.render import draw_params, speech_params

DATA = Path(__file__).resolve().parents[1] / "evals" / "data"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def test_item_spaces_are_complete_and_split_exactly():
    items = fam.text_items()
    by_family: dict[str, set[str]] = {}
    for item in items:
        by_family.setdefault(item.family, set()).add(item.key)
    assert len(by_family["plus"]) == 21 * 21 and len(by_family["minus"]) == 21 * 22 // 2
    assert len(by_family["larger"]) == 100 * 99
    assert by_family["after_letter"] == {f"after:{c}" for c in string.ascii_uppercase[:-1]}
    assert by_family["after_number"] == {f"after:{n}" for n in range(99)}
    assert len(fam.world()["colour_facts"]) >= 30 and all(2 <= len(w) <= 9 for w in fam.world()["words"])
    training = {i.key for i in fam.training_items()}
    evaluation = {i.key for i in fam.evaluation_items()}
    colour = by_family["colour"]
    assert training | evaluation == {i.key for i in items}
    assert training & evaluation == colour  # only the colour world's facts (knowledge) are shared
    for family, keys in by_family.items():
        if family != "colour":
            assert 0 < len(keys - training) < len(keys), family  # something held out, something to learn


def test_no_evaluation_question_is_trainable():
    trainable = {question for question, _, _ in TextExamples(build_mini_processor()).facts}
    colour_questions = {i.question for i in fam.text_items() if i.family == "colour"}
    held_out = {i.question: i for i in fam.evaluation_items()}
    for name in ("text_mc.jsonl", "short_answer.jsonl"):
        rows = _rows(name)
        assert len(rows) >= 100
        for row in rows:
            item = held_out[row["question"]]  # every question is a held-out (or colour) item...
            answer = row["choices"][row["answer"]] if "choices" in row else row["answers"][0]
            assert answer == item.answer
            if row["question"] not in colour_questions:
                assert row["question"] not in trainable, row  # ...that training can never ask
    for name in ("text_mc_fewshot.jsonl", "short_answer_fewshot.jsonl"):
        assert all(row["question"] in trainable for row in _rows(name))  # the shots are training items


def test_samplers_never_cross_the_split():
    rnd = random.Random(0)
    for seed in (fam.TRAINING_SEEDS.start, fam.TRAINING_SEEDS.stop - 1):
        rnd.seed(seed)
        for kind in fam.IMAGE_QUESTIONS:
            assert not any(fam.held_out(draw_params(kind, rnd, "train").key) for _ in range(200))
        assert not any(fam.held_out(speech_params("one two", rnd, "train").key) for _ in range(200))
    assert all(fam.held_out(draw_params("shape", rnd, "eval").key) for _ in range(50))
    assert fam.EVAL_SEED not in fam.TRAINING_SEEDS


def test_evaluation_media_keys_are_held_out():
    from eval_suites import image_qa, speech

    assert all(fam.held_out(params.key) for _, params, _ in image_qa.eval_params())
    asr = speech.asr_items()
    assert all(fam.held_out(p.key) for p, _ in asr) and all(fam.held_out(p.key) for p, _, _ in speech.translation_items())
    assert all(fam.digits_held_out(t.replace(" ", "")) for _, t in asr)
    assert [r["transcript"] for r in _rows("speech_asr.jsonl")] == [t for _, t in asr]


@pytest.mark.skipif(not (MINI_DIR / "media_hashes.json").is_file(), reason="no trained mini committed")
def test_evaluation_media_bytes_never_drawn_in_training():
    trained = json.loads((MINI_DIR / "media_hashes.json").read_text())
    images = {_digest(np.asarray(Image.open(DATA / r["image"]).convert("RGB")).tobytes()) for r in _rows("image_qa.jsonl")}
    clips = {_digest(sf.read(DATA / r["audio"], dtype="int16")[0].tobytes()) for r in _rows("speech_asr.jsonl") + _rows("speech_translation.jsonl")}
    assert len(images) == 96 and len(clips) == 78
    assert len(trained["images"]) >= 4000 and len(trained["audio"]) >= 2000
    assert not images & set(trained["images"])
    assert not clips & set(trained["audio"])
