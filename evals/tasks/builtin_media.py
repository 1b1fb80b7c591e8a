"""Built-in suites with long or combined media (evals/data, CC0): long speech and videos with sound.

The long-speech suite scores the same speech three ways, side by side: the whole clips answered
by windows (`chunk`), the whole clips cut to their first 30 s (`truncate`), and the clips cut at
their sentence boundaries into short clips (the reference the windows should match). The video
suite asks of each clip the ball's colour (frames) and the spoken number (its sound).
"""

from __future__ import annotations

from g3n_core.media import SAMPLE_RATE, MediaPolicy, read_audio

from .builtin import LICENCE, SHORT_ANSWER_TOKENS, read_jsonl
from .generation import GenerationTask, media_request, speech_recognition_task

LONG_SPEECH_TOKENS = 160  # per window: 30 s of speech is about 80 words
SOURCE = "espeak-ng passages of 60-130 s (16 kHz OGG Vorbis)"


LONG_SPEECH_FILES = {"files": ["long_speech.jsonl"]}  # the manifest hashes them (and the clips they name)


def long_speech_docs() -> list[dict]:
    """The long clips with their transcripts."""
    return read_jsonl("long_speech.jsonl", media_key="audio")


def sentence_docs() -> list[dict]:
    """The same speech cut at the sentence boundaries: one short clip (16 kHz array) per sentence."""
    docs = []
    for row in long_speech_docs():
        samples = read_audio(row["audio"], MediaPolicy(), max_seconds=row["seconds"] + 1).samples
        for span in row["sentences"]:
            clip = samples[int(span["start"] * SAMPLE_RATE) : int(span["end"] * SAMPLE_RATE)]
            docs.append({"audio": {"array": clip, "sampling_rate": SAMPLE_RATE}, "transcript": span["text"]})
    return docs


def media_tasks() -> list:
    """The long-speech and video tasks: the `media` suite (minutes per variant, so not in `builtin`)."""
    return [
        speech_recognition_task(
            "builtin_long_speech_asr", f"3 {SOURCE}, transcribed by windows of <= 30 s (long_audio=chunk); WER and CER",
            long_speech_docs, suite="media", licence=LICENCE, max_new_tokens=LONG_SPEECH_TOKENS, source=LONG_SPEECH_FILES,
        ),
        speech_recognition_task(
            "builtin_long_speech_asr_truncated", f"the same {SOURCE}, only their first 30 s heard (long_audio=truncate); WER and CER",
            long_speech_docs, suite="media", licence=LICENCE, max_new_tokens=LONG_SPEECH_TOKENS, long_audio="truncate",
            source=LONG_SPEECH_FILES,
        ),
        speech_recognition_task(
            "builtin_long_speech_asr_short", "the same speech cut into its 68 sentences, each transcribed alone; WER and CER",
            sentence_docs, suite="media", licence=LICENCE, max_new_tokens=40, source=LONG_SPEECH_FILES,
        ),
        GenerationTask(
            name="builtin_video_qa",
            kind="video_qa",
            description="8 videos with sound (a coloured ball, a spoken number): the colour and the number; exact match",
            load=lambda: read_jsonl("video_qa.jsonl", media_key="video"),
            make_request=media_request("video", lambda doc: doc["question"], max_new_tokens=SHORT_ANSWER_TOKENS),
            reference=lambda doc: doc["answers"],
            towers=("vision", "audio"),
            licence=LICENCE,
            suite="media",
            source={"files": ["video_qa.jsonl"]},
        ),
    ]
