"""Audio into 16 kHz mono float32, decoded only as far as it is used.

Files (any format FFmpeg reads: wav, flac, ogg, mp3, m4a, webm, and the sound of videos) are
decoded with PyAV frame by frame and resampled in blocks by libswresample, stopping once the
clip's limit is reached: the first 30 s by default, `MediaPolicy.max_audio_seconds` for chunked
transcription. An hour of audio therefore costs what its first 30 s cost.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CorruptMediaError, EmptyMediaError, G3nError, UnsupportedMediaError
from .policy import AUDIO_SUFFIXES, MAX_AUDIO_SECONDS, SAMPLE_RATE, MediaNotes, MediaPolicy, checked_path, fetch_url, is_url


@dataclass
class AudioClip:
    """Decoded audio: 16 kHz mono samples (at most the decode limit) and the source's full length."""

    samples: np.ndarray
    label: str
    source_seconds: float | None  # the whole source's duration; None when unknown (longer than decoded)
    cut: bool = False  # the source goes on past the decoded samples

    @property
    def seconds(self) -> float:
        """Seconds of decoded audio."""
        return self.samples.size / SAMPLE_RATE


def cut_warning(clip: AudioClip, limit: float) -> str:
    """The warning for a clip cut at `limit` seconds."""
    length = f"{clip.source_seconds:.1f} s" if clip.source_seconds else f"over {limit:.0f} s"
    if limit == MAX_AUDIO_SECONDS:
        return (
            f"{clip.label}: {length} of audio; Gemma 3n hears at most {MAX_AUDIO_SECONDS:.0f} s, so it was truncated "
            f"to the first {MAX_AUDIO_SECONDS:.0f} s"
        )
    return f"{clip.label}: {length} of audio; this server decodes at most {limit:.0f} s of a clip, so only the first {limit:.0f} s were used"


def _checked_samples(samples: np.ndarray, label: str) -> np.ndarray:
    if samples.size == 0:
        raise CorruptMediaError(label, "the audio holds no samples")
    if not np.isfinite(samples).all():
        raise CorruptMediaError(label, "the audio holds NaN or infinite samples")
    return samples


def _from_array(samples: np.ndarray, sample_rate: int, label: str, max_seconds: float) -> AudioClip:
    import librosa

    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:  # (channels, samples) or (samples, channels): average the shorter axis
        samples = samples.mean(axis=0 if samples.shape[0] < samples.shape[1] else 1)
    if samples.ndim != 1:
        raise UnsupportedMediaError(label, f"audio must be 1-D (mono) or 2-D (channels); got shape {samples.shape}")
    if not 1 <= sample_rate <= 1_000_000:
        raise UnsupportedMediaError(label, f"sampling rate {sample_rate} Hz is not a usable audio rate")
    source_seconds = samples.size / sample_rate
    limit = int(math.ceil(max_seconds * sample_rate))
    kept = _checked_samples(samples[:limit], label)  # cut before resampling: the rest is never used
    if sample_rate != SAMPLE_RATE:
        kept = librosa.resample(kept, orig_sr=sample_rate, target_sr=SAMPLE_RATE).astype(np.float32)
    return AudioClip(kept[: int(max_seconds * SAMPLE_RATE)], label, source_seconds, cut=samples.size > limit)


def _stream_seconds(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return container.duration / 1e6 if container.duration else None


def decode_stream(container: Any, stream: Any, label: str, max_seconds: float) -> AudioClip:
    """The first `max_seconds` of an open PyAV audio stream as 16 kHz mono, decoded and resampled block by block."""
    import av

    limit = int(max_seconds * SAMPLE_RATE)
    blocks: list[np.ndarray] = []
    have = 0
    resampler = None
    finished = True
    for frame in container.decode(stream):
        if resampler is None:  # keep the source's channels and average them below (swresample's downmix adds them)
            resampler = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=SAMPLE_RATE)
        frame.pts = None  # timing comes from the sample count; damaged timestamps must not stall the resampler
        for block in resampler.resample(frame):
            blocks.append(block.to_ndarray().mean(axis=0, dtype=np.float32))
            have += blocks[-1].size
        if have > limit:
            finished = False
            break
    if finished and resampler is not None:
        blocks += [block.to_ndarray().mean(axis=0, dtype=np.float32) for block in resampler.resample(None)]
    samples = _checked_samples(np.concatenate(blocks) if blocks else np.zeros(0, np.float32), label)
    source_seconds = samples.size / SAMPLE_RATE if finished else _stream_seconds(container, stream)
    return AudioClip(samples[:limit], label, source_seconds, cut=not finished)


def _decode_file(source: Path | bytes, label: str, max_seconds: float) -> AudioClip:
    import av

    try:
        with av.open(str(source) if isinstance(source, Path) else io.BytesIO(source)) as container:
            if not container.streams.audio:
                raise UnsupportedMediaError(label, "the file has no audio stream")
            return decode_stream(container, container.streams.audio[0], label, max_seconds)
    except G3nError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise CorruptMediaError(label, f"the audio cannot be decoded (truncated or damaged?): {type(err).__name__}") from err


def read_audio(value: Any, policy: MediaPolicy, label: str = "audio", max_seconds: float = MAX_AUDIO_SECONDS) -> AudioClip:
    """Up to `max_seconds` of 16 kHz mono audio from a file path, raw bytes, a URL (when allowed), an
    array (16 kHz), gradio's (rate, samples) or {'array', 'sampling_rate'}; decoding stops at the limit."""
    if isinstance(value, dict) and "array" in value:
        return _from_array(np.asarray(value["array"]), int(value.get("sampling_rate", SAMPLE_RATE)), label, max_seconds)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], (int, np.integer)):
        sample_rate, samples = value  # gradio's (rate, samples) form
        samples = np.asarray(samples)
        if np.issubdtype(samples.dtype, np.integer):
            samples = samples.astype(np.float32) / np.iinfo(samples.dtype).max
        return _from_array(samples.T if samples.ndim == 2 else samples, int(sample_rate), label, max_seconds)
    if isinstance(value, (np.ndarray, list)):
        return _from_array(np.asarray(value), SAMPLE_RATE, label, max_seconds)
    if isinstance(value, (bytes, bytearray)):
        if not value:
            raise EmptyMediaError(label, "the audio data is empty")
        return _decode_file(bytes(value), label, max_seconds)
    if is_url(value):
        return _decode_file(fetch_url(value, policy), value, max_seconds)
    if isinstance(value, (str, Path)):
        return _decode_file(checked_path(value, policy, AUDIO_SUFFIXES, "audio"), str(value), max_seconds)
    raise UnsupportedMediaError(label, f"cannot use a {type(value).__name__} as audio")


def load_audio(value: Any, policy: MediaPolicy, notes: MediaNotes, label: str = "audio") -> np.ndarray:
    """The first 30 s of a clip as 16 kHz mono float32 (see `read_audio`), with a warning when it was longer."""
    clip = read_audio(value, policy, label)
    if clip.cut:
        notes.warnings.append(cut_warning(clip, MAX_AUDIO_SECONDS))
    return clip.samples
