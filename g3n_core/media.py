"""Decoding images, audio and video into what Gemma 3n takes, with a typed error for every bad input.

Images become RGB PIL images; audio becomes 16 kHz mono float32 (librosa), at most 30 s; video
becomes a bounded number of evenly spaced frames (PyAV), sent to the model as images.
"""

from __future__ import annotations

import io
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import CorruptMediaError, EmptyMediaError, MediaAccessError, UnsupportedMediaError

SAMPLE_RATE = 16_000
MAX_AUDIO_SECONDS = 30.0  # the audio encoder's window: 188 soft tokens cover 30 s
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".webm"}
VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v", ".gif"}
MAX_VIDEO_DECODE_FRAMES = 3000  # stop decoding long videos after this many frames


@dataclass(frozen=True)
class MediaPolicy:
    """What a request may read: URLs only when `allow_network`, paths only under `allowed_roots` when set."""

    allow_network: bool = False
    allowed_roots: tuple[Path, ...] | None = None
    max_video_frames: int = 8
    max_bytes: int = 200 * 1024 * 1024
    url_timeout_s: float = 10.0


@dataclass
class MediaNotes:
    """Warnings collected while decoding (truncated audio, sampled video frames)."""

    warnings: list[str] = field(default_factory=list)


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.split("://", 1)[0].lower() in {"http", "https", "ftp", "file"} and "://" in value


def _fetch_url(url: str, policy: MediaPolicy) -> bytes:
    if not policy.allow_network:
        raise MediaAccessError(url, "fetching URLs is turned off; pass a local file, or enable network access explicitly")
    if not url.lower().startswith(("http://", "https://")):
        raise MediaAccessError(url, "only http(s) URLs can be fetched")
    try:
        with urllib.request.urlopen(url, timeout=policy.url_timeout_s) as response:  # noqa: S310 - scheme checked above
            data = response.read(policy.max_bytes + 1)
    except OSError as err:
        raise MediaAccessError(url, f"could not fetch: {err}") from err
    if len(data) > policy.max_bytes:
        raise MediaAccessError(url, f"larger than {policy.max_bytes} bytes")
    return data


def _checked_path(value: str | Path, policy: MediaPolicy, suffixes: set[str], kind: str) -> Path:
    path = Path(value).expanduser()
    label = str(value)
    if policy.allowed_roots is not None:
        resolved = path.resolve()
        if not any(resolved.is_relative_to(Path(root).resolve()) for root in policy.allowed_roots):
            raise MediaAccessError(label, "reading this path is not allowed: only uploaded files can be used")
    if not path.is_file():
        raise MediaAccessError(label, f"no such {kind} file")
    size = path.stat().st_size
    if size == 0:
        raise EmptyMediaError(label, f"the {kind} file is empty (0 bytes)")
    if size > policy.max_bytes:
        raise UnsupportedMediaError(label, f"the {kind} file is {size} bytes, over the {policy.max_bytes}-byte limit")
    if path.suffix.lower() not in suffixes:
        allowed = ", ".join(sorted(suffixes))
        raise UnsupportedMediaError(label, f"unsupported {kind} format {path.suffix or '(no extension)'!r}; use one of {allowed}")
    return path


def media_payload(item: dict, kind: str) -> Any:
    """The media object of a content part: its `kind` field, else `path`, else `url`."""
    for key in (kind, "url", "path"):
        if item.get(key) is not None:
            return item[key]
    raise UnsupportedMediaError(kind, f"a {kind} part needs a '{kind}', 'path' or 'url' field")


# -- images --------------------------------------------------------------------------------------


def _image_from_array(array: np.ndarray, label: str) -> Image.Image:
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)) or 0 in array.shape:
        raise UnsupportedMediaError(label, f"an image array must be HxW or HxWxC with C in 1, 3, 4; got shape {array.shape}")
    if array.dtype != np.uint8:
        if not np.isfinite(array).all():
            raise CorruptMediaError(label, "the image array holds NaN or infinite values")
        scale = 255.0 if array.max(initial=0) <= 1.0 else 1.0
        array = np.clip(array * scale, 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return Image.fromarray(array)


def _open_image_bytes(data: bytes | Path, label: str) -> Image.Image:
    source = data if isinstance(data, Path) else io.BytesIO(data)
    try:
        with Image.open(source) as img:
            img.load()
            return img.convert("RGB")
    except UnidentifiedImageError as err:
        raise CorruptMediaError(label, "not a readable image (corrupt, or not an image at all)") from err
    except Image.DecompressionBombError as err:
        raise UnsupportedMediaError(label, f"image too large to decode safely: {err}") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise CorruptMediaError(label, f"the image is truncated or damaged ({err})") from err


def load_image(value: Any, policy: MediaPolicy, label: str = "image") -> Image.Image:
    """An RGB image from a PIL image, a numpy array, a file path, raw bytes or (when allowed) a URL."""
    if isinstance(value, Image.Image):
        return value.convert("RGB")
    if isinstance(value, np.ndarray):
        return _image_from_array(value, label).convert("RGB")
    if isinstance(value, (bytes, bytearray)):
        if not value:
            raise EmptyMediaError(label, "the image data is empty")
        return _open_image_bytes(bytes(value), label)
    if _is_url(value):
        return _open_image_bytes(_fetch_url(value, policy), value)
    if isinstance(value, (str, Path)):
        return _open_image_bytes(_checked_path(value, policy, IMAGE_SUFFIXES, "image"), str(value))
    raise UnsupportedMediaError(label, f"cannot use a {type(value).__name__} as an image")


# -- audio ---------------------------------------------------------------------------------------


def _finish_audio(samples: np.ndarray, sample_rate: int, label: str, notes: MediaNotes) -> np.ndarray:
    import librosa

    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:  # (channels, samples) or (samples, channels): average the shorter axis
        samples = samples.mean(axis=0 if samples.shape[0] < samples.shape[1] else 1)
    if samples.ndim != 1:
        raise UnsupportedMediaError(label, f"audio must be 1-D (mono) or 2-D (channels); got shape {samples.shape}")
    if samples.size == 0:
        raise CorruptMediaError(label, "the audio holds no samples")
    if not np.isfinite(samples).all():
        raise CorruptMediaError(label, "the audio holds NaN or infinite samples")
    if sample_rate != SAMPLE_RATE:
        samples = librosa.resample(samples, orig_sr=sample_rate, target_sr=SAMPLE_RATE)
    seconds = samples.size / SAMPLE_RATE
    if seconds > MAX_AUDIO_SECONDS:
        notes.warnings.append(
            f"{label}: {seconds:.1f} s of audio; Gemma 3n hears at most {MAX_AUDIO_SECONDS:.0f} s, so it was truncated to the first {MAX_AUDIO_SECONDS:.0f} s"
        )
        samples = samples[: int(MAX_AUDIO_SECONDS * SAMPLE_RATE)]
    return samples


def _decode_audio_file(source: Path | bytes, label: str) -> tuple[np.ndarray, int]:
    import librosa
    import soundfile

    try:
        data = source if isinstance(source, Path) else io.BytesIO(source)
        samples, sample_rate = soundfile.read(data, dtype="float32", always_2d=True)
        return samples.T, sample_rate
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        pass  # formats libsndfile lacks (m4a, aac, webm) go through librosa's audioread fallback
    if not isinstance(source, Path):
        raise CorruptMediaError(label, "audio bytes are not in a format libsndfile can decode (wav, flac, ogg, mp3)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa warns that it falls back to audioread; that is the point
            samples, sample_rate = librosa.load(str(source), sr=None, mono=False)
    except Exception as err:  # noqa: BLE001 - audioread raises a zoo of types for undecodable input
        raise CorruptMediaError(label, f"the audio cannot be decoded (truncated or damaged?): {type(err).__name__}") from err
    return np.atleast_2d(samples), int(sample_rate)


def load_audio(value: Any, policy: MediaPolicy, notes: MediaNotes, label: str = "audio") -> np.ndarray:
    """16 kHz mono float32 from a file path, raw bytes, a URL (when allowed), an array (16 kHz) or {'array', 'sampling_rate'}."""
    if isinstance(value, dict) and "array" in value:
        return _finish_audio(np.asarray(value["array"]), int(value.get("sampling_rate", SAMPLE_RATE)), label, notes)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], (int, np.integer)):
        sample_rate, samples = value  # gradio's (rate, samples) form
        samples = np.asarray(samples)
        if np.issubdtype(samples.dtype, np.integer):
            samples = samples.astype(np.float32) / np.iinfo(samples.dtype).max
        return _finish_audio(samples.T if samples.ndim == 2 else samples, int(sample_rate), label, notes)
    if isinstance(value, (np.ndarray, list)):
        return _finish_audio(np.asarray(value), SAMPLE_RATE, label, notes)
    if isinstance(value, (bytes, bytearray)):
        if not value:
            raise EmptyMediaError(label, "the audio data is empty")
        samples, sample_rate = _decode_audio_file(bytes(value), label)
        return _finish_audio(samples, sample_rate, label, notes)
    if _is_url(value):
        samples, sample_rate = _decode_audio_file(_fetch_url(value, policy), value)
        return _finish_audio(samples, sample_rate, value, notes)
    if isinstance(value, (str, Path)):
        path = _checked_path(value, policy, AUDIO_SUFFIXES, "audio")
        samples, sample_rate = _decode_audio_file(path, str(value))
        return _finish_audio(samples, sample_rate, str(value), notes)
    raise UnsupportedMediaError(label, f"cannot use a {type(value).__name__} as audio")


# -- video ---------------------------------------------------------------------------------------


def _sample_frames(container: Any, max_frames: int, label: str) -> tuple[list[Image.Image], int]:
    stream = container.streams.video[0]
    frames: list[Image.Image] = []
    total = 0
    for frame in container.decode(stream):
        frames.append(frame.to_image())
        total += 1
        if total >= MAX_VIDEO_DECODE_FRAMES:
            break
    if not frames:
        raise CorruptMediaError(label, "the video has no decodable frames")
    if len(frames) <= max_frames:
        return frames, total
    picks = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
    return [frames[i] for i in picks], total


def load_video_frames(value: Any, policy: MediaPolicy, notes: MediaNotes, label: str = "video") -> list[Image.Image]:
    """Up to `policy.max_video_frames` evenly spaced RGB frames of a video file (or URL, when allowed)."""
    import av

    if isinstance(value, (list, tuple)) and value and all(isinstance(f, (Image.Image, np.ndarray)) for f in value):
        frames = [load_image(f, policy, label) for f in value]  # already-decoded frames
    else:
        if _is_url(value):
            source: Any = io.BytesIO(_fetch_url(value, policy))
            label = value
        elif isinstance(value, (str, Path)):
            source = str(_checked_path(value, policy, VIDEO_SUFFIXES, "video"))
            label = str(value)
        else:
            raise UnsupportedMediaError(label, f"cannot use a {type(value).__name__} as a video")
        try:
            with av.open(source) as container:
                if not container.streams.video:
                    raise UnsupportedMediaError(label, "the file has no video stream")
                frames, total = _sample_frames(container, policy.max_video_frames, label)
        except (av.error.FFmpegError, OSError, ValueError) as err:
            raise CorruptMediaError(label, f"the video cannot be decoded (truncated or damaged?): {err}") from err
        if total > len(frames):
            notes.warnings.append(f"{label}: sampled {len(frames)} of {total} frames evenly")
    if len(frames) > policy.max_video_frames:
        picks = np.linspace(0, len(frames) - 1, policy.max_video_frames).round().astype(int)
        frames = [frames[i] for i in picks]
    return frames

