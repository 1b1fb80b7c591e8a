"""Decoding images, audio and video into what Gemma 3n takes, within a budget, with a typed error for every bad input.

Images become RGB PIL images (pixel count checked from the header first); audio becomes 16 kHz
mono float32, decoded only as far as it is used (the first 30 s by default); a video becomes a
bounded number of frames spread over its whole length (reached by seeking) plus, optionally, its
sound. `MediaPolicy` holds every limit.
"""

from .audio import AudioClip, cut_warning, load_audio, read_audio
from .images import load_image
from .policy import (
    AUDIO_SUFFIXES,
    IMAGE_SUFFIXES,
    MAX_AUDIO_SECONDS,
    SAMPLE_RATE,
    VIDEO_SUFFIXES,
    MediaNotes,
    MediaPolicy,
    media_payload,
)
from .video import Video, load_video, load_video_frames

__all__ = [
    "AUDIO_SUFFIXES",
    "IMAGE_SUFFIXES",
    "MAX_AUDIO_SECONDS",
    "SAMPLE_RATE",
    "VIDEO_SUFFIXES",
    "AudioClip",
    "MediaNotes",
    "MediaPolicy",
    "Video",
    "cut_warning",
    "load_audio",
    "load_image",
    "load_video",
    "load_video_frames",
    "media_payload",
    "read_audio",
]
