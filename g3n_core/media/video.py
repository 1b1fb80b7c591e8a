"""Videos into a few evenly spaced frames (and, optionally, their sound), at a bounded cost.

The video stream's packets are first indexed without decoding (timestamps and keyframes), which
gives the real frame count. Frames are then picked evenly over the whole video and reached by
seeking to the keyframe before each pick and decoding forward, so memory holds only the frames
kept and the work is a few GOPs, whatever the length. Each pick may decode at most its share of
`MediaPolicy.video_decode_pixels`; where a keyframe is far away, the frame reached within that
share is used. Streams that cannot seek are decoded in one forward pass under the same budget.
"""

from __future__ import annotations

import io
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import CorruptMediaError, G3nError, UnsupportedMediaError
from .audio import AudioClip, cut_warning, decode_stream
from .images import load_image
from .policy import (
    MAX_AUDIO_SECONDS,
    VIDEO_SUFFIXES,
    MediaNotes,
    MediaPolicy,
    check_pixels,
    checked_path,
    fetch_url,
    is_url,
    working_size,
)


@dataclass
class Video:
    """The frames sent to the model, what the file holds, and its sound when asked for and present."""

    frames: list[Image.Image]
    label: str
    source_frames: int
    seconds: float | None = None
    sound: AudioClip | None = None  # decoded when asked for and present
    has_sound: bool = False  # the file has an audio track (decoded or not)


@dataclass
class _Index:
    """Presentation times of every frame (sorted) and of the keyframes, from the packets alone."""

    pts: np.ndarray
    keyframes: np.ndarray
    timed: bool  # every packet had a timestamp; otherwise positions are frame numbers and nothing seeks


def _duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return container.duration / 1e6 if container.duration else None


def _index(container: Any, stream: Any, policy: MediaPolicy, label: str) -> _Index:
    pts, keyframes = array("q"), array("q")
    timed = True
    for packet in container.demux(stream):
        if packet.size == 0:
            continue  # the demuxer's end-of-stream marker
        if len(pts) >= policy.max_video_source_frames:
            raise UnsupportedMediaError(label, f"the video holds over {policy.max_video_source_frames} frames, more than this server takes; cut it shorter")
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is None:
            timed, stamp = False, len(pts)
        pts.append(stamp)
        if packet.is_keyframe:
            keyframes.append(stamp)
    if not pts:
        raise CorruptMediaError(label, "the video has no decodable frames")
    if not timed:
        return _Index(np.arange(len(pts)), np.zeros(1, np.int64), False)
    return _Index(np.sort(np.frombuffer(pts, np.int64)), np.sort(np.frombuffer(keyframes, np.int64)), True)


class _Decoder:
    """One video stream's frames in order, able to jump to a keyframe; `position` is the last frame's pts
    (its frame number when the stream is not timed)."""

    def __init__(self, open_container: Callable[[], Any], index: _Index, policy: MediaPolicy, label: str):
        self.open, self.index, self.policy, self.label = open_container, index, policy, label
        self.can_seek = index.timed
        self.container = open_container()
        self.frames: Iterator | None = None
        self.position = int(index.pts[0])
        self.decoded = 0

    @property
    def stream(self) -> Any:
        return self.container.streams.video[0]

    def go_to(self, keyframe: int) -> None:
        """Let the next frames start at `keyframe`, unless decoding on from here gets there as well."""
        if self.frames is not None and (not self.can_seek or keyframe <= self.position):
            return
        if self.frames is None and keyframe <= self.index.keyframes[0]:
            self.frames = iter(self.container.decode(self.stream))  # a fresh container starts there anyway
            return
        try:
            self.container.seek(int(keyframe), stream=self.stream, backward=True, any_frame=False)
        except Exception:  # noqa: BLE001 - a container that cannot seek is read forward instead
            self.can_seek = False
            if self.frames is not None:
                return
        self.frames = iter(self.container.decode(self.stream))

    def next(self) -> Any | None:
        """The next decoded frame (the first checked against the pixel limit), or None at the end."""
        frame = next(self.frames, None)
        if frame is None:
            return None
        if self.decoded == 0:
            check_pixels(frame.width, frame.height, self.policy, self.label, "video frame")
        self.decoded += 1
        if not self.index.timed:
            self.position = self.decoded - 1
        elif frame.pts is not None:
            self.position = frame.pts
        return frame

    def close(self) -> None:
        self.container.close()


def _pick_frames(decoder: _Decoder, count: int, pixels_per_frame: int) -> tuple[list[Image.Image], bool]:
    """`count` frames evenly spaced over the video; True when a pick stopped short within its decode share."""
    index = decoder.index
    targets = np.unique(index.pts[np.linspace(0, len(index.pts) - 1, count).round().astype(int)])
    per_pick = max(1, decoder.policy.video_decode_pixels // (len(targets) * max(1, pixels_per_frame)))
    images: list[Image.Image] = []
    kept: set[int] = set()
    short = False
    for target in targets:
        earlier = index.keyframes[index.keyframes <= target]
        decoder.go_to(int(earlier[-1]) if earlier.size else int(index.pts[0]))
        chosen = None
        for _ in range(per_pick):
            frame = decoder.next()
            if frame is None:
                break
            chosen = frame
            if decoder.position >= target:
                break
        if chosen is None:
            break
        short |= decoder.position < target
        if decoder.position not in kept:
            kept.add(decoder.position)
            width, height = working_size(chosen.width, chosen.height)
            images.append(chosen.to_image(width=width, height=height))  # scaled while converting
    if not images:
        raise CorruptMediaError(decoder.label, "the video has no decodable frames")
    return images, short


def _opener(value: Any, policy: MediaPolicy, label: str) -> tuple[Callable[[], Any], str]:
    import av

    if is_url(value):
        data = fetch_url(value, policy)
        return (lambda: av.open(io.BytesIO(data))), value
    if isinstance(value, (str, Path)):
        path = str(checked_path(value, policy, VIDEO_SUFFIXES, "video"))
        return (lambda: av.open(path)), str(value)
    raise UnsupportedMediaError(label, f"cannot use a {type(value).__name__} as a video")


def _decode_video(open_container: Callable[[], Any], policy: MediaPolicy, notes: MediaNotes, label: str, sound: bool) -> Video:
    with open_container() as container:
        if not container.streams.video and container.streams.audio:
            raise UnsupportedMediaError(label, "the file has no video stream; attach it as an audio clip instead")
        if not container.streams.video:  # nothing playable at all: most often a cut-off or damaged file
            raise CorruptMediaError(label, "the file has no video stream (truncated, damaged, or not a video?)")
        stream = container.streams.video[0]
        seconds = _duration(container, stream)
        if seconds is not None and seconds > policy.max_video_seconds:
            raise UnsupportedMediaError(label, f"the video is {seconds:.0f} s long, over this server's {policy.max_video_seconds:.0f} s limit; cut it shorter")
        if stream.width and stream.height:
            check_pixels(stream.width, stream.height, policy, label, "video frame")
        pixels = (stream.width or 1) * (stream.height or 1)
        index = _index(container, stream, policy, label)
        has_sound = bool(container.streams.audio)
    decoder = _Decoder(open_container, index, policy, label)
    decoder.stream.thread_type = "AUTO"
    try:
        frames, short = _pick_frames(decoder, policy.max_video_frames, pixels)
    finally:
        decoder.close()
    total = len(index.pts)
    if total > len(frames):
        span = f" over {seconds:.1f} s" if seconds else ""
        reach = "; frames far from a keyframe were taken as near as this server's decoding budget allows" if short else ""
        notes.warnings.append(f"{label}: sampled {len(frames)} of {total} frames evenly{span}{reach}")
    clip = None
    if sound and has_sound:
        with open_container() as container:
            clip = decode_stream(container, container.streams.audio[0], f"{label} (sound)", MAX_AUDIO_SECONDS)
        if clip.cut:
            notes.warnings.append(cut_warning(clip, MAX_AUDIO_SECONDS))
    return Video(frames, label, total, seconds, clip, has_sound)


def load_video(value: Any, policy: MediaPolicy, notes: MediaNotes, label: str = "video", sound: bool = True) -> Video:
    """Up to `policy.max_video_frames` evenly spaced RGB frames of a video file (or URL, when allowed),
    and with `sound` its audio track's first 30 s as 16 kHz mono. Already-decoded frames pass through."""
    import av

    if isinstance(value, (list, tuple)) and value and all(isinstance(f, (Image.Image, np.ndarray)) for f in value):
        frames = [load_image(f, policy, label) for f in value]
        picks = np.linspace(0, len(frames) - 1, min(len(frames), policy.max_video_frames)).round().astype(int)
        if len(frames) > len(picks):
            notes.warnings.append(f"{label}: sampled {len(picks)} of {len(frames)} frames evenly")
        return Video([frames[i] for i in picks], label, len(frames))
    open_container, label = _opener(value, policy, label)
    try:
        return _decode_video(open_container, policy, notes, label, sound)
    except G3nError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise CorruptMediaError(label, f"the video cannot be decoded (truncated or damaged?): {err}") from err


def load_video_frames(value: Any, policy: MediaPolicy, notes: MediaNotes, label: str = "video") -> list[Image.Image]:
    """The sampled frames of a video, without its sound (see `load_video`)."""
    return load_video(value, policy, notes, label, sound=False).frames
