"""Audio beyond 30 s: window boundaries, stitching on known transcripts, the windowed flow (on fake streams and on tiny)."""

from __future__ import annotations

import numpy as np
import pytest

from g3n_core import ChatReply, GenerationSettings, MediaPolicy, chat, stream_chat
from g3n_core.errors import SettingsError
from g3n_core.long_audio import WindowedStream, is_transcription_prompt, merge, plan_long_audio, plan_windows, stitch
from g3n_core.long_audio.windows import OVERLAP_SECONDS

RATE = 16_000


def _babble(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like noise: loud throughout, with no quiet stretch."""
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)


def _with_pauses(total: float, pauses: list[tuple[float, float]]) -> np.ndarray:
    samples = _babble(total)
    for start, end in pauses:
        samples[int(start * RATE) : int(end * RATE)] = 0
    return samples


# -- windows -----------------------------------------------------------------------------------


def _check_cover(windows, total):
    assert windows[0].start == 0 and windows[-1].end == total
    for before, after in zip(windows, windows[1:]):
        assert after.start < before.end  # consecutive windows overlap: nothing falls between them
        assert after.start > before.start
    assert all(w.seconds <= 30.0 for w in windows)


def test_windows_end_in_pauses_and_overlap_only_by_the_pause():
    samples = _with_pauses(70.0, [(26.0, 26.6), (28.0, 28.2), (51.0, 51.5)])
    windows = plan_windows(samples)
    _check_cover(windows, samples.size)
    assert len(windows) == 3
    # The longest pause near the limit wins (26.0-26.6 over the shorter 28.0-28.2).
    assert windows[0].pause_cut and windows[0].end == int(26.6 * RATE) and windows[1].start == int(26.0 * RATE)
    assert windows[1].pause_cut and windows[1].end == int(51.5 * RATE) and windows[2].start == int(51.0 * RATE)
    assert not windows[2].pause_cut


def test_windows_inside_continuous_speech_are_cut_at_30_s_with_overlap():
    samples = _babble(75.0)
    windows = plan_windows(samples)
    _check_cover(windows, samples.size)
    assert [w.pause_cut for w in windows] == [False, False, False]
    assert [w.end - w.start for w in windows[:2]] == [30 * RATE, 30 * RATE]
    assert windows[0].end - windows[1].start == int(OVERLAP_SECONDS * RATE)


def test_short_quiet_stretches_are_not_pauses_and_short_clips_are_one_window():
    samples = _with_pauses(40.0, [(27.0, 27.05)])  # 50 ms: a stop inside a word
    assert not plan_windows(samples)[0].pause_cut
    assert len(plan_windows(_babble(29.0))) == 1


# -- stitching ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right", "pause", "expected"),
    [
        # inside speech: the words both windows heard are kept once
        ("the quick brown fox jumps over", "fox jumps over the lazy dog", False, "the quick brown fox jumps over the lazy dog"),
        # a word cut in two at either edge is dropped in favour of the whole one
        ("we walked to the old mill and th", "ld mill and then we rested", False, "we walked to the old mill and then we rested"),
        ("it went over the la", "ver the lazy dog", False, "it went over the lazy dog"),
        # case and punctuation differ between the two hearings
        ("Then she said: Hello, world", "hello world. How are you?", False, "Then she said: hello world. How are you?"),
        # nothing shared: nothing is lost
        ("one two three", "four five six", False, "one two three four five six"),
        # one shared word far from the seam is a coincidence, not the overlap
        ("the cat sat on the mat today", "we saw a cat yesterday", False, "the cat sat on the mat today we saw a cat yesterday"),
        # across a pause the windows share only silence: one repeated word stays, a repeated phrase goes
        ("He said no.", "No, he did not.", True, "He said no. No, he did not."),
        ("and that is the end of it", "end of it all", True, "and that is the end of it all"),
    ],
)
def test_merge_known_transcripts(left, right, pause, expected):
    assert " ".join(merge(left.split(), right.split(), pause)) == expected


def test_stitch_three_windows():
    texts = ["alpha beta gamma delta", "gamma delta epsilon zeta eta", "zeta eta theta"]
    assert stitch(texts) == "alpha beta gamma delta epsilon zeta eta theta"
    assert stitch([]) == "" and stitch(["only"]) == "only"


def test_transcription_prompts_are_recognised():
    for text in ("Transcribe this.", "Please write down what is said", "Translate this audio clip into French.", "What is said?", "Traduis en anglais"):
        assert is_transcription_prompt(text), text
    for text in ("What is the speaker's mood?", "Summarise this", ""):
        assert not is_transcription_prompt(text), text


# -- the windowed flow on fake streams (what the model says is known) ------------------------------


class _FakeStream:
    """A ChatStream stand-in that 'hears' a window and says its scripted text."""

    def __init__(self, text: str, seconds: float):
        self.text, self.seconds, self.cancelled = text, seconds, False
        self.early_warnings: list[str] = []
        self.reply = None

    def cancel(self):
        self.cancelled = True

    def __iter__(self):
        for word in self.text.split():
            if self.cancelled:
                break
            yield word + " "
        self.reply = ChatReply(self.text, 200, len(self.text.split()), 0.5, 10.0, 1.0, "cancelled" if self.cancelled else "stop",
                               audio_seconds=self.seconds)


def _plan(samples, prompt="Transcribe this.", mode="chunk"):
    messages = [{"role": "user", "content": [{"type": "audio", "audio": {"array": samples, "sampling_rate": RATE}}, {"type": "text", "text": prompt}]}]
    return plan_long_audio(messages, mode, MediaPolicy())[1]


def test_windowed_stream_stitches_streams_append_only_and_sums_the_windows():
    plan = _plan(_babble(75.0))
    scripts = iter(["one two three four five six seven eight nine ten eleven", "nine ten eleven twelve thirteen", "thirteen fourteen"])
    requests = []

    def start(messages, started):
        requests.append(messages)
        return _FakeStream(next(scripts), 30.0)

    stream = WindowedStream(plan, start, 0.0)
    pieces = list(stream)
    reply = stream.reply
    assert "".join(pieces) == reply.text == "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    assert len(pieces) >= 2  # text arrived before the last window finished
    assert reply.audio_windows == 3 and reply.prompt_tokens == 600 and reply.new_tokens == 11 + 5 + 2
    assert reply.audio_seconds == pytest.approx(75.0, abs=0.01) and reply.finish_reason == "stop"
    clips = [m[-1]["content"][0]["audio"]["array"] for m in requests]
    assert [c.size for c in clips] == [w.end - w.start for w in plan.windows]
    assert all(m[-1]["content"][1]["text"] == "Transcribe this." for m in requests)


def test_transcribe_then_answer_asks_the_question_over_the_transcript():
    plan = _plan(_babble(45.0), prompt="How many animals are mentioned?", mode="transcribe_then_answer")
    scripts = iter(["a cat and a dog", "and a dog and a bird", "Three."])
    requests = []

    def start(messages, started):
        requests.append(messages)
        return _FakeStream(next(scripts), 30.0)

    reply = WindowedStream(plan, start, 0.0).result()
    assert reply.text == "Three." and reply.transcript == "a cat and a dog and a bird" and reply.audio_windows == 2
    assert [m[-1]["content"][-1]["text"] for m in requests[:2]] == ["Transcribe this audio clip."] * 2
    answer_turn = requests[2][-1]["content"]
    assert [p["type"] for p in answer_turn] == ["text", "text"] and "a cat and a dog and a bird" in answer_turn[0]["text"]
    assert answer_turn[1]["text"] == "How many animals are mentioned?"


def test_cancel_stops_after_the_window_in_progress():
    plan = _plan(_babble(75.0))
    started = []

    def start(messages, begun):
        started.append(_FakeStream("word " * 20, 30.0))
        return started[-1]

    stream = WindowedStream(plan, start, 0.0)
    for _ in stream:
        stream.cancel()
    assert len(started) == 1 and stream.reply.finish_reason == "cancelled" and stream.reply.audio_windows == 1


def test_plans_only_where_windows_are_asked_for():
    long = _babble(45.0)
    assert _plan(long, prompt="What is the mood?") is None  # chunk: other prompts keep the first 30 s
    assert _plan(long, mode="truncate") is None
    assert _plan(_babble(20.0)) is None
    with pytest.raises(SettingsError, match="long_audio"):
        GenerationSettings(long_audio="split")


def test_decoding_stops_at_the_policy_cap_with_a_warning(tmp_path):
    import soundfile as sf

    sf.write(tmp_path / "long.flac", _babble(100.0), RATE)
    messages = [{"role": "user", "content": [{"type": "audio", "audio": str(tmp_path / "long.flac")}, {"type": "text", "text": "Transcribe"}]}]
    plan = plan_long_audio(messages, "chunk", MediaPolicy(max_audio_seconds=60))[1]
    assert plan.clip.seconds == pytest.approx(60.0) and len(plan.windows) == 3
    assert "100.0 s of audio" in plan.warnings[0] and "only the first 60 s were used" in plan.warnings[0]


# -- on tiny: the real path ----------------------------------------------------------------------


def _audio_turn(path, prompt):
    return [{"role": "user", "content": [{"type": "audio", "audio": str(path)}, {"type": "text", "text": prompt}]}]


SHORT = GenerationSettings(max_new_tokens=3)


def test_long_speech_is_transcribed_in_windows_on_tiny(tiny, media):
    reply = chat(tiny, _audio_turn(media["long_speech"], "Transcribe this."), SHORT)
    assert reply.audio_windows == 3 and reply.audio_seconds == pytest.approx(67.8, abs=1.0)
    assert reply.prompt_tokens >= 3 * tiny.processor.audio_seq_length  # every window had its audio slot
    assert not any("truncated" in w for w in reply.warnings)
    truncated = chat(tiny, _audio_turn(media["long_speech"], "Transcribe this."), GenerationSettings(max_new_tokens=3, long_audio="truncate"))
    assert truncated.audio_windows == 0 and any("truncated to the first 30 s" in w for w in truncated.warnings)
    other = chat(tiny, _audio_turn(media["long_speech"], "Is the speaker happy?"), SHORT)
    assert other.audio_windows == 0 and any("truncated to the first 30 s" in w for w in other.warnings)


def test_transcribe_then_answer_on_tiny_then_the_model_answers_again(tiny, media):
    stream = stream_chat(tiny, _audio_turn(media["long_speech"], "Is the speaker happy?"), GenerationSettings(max_new_tokens=3, long_audio="transcribe_then_answer"))
    reply = stream.result()
    assert reply.audio_windows == 3 and reply.transcript is not None and reply.new_tokens >= 4
    assert chat(tiny, "Still there?", SHORT).new_tokens >= 1
