"""Drawing and speaking mini's media items: Pillow images and espeak-ng speech from explicit parameters.

A rendering is a pure function of its parameters, and its key names them all (rotations reduced to
the shape's symmetry, so two keys never name the same picture). `draw_params` / `speech_params`
sample parameters for one side of the split ("train" or "eval"), rejecting keys of the other side,
so a held-out rendering can only come from the evaluation generator.
"""

from __future__ import annotations

import math
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ...errors import G3nError
from .families import DIGIT_WORDS, IMAGE_COLOURS, SHAPES, held_out, world

IMAGE_SIZE = 256  # drawn size; the processor resizes to the model's input
SAMPLE_RATE = 16_000
RGB = {
    "red": (220, 30, 30), "green": (30, 160, 60), "blue": (30, 70, 220), "yellow": (240, 200, 20),
    "orange": (250, 135, 20), "purple": (130, 40, 170), "black": (20, 20, 20), "grey": (128, 128, 128),
}
SYMMETRY = {"circle": 1, "square": 90, "triangle": 120, "star": 72}  # rotation period in degrees (circle: none)
ROTATION_STEP = 5  # degrees: at the smallest size a step moves a corner by > 2 px, so distinct keys draw distinct pictures
FONT_FILES = (  # Pillow's bundled Aileron always; Debian's DejaVu / Liberation where installed
    None,
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)
VOICES = ("en-us", "en-gb", "en-gb-x-rp", "en-029")
SIDES = ("train", "eval")


class MediaToolError(G3nError):
    """A tool needed to render mini's media (espeak-ng) is missing."""


@dataclass(frozen=True)
class ImageParams:
    """Everything that shapes one picture; `key` names it for the held-out split."""

    kind: str  # colour | shape | count | word
    label: str  # the answer
    colour: str
    shape: str = ""
    size: int = 0  # shape radius or font size, pixels
    centre: tuple[int, int] = (0, 0)
    rotation: int = 0
    dots: tuple[tuple[int, int], ...] = ()
    font: int = 0

    @property
    def key(self) -> str:
        """A stable name of this exact rendering."""
        dots = ";".join(f"{x},{y}" for x, y in self.dots)
        return f"image:{self.kind}:{self.label}:{self.colour}:{self.shape}:{self.size}:{self.centre[0]},{self.centre[1]}:{self.rotation}:{dots}:{self.font}"


@lru_cache(maxsize=1)
def available_fonts() -> tuple[int, ...]:
    """Indices into FONT_FILES that this machine can load (0, Pillow's own, always)."""
    return tuple(i for i, path in enumerate(FONT_FILES) if path is None or Path(path).is_file())


def _font(index: int, size: int) -> ImageFont.FreeTypeFont:
    path = FONT_FILES[index]
    return ImageFont.load_default(size=size) if path is None else ImageFont.truetype(path, size)


def _polygon(shape: str, cx: float, cy: float, r: float, rotation: int) -> list[tuple[float, float]]:
    corners = {"square": 4, "triangle": 3, "star": 10}[shape]
    points = []
    for k in range(corners):
        angle = math.radians(rotation + 360 * k / corners - 90)
        radius = r * (0.45 if shape == "star" and k % 2 else 1.0)
        if shape == "square":
            radius = r * 1.2  # same visual area as the others
            angle += math.radians(45)
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def draw(params: ImageParams) -> Image.Image:
    """The picture `params` describe, 256x256 RGB on white."""
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), "white")
    canvas = ImageDraw.Draw(image)
    fill = RGB[params.colour]
    cx, cy = params.centre
    if params.kind in ("colour", "shape"):
        if params.shape == "circle":
            r = params.size
            canvas.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        else:
            canvas.polygon(_polygon(params.shape, cx, cy, params.size, params.rotation), fill=fill)
    elif params.kind == "count":
        r = params.size
        for x, y in params.dots:
            canvas.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    else:
        font = _font(params.font, params.size)
        text = word_text(params)
        left, top, right, bottom = canvas.textbbox((0, 0), text, font=font)
        layer = Image.new("RGBA", (right - left + 8, bottom - top + 8), (255, 255, 255, 0))
        ImageDraw.Draw(layer).text((4 - left, 4 - top), text, fill=fill + (255,), font=font)
        layer = layer.rotate(params.rotation, resample=Image.BICUBIC, expand=True)
        image.paste(layer, (cx - layer.width // 2, cy - layer.height // 2), layer)
    return image


def _shape_params(kind: str, rnd: random.Random) -> ImageParams:
    shape = rnd.choice(SHAPES)
    colour = rnd.choice(IMAGE_COLOURS)
    size = rnd.randint(28, 90)
    margin = int(size * 1.25) + 4
    centre = (rnd.randint(margin, IMAGE_SIZE - margin), rnd.randint(margin, IMAGE_SIZE - margin))
    rotation = rnd.randrange(0, SYMMETRY[shape], ROTATION_STEP) if shape != "circle" else 0
    return ImageParams(kind, colour if kind == "colour" else shape, colour, shape, size, centre, rotation)


def _count_params(rnd: random.Random) -> ImageParams:
    count = rnd.randint(1, 6)
    colour = rnd.choice(IMAGE_COLOURS)
    r = rnd.randint(10, 22)
    dots: list[tuple[int, int]] = []
    while len(dots) < count:
        c = (rnd.randint(r + 4, IMAGE_SIZE - r - 4), rnd.randint(r + 4, IMAGE_SIZE - r - 4))
        if all((c[0] - x) ** 2 + (c[1] - y) ** 2 > (2 * r + 8) ** 2 for x, y in dots):
            dots.append(c)
    return ImageParams("count", str(count), colour, "dot", r, (0, 0), 0, tuple(sorted(dots)))


def _word_params(rnd: random.Random) -> ImageParams:
    word = rnd.choice(world()["image_words"])
    colour = rnd.choice(("black", "blue", "red", "green", "purple"))
    size = rnd.randint(40, 60)
    centre = (rnd.randint(104, 152), rnd.randint(70, 186))
    return ImageParams("word", word.lower(), colour, "", size, centre, rnd.randint(-20, 20), (), rnd.choice(available_fonts()))


def _check_side(side: str) -> None:
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")


def draw_params(kind: str, rnd: random.Random, side: str) -> ImageParams:
    """Random parameters of one `kind` picture on `side` of the held-out split."""
    _check_side(side)
    while True:
        if kind in ("colour", "shape"):
            params = _shape_params(kind, rnd)
        elif kind == "count":
            params = _count_params(rnd)
        elif kind == "word":
            params = _word_params(rnd)
        else:
            raise ValueError(f"unknown image kind {kind!r}")
        if held_out(params.key) == (side == "eval"):
            return params


def word_text(params: ImageParams) -> str:
    """The drawn word as written (capitals)."""
    return params.label.upper()


# -- speech ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechParams:
    """Everything that shapes one spoken clip."""

    text: str  # what espeak-ng says
    voice: str
    speed: int  # words per minute
    pitch: int  # 0..99
    gain: int  # percent of full scale at the peak
    lead_ms: int  # silence before the speech

    @property
    def key(self) -> str:
        """A stable name of this exact clip."""
        return f"speech:{self.text}:{self.voice}:{self.speed}:{self.pitch}:{self.gain}:{self.lead_ms}"


def speech_params(text: str, rnd: random.Random, side: str) -> SpeechParams:
    """Random voice, speed, pitch, loudness and lead-in for `text` on `side` of the split."""
    _check_side(side)
    while True:
        params = SpeechParams(text, rnd.choice(VOICES), rnd.randint(125, 195), rnd.randint(25, 75), rnd.randint(45, 95), rnd.randrange(0, 300, 10))
        if held_out(params.key) == (side == "eval"):
            return params


def spoken_digits(digits: str) -> str:
    """'371' -> 'three seven one' (what espeak-ng is given)."""
    return " ".join(DIGIT_WORDS[int(d)] for d in digits)


def speak(params: SpeechParams) -> np.ndarray:
    """16 kHz mono int16 PCM of `params` (espeak-ng's 22.05 kHz, resampled by scipy's polyphase filter)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    if shutil.which("espeak-ng") is None:
        raise MediaToolError("espeak-ng is needed to synthesise mini's speech: apt-get install espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        command = ["espeak-ng", "-v", params.voice, "-s", str(params.speed), "-p", str(params.pitch), "-w", str(wav), params.text]
        subprocess.run(command, check=True, capture_output=True)
        audio, rate = sf.read(wav, dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    divisor = math.gcd(rate, SAMPLE_RATE)
    audio = resample_poly(audio, SAMPLE_RATE // divisor, rate // divisor)
    peak = float(np.abs(audio).max()) or 1.0
    audio = audio * (params.gain / 100.0 / peak)
    audio = np.concatenate([np.zeros(SAMPLE_RATE * params.lead_ms // 1000, dtype=np.float32), audio])
    return np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16)


def pcm_to_float(pcm: np.ndarray) -> np.ndarray:
    """int16 PCM as float32 in [-1, 1), exactly as soundfile reads a 16-bit file."""
    return pcm.astype(np.float32) / 32768.0
