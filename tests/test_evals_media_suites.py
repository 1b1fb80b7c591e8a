"""The long-speech and video suites: their data, and evals answering long clips by windows through g3n_core's chat path."""

from __future__ import annotations

import av
import pytest
import soundfile as sf

from evals.model import EvalModel
from evals.requests import GenerateRequest
from evals.tasks import resolve_tasks
from evals.tasks.builtin_media import long_speech_docs, sentence_docs


def test_long_speech_suite_is_60_to_180_s_clips_with_their_sentences():
    docs = long_speech_docs()
    assert len(docs) == 3
    for doc in docs:
        seconds = sf.info(doc["audio"]).duration
        assert 60 <= seconds <= 180 and seconds == pytest.approx(doc["seconds"], abs=0.1)
        assert " ".join(s["text"] for s in doc["sentences"]) == doc["transcript"]
        ends = [(s["start"], s["end"]) for s in doc["sentences"]]
        assert all(a < b <= c for (a, b), (c, _) in zip(ends, ends[1:])) and ends[-1][1] <= seconds
    short = sentence_docs()
    assert len(short) == sum(len(d["sentences"]) for d in docs) == 68
    assert all(0.5 < d["audio"]["array"].size / 16_000 < 8 for d in short)


def test_video_suite_has_frames_and_sound_and_two_questions_per_clip():
    (task,) = resolve_tasks(["builtin_video_qa"])
    docs = task.docs()
    assert len(docs) == 16 and {d["category"] for d in docs} == {"colour", "speech"}
    with av.open(docs[0]["video"]) as container:
        assert container.streams.video[0].codec_context.name == "h264" and container.streams.audio


def test_evals_answer_a_long_clip_by_windows_and_truncate_when_asked(tiny):
    model = EvalModel(tiny)
    clip = long_speech_docs()[0]["audio"]
    prompt = [{"role": "user", "content": [{"type": "audio", "audio": clip}, {"type": "text", "text": "Transcribe this audio clip."}]}]
    chunked = model.generate_one(GenerateRequest(prompt, max_new_tokens=2, long_audio="chunk"))
    assert chunked.extras["audio_windows"] == 3 and chunked.new_tokens >= 3
    truncated = model.generate_one(GenerateRequest(prompt, max_new_tokens=2))
    assert "audio_windows" not in truncated.extras and truncated.new_tokens <= 2


def test_video_task_runs_on_tiny(tiny):
    (task,) = resolve_tasks(["builtin_video_qa"])
    result = task.evaluate(EvalModel(tiny), limit=2)
    assert {m.name for m in result.metrics} == {"exact_match", "f1"} and result.metric("exact_match").n == 2


@pytest.mark.parametrize("name", ["builtin_short_answer", "builtin_image_qa", "builtin_speech_asr", "builtin_speech_translation", "builtin_video_qa"])
def test_every_answer_fits_the_token_budget_of_a_character_vocabulary(name):
    """mini spells one character per token: an answer longer than max_new_tokens could never be matched."""
    (task,) = resolve_tasks([name])
    shots = task.fewshot()[: task.num_fewshot] if task.fewshot else []
    for doc in task.load():
        reference = task.reference(doc)
        longest = max(len(r) for r in ([reference] if isinstance(reference, str) else reference))
        assert task.make_request(doc, shots).max_new_tokens >= longest, (name, reference)
