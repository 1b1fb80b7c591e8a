"""The built-in suites with long or combined media: long speech (60-180 s clips) and videos with sound.

Called by scripts/make_eval_suites.py (run that; the output is committed). Speech is espeak-ng's
(en-us), resampled to 16 kHz mono; long clips are stored as OGG Vorbis (a tenth of FLAC's size),
videos as H.264 + AAC MP4 made by the app's own video writer.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
from app.examples import SAMPLE_RATE, speech_samples, write_ball_video  # noqa: E402
from eval_suites import long_speech, video_qa  # noqa: E402
from make_eval_suites import write_jsonl  # noqa: E402

PAUSE_SECONDS = 0.25  # added between sentences, after espeak-ng's own trailing silence


def _need_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is needed: apt-get install espeak-ng")


def write_long_speech(out: Path) -> None:
    """long_speech/NN.ogg and long_speech.jsonl: each passage's transcript and its sentences' spans in seconds."""
    _need_espeak()
    folder = out / "long_speech"
    folder.mkdir(exist_ok=True)
    pause = np.zeros(int(PAUSE_SECONDS * SAMPLE_RATE), np.float32)
    rows = []
    for index, passage in enumerate(long_speech.PASSAGES):
        pieces, spans, position = [], [], 0
        for sentence in re.split(r"(?<=[.!?])\s+", passage.strip()):
            samples = speech_samples(sentence)
            spans.append({"start": round(position / SAMPLE_RATE, 3), "end": round((position + samples.size) / SAMPLE_RATE, 3), "text": sentence})
            pieces += [samples, pause]
            position += samples.size + pause.size
        name = f"long_speech/{index:02d}.ogg"
        sf.write(out / name, np.clip(np.concatenate(pieces), -1, 1), SAMPLE_RATE, format="OGG", subtype="VORBIS")
        rows.append({"id": index, "audio": name, "transcript": passage, "seconds": round(position / SAMPLE_RATE, 2), "sentences": spans})
    write_jsonl(out / "long_speech.jsonl", rows)


def write_video_qa(out: Path) -> None:
    """video/NN.mp4 (a ball of one colour, a spoken number) and video_qa.jsonl (a colour and a number question each)."""
    _need_espeak()
    folder = out / "video"
    folder.mkdir(exist_ok=True)
    rows = []
    for index, (colour, rgb, number) in enumerate(video_qa.CLIPS):
        name = f"video/{index:02d}_{colour}.mp4"
        write_ball_video(out / name, speech=f"The number is {number}.", colour=rgb)
        rows.append({"id": 2 * index, "video": name, "category": "colour", "question": video_qa.COLOUR_QUESTION, "answers": [colour]})
        answers = [number, video_qa.DIGITS[number]]
        rows.append({"id": 2 * index + 1, "video": name, "category": "speech", "question": video_qa.NUMBER_QUESTION, "answers": answers})
    write_jsonl(out / "video_qa.jsonl", rows)


def write_media_suites(out: Path) -> None:
    """Both suites."""
    write_long_speech(out)
    write_video_qa(out)
