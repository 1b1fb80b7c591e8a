"""The chat examples: tiny media files made by this project (no downloads), and the prompts that use them.

The files are committed in app/examples/ (a few KB each) so that Spaces shows them at once (the
video is H.264 with an AAC sound track, which browsers play);
`python -m app.examples` writes them again. Speech comes from espeak-ng when it is installed,
else a tone stands in.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import av
import numpy as np
import soundfile as sf
from PIL import Image, ImageDraw

EXAMPLES_DIR = Path(__file__).parent / "examples"
SAMPLE_RATE = 16_000
SPEECH = "What is the capital of France?"
FILES = {"image": "shapes.png", "audio": "question.ogg", "video": "ball.mp4", "shape": "star.png", "number": "number.wav"}


def draw_shapes(size: int = 160) -> Image.Image:
    """A red circle, a blue square and a yellow triangle on white."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    draw.ellipse((12, 12, 72, 72), fill=(220, 30, 30))
    draw.rectangle((88, 20, 148, 80), fill=(30, 80, 220))
    draw.polygon([(50, 150), (110, 150), (80, 96)], fill=(240, 200, 0))
    return image


def speech_samples(text: str = SPEECH) -> np.ndarray:
    """16 kHz mono speech from espeak-ng, or a 1.5 s two-tone chime when espeak-ng is missing."""
    if shutil.which("espeak-ng"):
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "speech.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True, capture_output=True)
            samples, rate = sf.read(wav, dtype="float32")
        import librosa

        return librosa.resample(samples, orig_sr=rate, target_sr=SAMPLE_RATE).astype(np.float32)
    t = np.arange(int(1.5 * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * np.where(t < 0.75, 660, 880) * t)).astype(np.float32)


def write_video(path: Path, frames: list[Image.Image], fps: int, sound: np.ndarray | None = None) -> Path:
    """Encode same-sized RGB frames (even width and height) as H.264 in MP4 at `fps`: what every browser plays
    (MPEG-4 Part 2, ffmpeg's old default, plays in none). `sound` (16 kHz mono) becomes its AAC audio track."""
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps, options={"profile": "baseline", "crf": "28", "preset": "slow"})
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        audio = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono") if sound is not None else None
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio is not None:
            _write_sound(container, audio, sound)
    return path


def _write_sound(container, stream, sound: np.ndarray) -> None:
    """Encode 16 kHz mono samples into `stream` in frames of the encoder's size."""
    size = stream.codec_context.frame_size or 1024
    for start in range(0, len(sound), size):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(sound[None, start : start + size], np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = SAMPLE_RATE, start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


BALL_SPEECH = "The green ball rolls from left to right."


def write_ball_video(path: Path, frames: int = 8, size: int = 96, speech: str | None = BALL_SPEECH, colour=(20, 160, 60)) -> Path:
    """A ball (green by default) rolling left to right at 4 fps (8 frames, or as many as the speech lasts), saying `speech`."""
    sound = speech_samples(speech) if speech else None
    if sound is not None:
        frames = max(frames, int(np.ceil(len(sound) / SAMPLE_RATE * 4)))
    images = []
    for i in range(frames):
        image = Image.new("RGB", (size, size), (235, 235, 235))
        x = 8 + i * (size - 40) // (frames - 1)
        ImageDraw.Draw(image).ellipse((x, size // 2 - 12, x + 24, size // 2 + 12), fill=colour)
        images.append(image)
    return write_video(path, images, fps=4, sound=sound)


def write_examples(folder: Path = EXAMPLES_DIR) -> dict[str, Path]:
    """Write the example image, audio clip and video into `folder`; returns their paths by kind."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {kind: folder / name for kind, name in FILES.items()}
    draw_shapes().save(paths["image"], optimize=True)
    sf.write(paths["audio"], speech_samples(), SAMPLE_RATE, format="OGG", subtype="VORBIS")
    write_ball_video(paths["video"])
    write_mini_examples(paths["shape"], paths["number"])
    return paths


def write_mini_examples(shape: Path, number: Path) -> None:
    """mini's picture and speech examples: a blue star drawn and '4 2' spoken by its own renderers (lossless WAV)."""
    from g3n_core.builtin.mini_data.render import ImageParams, SpeechParams, draw, speak

    draw(ImageParams("shape", "star", "blue", "star", 70, (128, 128), 0)).save(shape, optimize=True)
    sf.write(number, speak(SpeechParams("four two", "en-us", 150, 50, 80, 100)), SAMPLE_RATE, subtype="PCM_16")


def example_files(folder: Path = EXAMPLES_DIR) -> dict[str, Path]:
    """The example files, written first if any is missing."""
    paths = {kind: folder / name for kind, name in FILES.items()}
    if not all(p.is_file() for p in paths.values()):
        paths = write_examples(folder)
    return paths


def chat_examples(folder: Path = EXAMPLES_DIR) -> list[dict]:
    """Multimodal chat examples ({"text", "files", "display_text"}) built on the example files."""
    files = example_files(folder)
    return [
        {"text": "What is 7 plus 5?", "display_text": "🔢 Text: what is 7 plus 5?"},  # the first three: what mini answers
        {"text": "What colour is the shape?", "files": [str(files["shape"])], "display_text": "🖼️ Image: what colour is the shape?"},
        {"text": "Transcribe this.", "files": [str(files["number"])], "display_text": "🎙️ Audio: a spoken number"},
        {"text": "Explain in two sentences what makes Gemma 3n efficient on phones.", "display_text": "💬 Text: what makes Gemma 3n efficient?"},
        {"text": "What shapes and colours do you see?", "files": [str(files["image"])], "display_text": "🖼️ Image: shapes and colours"},
        {"text": "Answer the question in this recording.", "files": [str(files["audio"])], "display_text": "🎙️ Audio: answer the spoken question"},
        {"text": "What happens in this clip, and what is said?", "files": [str(files["video"])], "display_text": "🎬 Video with sound: what happens?"},
    ]


if __name__ == "__main__":
    for kind, path in write_examples().items():
        print(f"{kind}: {path} ({path.stat().st_size} bytes)")
