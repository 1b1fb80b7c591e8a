"""Write the built-in offline evaluation suites into evals/data (run once; the output is committed).

    python scripts/make_eval_suites.py [--out evals/data]

Text questions come from scripts/eval_suites/*.py (written for this project, CC0 1.0). Images are
drawn with Pillow. Speech is synthesised with espeak-ng (apt-get install espeak-ng), resampled
to 16 kHz mono and stored as 16-bit FLAC. Everything is deterministic given the same Pillow and
espeak-ng versions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
from eval_suites import image_qa, short_answer, speech, text_mc  # noqa: E402

SAMPLE_RATE = 16_000


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """One JSON object per line, UTF-8, stable key order."""
    path.write_text("".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows), encoding="utf-8")


def write_text_suites(out: Path) -> None:
    """Multiple-choice and short-answer sets (eval + few-shot pool)."""
    def mc(rows):
        return [{"id": i, "question": q, "choices": c, "answer": a} for i, (q, c, a) in enumerate(rows)]

    def qa(rows):
        return [{"id": i, "question": q, "answers": a} for i, (q, a) in enumerate(rows)]

    write_jsonl(out / "text_mc.jsonl", mc(text_mc.QUESTIONS))
    write_jsonl(out / "text_mc_fewshot.jsonl", mc(text_mc.FEWSHOT))
    write_jsonl(out / "short_answer.jsonl", qa(short_answer.QUESTIONS))
    write_jsonl(out / "short_answer_fewshot.jsonl", qa(short_answer.FEWSHOT))


def write_images(out: Path) -> None:
    """PNG images and image_qa.jsonl."""
    folder = out / "images"
    folder.mkdir(exist_ok=True)
    rows = []
    for i, (category, image, question, answers) in enumerate(image_qa.all_items()):
        name = f"{i:02d}_{category}.png"
        image.save(folder / name, optimize=True)
        rows.append({"id": i, "category": category, "image": f"images/{name}", "question": question, "answers": answers})
    write_jsonl(out / "image_qa.jsonl", rows)


def synthesise(text: str, path: Path) -> float:
    """Speak `text` with espeak-ng, store 16 kHz mono 16-bit FLAC; returns the duration in seconds."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is needed: apt-get install espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
        audio, rate = sf.read(wav, dtype="float32")
    audio = librosa.resample(audio, orig_sr=rate, target_sr=SAMPLE_RATE).astype(np.float32)
    sf.write(path, np.clip(audio, -1, 1), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return len(audio) / SAMPLE_RATE


def write_speech(out: Path) -> None:
    """FLAC clips, speech_asr.jsonl (transcripts) and speech_translation.jsonl (French references)."""
    folder = out / "speech"
    folder.mkdir(exist_ok=True)
    asr, translation = [], []
    for i, sentence in enumerate(speech.SENTENCES):
        name = f"{i:02d}.flac"
        seconds = synthesise(sentence, folder / name)
        asr.append({"id": i, "audio": f"speech/{name}", "transcript": sentence, "seconds": round(seconds, 2)})
        if i < len(speech.FRENCH):
            translation.append({"id": i, "audio": f"speech/{name}", "source": sentence, "language": "French", "translation": speech.FRENCH[i]})
    write_jsonl(out / "speech_asr.jsonl", asr)
    write_jsonl(out / "speech_translation.jsonl", translation)


def main() -> None:
    """Write every suite."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "evals" / "data"))
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_suites(out)
    write_images(out)
    write_speech(out)
    from make_media_suites import write_media_suites  # long speech, videos with sound

    write_media_suites(out)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
