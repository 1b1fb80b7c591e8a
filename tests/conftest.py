"""Shared fixtures: an offline environment, the tiny and mini models loaded once, and media files made on the fly."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Before anything imports huggingface_hub: tests never touch the network, and generated
# checkpoints go to a private cache so a clean checkout proves it can build them.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("G3N_CACHE", tempfile.mkdtemp(prefix="g3n-test-cache-"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402


@pytest.fixture(scope="session")
def tiny():
    """The tiny model with all towers, loaded once for the session."""
    from g3n_core import Variant, load_model

    return load_model(Variant())


@pytest.fixture(scope="session")
def mini():
    """The built-in mini (trained, committed weights) with all towers in float32, loaded once for the session."""
    from g3n_core import Variant, load_model

    return load_model(Variant(model="mini"))


def _speech(text: str) -> np.ndarray:
    from app.examples import speech_samples

    return speech_samples(text)


def _long_speech(sentences: int = 17) -> np.ndarray:
    """Numbered sentences with espeak-ng's pauses between them: about 75 s of 16 kHz speech."""
    return _speech(" ".join(f"Sentence {i + 1}: the red fox runs across the field." for i in range(sentences)))


def _write_video(path: Path, frames: int = 12, size: int = 64, sound: np.ndarray | None = None) -> Path:
    from app.examples import write_video

    images = []
    for i in range(frames):  # an orange bar filling the frame from the left
        image = np.zeros((size, size, 3), np.uint8)
        image[:, : (i + 1) * size // frames] = (255, 80, 0)
        images.append(Image.fromarray(image))
    return write_video(path, images, fps=6, sound=sound)


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    """Valid and broken media files, keyed by what they are."""
    root = tmp_path_factory.mktemp("media")
    files: dict[str, Path] = {}

    image = Image.new("RGB", (96, 64), "white")
    ImageDraw.Draw(image).ellipse((20, 10, 60, 50), fill="red")
    files["image"] = root / "circle.png"
    image.save(files["image"])
    files["image2"] = root / "square.jpg"
    Image.new("RGB", (80, 80), "blue").save(files["image2"])

    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16_000 * 2) / 16_000)).astype(np.float32)
    files["audio"] = root / "tone.wav"
    sf.write(files["audio"], tone, 16_000)
    files["audio_44k_stereo"] = root / "stereo.flac"
    sf.write(files["audio_44k_stereo"], np.stack([tone[:44_100], tone[:44_100]], axis=1), 44_100)
    files["long_audio"] = root / "long.wav"
    sf.write(files["long_audio"], np.tile(tone, 18), 16_000)  # 36 s

    files["video"] = _write_video(root / "clip.mp4")
    files["video_with_speech"] = _write_video(root / "clip_with_speech.mp4", sound=_speech("The ball is orange. The number is seven."))
    files["long_speech"] = root / "long_speech.wav"  # about 75 s of sentences with pauses between them
    sf.write(files["long_speech"], _long_speech(), 16_000)

    files["empty_image"] = root / "empty.png"
    files["empty_image"].write_bytes(b"")
    png = files["image"].read_bytes()
    files["truncated_image"] = root / "truncated.png"
    files["truncated_image"].write_bytes(png[: len(png) // 2])
    files["garbage_image"] = root / "garbage.jpg"
    files["garbage_image"].write_bytes(b"this is not a jpeg at all" * 20)
    files["text_file"] = root / "notes.txt"
    files["text_file"].write_text("plain text, not media")
    wav = files["audio"].read_bytes()
    files["truncated_audio"] = root / "truncated.wav"
    files["truncated_audio"].write_bytes(wav[:30])
    files["garbage_audio"] = root / "garbage.mp3"
    files["garbage_audio"].write_bytes(b"\x00\x01 definitely not audio " * 50)
    files["empty_audio"] = root / "empty.wav"
    files["empty_audio"].write_bytes(b"")
    mp4 = files["video"].read_bytes()
    files["truncated_video"] = root / "truncated.mp4"
    files["truncated_video"].write_bytes(mp4[:200])
    files["empty_video"] = root / "empty.mp4"
    files["empty_video"].write_bytes(b"")
    return files


@pytest.fixture(scope="module")
def single_thread():
    """One torch CPU thread for a module: tiny's small matmuls gain nothing from two threads, and on a
    busy machine two OpenMP threads contend badly. Restores the previous count afterwards."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_server():
    """`python -m g3n_core serve --model tiny` on a free port (2 MB body limit); yields {"url": .../v1, "log": lines}."""
    import subprocess
    import sys
    import threading
    import time

    import httpx
    from app_fixtures import free_port

    port = free_port()
    command = [sys.executable, "-m", "g3n_core", "serve", "--model", "tiny", "--host", "127.0.0.1", "--port", str(port), "--max-body-bytes", str(2 * 2**20)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny gains nothing from two threads; on a busy machine they stall
    proc = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 240
    while True:
        assert proc.poll() is None and time.time() < deadline, "the server did not start:\n" + "".join(lines)
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    yield {"url": url, "log": lines, "process": proc}
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def bf16_cpu(monkeypatch):
    """Pretend to run on an AVX-512 BF16 CPU, so that a Variant with prepack=true (bfloat16 kernels) builds on an AVX2-only one too.

    For tests of plumbing that such a Variant passes through; what each CPU kind accepts and refuses is tests/test_hardware.py's."""
    from cpu_kinds import XEON

    from g3n_core import hardware

    monkeypatch.setattr(hardware, "cpu_info", lambda: XEON)
