"""Standard-benchmark loaders on small local fixtures in each dataset's own schema (never the hub)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from evals.tasks import resolve_tasks
from evals.tasks.generation import media_request
from evals.tasks.fewshot import FewshotSampler
from g3n_core.errors import EvalError

pytestmark = pytest.mark.usefixtures("single_thread")


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _arc(i):
    return {"id": f"q{i}", "question": f"Which thing number {i} is true?", "choices": {"text": [f"first {i}", f"second {i}", f"third {i}", f"fourth {i}"], "label": ["A", "B", "C", "D"]}, "answerKey": "BCDA"[i % 4]}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Local copies of every benchmark in its hub schema; ARC as the hub's parquet files."""
    root = tmp_path_factory.mktemp("benchmarks")
    for config in ("ARC-Easy", "ARC-Challenge"):
        folder = root / "ai2_arc" / config
        folder.mkdir(parents=True)
        pd.DataFrame([_arc(i) for i in range(30)]).to_parquet(folder / "train-00000-of-00001.parquet")
        pd.DataFrame([_arc(100 + i) for i in range(3)]).to_parquet(folder / "test-00000-of-00001.parquet")
    hella = [
        {"ind": i, "activity_label": "Baking cookies", "ctx_a": f"A woman mixes dough {i}.", "ctx_b": "she", "ctx": "", "endings": [f"puts it in the oven [title] now {i}.", "eats  the bowl.", "sings.", "runs away."], "source_id": "x", "split": "val", "split_type": "indomain", "label": str(i % 4)}
        for i in range(12)
    ]
    _jsonl(root / "hellaswag" / "train.jsonl", hella)
    _jsonl(root / "hellaswag" / "validation.jsonl", hella[:3])
    boolq = [{"question": f"is the sky blue {i}", "passage": f"The sky appears blue {i}.", "idx": i, "label": i % 2} for i in range(3)]
    _jsonl(root / "super_glue" / "boolq" / "validation.jsonl", boolq)
    piqa = [{"goal": f"Open a jar {i}", "sol1": "Twist the lid.", "sol2": "Freeze the jar.", "label": 0} for i in range(3)]
    _jsonl(root / "piqa" / "validation.jsonl", piqa)
    mmlu = lambda subject, i: {"question": f" {subject} question {i}? ", "subject": subject, "choices": ["w", "x", "y", "z"], "answer": i % 4}  # noqa: E731
    _jsonl(root / "mmlu" / "all" / "test.jsonl", [mmlu("anatomy", 0), mmlu("anatomy", 1), mmlu("world_religions", 2)])
    _jsonl(root / "mmlu" / "all" / "dev.jsonl", [mmlu(s, i) for s in ("anatomy", "world_religions") for i in range(5)])
    clip = root / "fleurs" / "en_us" / "audio" / "1.wav"
    clip.parent.mkdir(parents=True)
    sf.write(clip, (0.1 * np.sin(np.arange(16_000) / 8)).astype(np.float32), 16_000)
    fleurs = {"id": 1, "num_samples": 16000, "path": "1.wav", "audio": {"path": "en_us/audio/1.wav"}, "transcription": "hello world", "raw_transcription": "Hello world.", "gender": 0, "lang_id": 19, "language": "English", "lang_group_id": 0}
    _jsonl(root / "fleurs" / "en_us" / "test.jsonl", [fleurs])
    return root


def test_every_loader_reads_its_fixture(data_dir):
    tasks = {t.name: t for t in resolve_tasks(["standard"], data_dir)}
    assert set(tasks) == {"arc_easy", "arc_challenge", "hellaswag", "boolq", "piqa", "mmlu", "fleurs_asr"}

    arc = tasks["arc_easy"].docs()
    assert arc[0] == {"query": "Question: Which thing number 100 is true?\nAnswer:", "choices": ["first 100", "second 100", "third 100", "fourth 100"], "gold": 1}
    hella = tasks["hellaswag"].docs()[0]
    assert hella["query"] == "Baking cookies: A woman mixes dough 0. She"
    assert hella["choices"][:2] == ["puts it in the oven. now 0.", "eats the bowl."] and hella["gold"] == 0
    assert tasks["boolq"].docs()[1] == {"query": "The sky appears blue 1.\nQuestion: is the sky blue 1?\nAnswer:", "choices": ["no", "yes"], "gold": 1}
    assert tasks["piqa"].docs()[0]["choices"] == ["Twist the lid.", "Freeze the jar."]
    fleurs = tasks["fleurs_asr"].docs()[0]
    assert fleurs["transcript"] == "hello world" and str(fleurs["audio"]).endswith("en_us/audio/1.wav")


def test_shots_and_prompts_follow_the_model_card(data_dir):
    tasks = {t.name: t for t in resolve_tasks(["standard"], data_dir)}
    assert {n: tasks[n].num_fewshot for n in tasks} == {"arc_easy": 0, "arc_challenge": 25, "hellaswag": 10, "boolq": 0, "piqa": 0, "mmlu": 5, "fleurs_asr": 0}
    arc_c = tasks["arc_challenge"]
    docs = arc_c.docs()
    context = arc_c.build_requests(docs)[0][0].context
    assert context.count("Question:") == 26 and context.endswith("Question: Which thing number 100 is true?\nAnswer:")

    mmlu = tasks["mmlu"]
    docs = mmlu.docs()
    first = mmlu.build_requests(docs)[0]
    assert first[0].context.startswith("The following are multiple choice questions (with answers) about anatomy.\n\nanatomy question 0?\nA. w")
    assert first[0].context.count("Answer:") == 6  # 5 dev shots of the same subject + the question
    assert [r.continuation for r in first] == [" A", " B", " C", " D"]
    religions = mmlu.build_requests(docs)[2][0].context
    assert "about world religions" in religions and "anatomy" not in religions


def test_random_fewshot_draws_match_lm_eval():
    from lm_eval.api.samplers import ContextSampler

    pool = [{"i": i} for i in range(40)]
    theirs = ContextSampler(pool, rnd=1234)
    ours = FewshotSampler(pool, "random")
    for _ in range(5):
        assert ours.sample(7) == list(theirs.sample(7))
    same = FewshotSampler(pool, "random", same_split=True)
    theirs = ContextSampler(pool, rnd=1234)
    for doc in pool[:5]:
        assert same.sample(3, doc) == list(theirs.sample(3, eval_doc=doc))


def test_missing_local_split_is_a_typed_error(tmp_path):
    task = resolve_tasks(["boolq"], tmp_path)[0]
    with pytest.raises(EvalError, match="no validation files"):
        task.docs()


def test_loaded_benchmarks_run_on_tiny(data_dir, tiny):
    from evals import EvalModel

    model = EvalModel(tiny)
    tasks = {t.name: t for t in resolve_tasks(["arc_challenge", "fleurs_asr"], data_dir)}
    mc = tasks["arc_challenge"].evaluate(model, limit=2)
    assert mc.metric("acc").n == 2 and 0 <= mc.metric("acc").value <= 1
    short = dataclasses.replace(tasks["fleurs_asr"], make_request=media_request("audio", lambda doc: "Transcribe this audio clip.", 4))
    result = short.evaluate(model, limit=1)
    assert result.metric("wer").n == 1 and result.samples[0]["reference"] == "hello world"
