"""The media parts of chat turns, decoded: images, video frames, audio clips and the sound of videos.

Gemma 3n takes several images but one audio clip per user turn. A video becomes its sampled
frames plus, when `video_sound` is on and the model has its audio tower, its sound as that turn's
clip. An audio clip attached to the same turn wins over a video's sound, and of several videos
with sound the first one's is used; every sound left out is named in a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .errors import MessageError
from .media import MediaNotes, MediaPolicy, SAMPLE_RATE, load_audio, load_image, load_video, media_payload


@dataclass
class DecodedMedia:
    """Messages whose media parts are placeholders, and the decoded objects in placeholder order."""

    messages: list[dict]
    images: list[Image.Image] = field(default_factory=list)
    audios: list[np.ndarray] = field(default_factory=list)
    video_frames: int = 0  # of the images, those sampled from videos
    audio_seconds: float = 0.0  # of all clips, video sound included

    def add_audio(self, samples: np.ndarray) -> None:
        self.audios.append(samples)
        self.audio_seconds += samples.size / SAMPLE_RATE


def _check_towers(kind: str, has_vision: bool, has_audio: bool) -> None:
    if kind in ("image", "video") and not has_vision:
        raise MessageError(f"this model was loaded without the vision tower, so it cannot take a {kind}")
    if kind == "audio" and not has_audio:
        raise MessageError("this model was loaded without the audio tower, so it cannot take audio")


def _turn_parts(message: dict, policy: MediaPolicy, notes: MediaNotes, out: DecodedMedia, video_sound: bool, has_audio: bool) -> list[dict]:
    attached = next((p for p in message["content"] if p["type"] == "audio"), None)
    clip_taken = attached is not None  # the turn's one clip slot
    parts: list[dict] = []
    for part in message["content"]:
        kind = part["type"]
        if kind == "image":
            out.images.append(load_image(media_payload(part, "image"), policy))
            parts.append({"type": "image"})
        elif kind == "video":
            video = load_video(media_payload(part, "video"), policy, notes, sound=video_sound and has_audio and not clip_taken)
            out.images.extend(video.frames)
            out.video_frames += len(video.frames)
            parts.extend({"type": "image"} for _ in video.frames)
            if video.sound is not None:
                out.add_audio(video.sound.samples)
                parts.append({"type": "audio"})
                clip_taken = True
            elif video.has_sound and video_sound:
                notes.warnings.append(_sound_left_out(video.label, attached, has_audio))
        elif kind == "audio":
            out.add_audio(load_audio(media_payload(part, "audio"), policy, notes))
            parts.append({"type": "audio"})
        else:
            parts.append(part)
    return parts


def _sound_left_out(label: str, attached: dict | None, has_audio: bool) -> str:
    if not has_audio:
        return f"{label}: its sound was left out: this model was loaded without the audio tower"
    if attached is not None:
        return f"{label}: its sound was left out: the turn also has an audio clip, which is used instead (one clip per turn); send the video alone to use its sound"
    return f"{label}: its sound was left out: an earlier video in the turn supplies the turn's one audio clip"


def decode_media(
    messages: list[dict], policy: MediaPolicy, notes: MediaNotes, has_vision: bool, has_audio: bool, video_sound: bool = True
) -> DecodedMedia:
    """Replace media parts by placeholders and decode them (videos into frames and, with `video_sound`, their sound)."""
    out = DecodedMedia(messages=[])
    for message in messages:
        for part in message["content"]:
            _check_towers(part["type"], has_vision, has_audio)
        out.messages.append({"role": message["role"], "content": _turn_parts(message, policy, notes, out, video_sound, has_audio)})
    return out
