"""OpenAI chat messages -> g3n_core chat messages, with every media reference checked and bounded.

Parts: `text`; `image_url` whose url is a data URL (base64), an uploaded file id (`file-...`,
from POST /v1/files), a path the server's MediaPolicy allows (files uploaded to the app that
mounts this API), or an http(s) URL (refused by the MediaPolicy unless the operator allowed
URLs); `input_audio` ({"data": base64, "format": "wav" | "mp3" | ...}); `file` ({"file_id"} of an
uploaded image, audio clip or video). Roles: system (and OpenAI's "developer"), user, assistant;
consecutive messages of one role are merged, as the app does, since Gemma's template alternates.
"""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import MessageError, UnsupportedMediaError
from ..media import AUDIO_SUFFIXES
from .errors import APIError
from .files import FileStore
from .settings import ServeSettings

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
AUDIO_FORMATS = {s.lstrip(".") for s in AUDIO_SUFFIXES}


def decode_base64(data: Any, what: str, limit: int) -> bytes:
    """Bytes of a base64 string, refused before decoding when they would exceed `limit`."""
    if not isinstance(data, str) or not data:
        raise UnsupportedMediaError(what, "expected a non-empty base64 string")
    if len(data) * 3 // 4 > limit:
        raise UnsupportedMediaError(what, f"larger than this server's {limit}-byte limit for one media item")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as err:
        raise UnsupportedMediaError(what, f"not valid base64 ({err})") from err


def check_image(source: bytes | Path, max_pixels: int) -> None:
    """Refuse an image whose header declares more than `max_pixels` (a decompression bomb costs nothing to send)."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            width, height = image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return  # not readable as an image: g3n_core's decoder says why
    if width * height > max_pixels:
        raise UnsupportedMediaError("image_url", f"{width}x{height} pixels is over this server's limit of {max_pixels}; send a smaller image")


def check_audio(source: bytes | Path, max_seconds: float) -> None:
    """Refuse audio whose header declares more than `max_seconds` (decoding it would cost far more than its bytes)."""
    import soundfile

    try:
        seconds = soundfile.info(io.BytesIO(source) if isinstance(source, bytes) else str(source)).duration
    except (RuntimeError, TypeError, ValueError, soundfile.LibsndfileError):
        return  # not readable by libsndfile: g3n_core's decoder tries its fallback and says why
    if seconds > max_seconds:
        raise UnsupportedMediaError("input_audio", f"{seconds:.0f} s of audio is over this server's limit of {max_seconds} s (the model hears the first 30 s); send a shorter clip")


def _data_url(url: str, limit: int) -> bytes:
    header, _, payload = url.partition(",")
    if not header.lower().startswith("data:image/") or ";base64" not in header.lower():
        raise UnsupportedMediaError("image_url", "a data URL must look like data:image/png;base64,<data>")
    return decode_base64(payload, "image_url", limit)


class MessageConverter:
    """Converts one request's messages, counting media against the server's limits."""

    def __init__(self, settings: ServeSettings, files: FileStore, max_video_frames: int):
        self.settings = settings
        self.files = files
        self.max_video_frames = max_video_frames
        self.images = 0
        self.audio = 0

    def _count(self, kind: str) -> None:
        if kind in ("image", "video"):
            self.images += self.max_video_frames if kind == "video" else 1
            if self.images > self.settings.max_images:
                raise APIError(400, f"more than {self.settings.max_images} images in one request (a video counts as {self.max_video_frames}); send fewer", param="messages")
        elif kind == "audio":
            self.audio += 1
            if self.audio > self.settings.max_audio:
                raise APIError(400, f"more than {self.settings.max_audio} audio clips in one request; send fewer", param="messages")

    def _media(self, kind: str, payload: Any, local: bytes | Path | None = None) -> dict:
        """A media part; `local` (inline bytes or an upload of ours, never a path a client named) is checked first."""
        self._count(kind)
        if local is not None and kind == "image":
            check_image(local, self.settings.max_image_pixels)
        elif local is not None and kind == "audio":
            check_audio(local, self.settings.max_audio_seconds)
        return {"type": kind, kind: payload}

    def _image(self, image_url: Any) -> dict:
        url = image_url.get("url") if isinstance(image_url, dict) else image_url
        if not isinstance(url, str) or not url:
            raise MessageError("an image_url part needs {'url': ...}")
        limit = self.settings.max_media_bytes
        if url.startswith("data:"):
            data = _data_url(url, limit)
            return self._media("image", data, data)
        if url.startswith("file-"):
            path, kind = self.files.media(url)
            if kind != "image":
                raise UnsupportedMediaError(url, f"the uploaded file is {kind}, not an image; send it as a 'file' part")
            return self._media("image", str(path), path)
        return self._media("image", url)  # a URL or a path: the MediaPolicy decides (refused unless allowed)

    def _audio(self, input_audio: Any) -> dict:
        if not isinstance(input_audio, dict):
            raise MessageError("an input_audio part needs {'data': base64, 'format': 'wav' or 'mp3'}")
        fmt = str(input_audio.get("format", "")).lower()
        if fmt not in AUDIO_FORMATS:
            raise UnsupportedMediaError("input_audio", f"unsupported format {fmt!r}; use one of {', '.join(sorted(AUDIO_FORMATS))}")
        data = decode_base64(input_audio.get("data"), "input_audio", self.settings.max_media_bytes)
        return self._media("audio", data, data)

    def _file(self, file: Any) -> dict:
        file_id = file.get("file_id") if isinstance(file, dict) else None
        if not isinstance(file_id, str):
            raise MessageError("a file part needs {'file_id': <id from POST /v1/files>}")
        path, kind = self.files.media(file_id)
        return self._media(kind, str(path), path)

    def part(self, part: Any) -> dict:
        """One g3n_core content part."""
        if isinstance(part, str):
            return {"type": "text", "text": part}
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise MessageError("a text part needs a 'text' string")
            return {"type": "text", "text": part["text"]}
        if kind == "image_url":
            return self._image(part.get("image_url"))
        if kind == "input_audio":
            return self._audio(part.get("input_audio"))
        if kind == "file":
            return self._file(part.get("file"))
        raise MessageError(f"unknown content part type {kind!r}; this server takes text, image_url, input_audio and file parts")

    def convert(self, messages: Any) -> list[dict]:
        """g3n_core messages for OpenAI `messages` (g3n_core validates the conversation itself)."""
        if not isinstance(messages, list) or not messages:
            raise MessageError("messages must be a non-empty list")
        if len(messages) > self.settings.max_messages:
            raise APIError(400, f"more than {self.settings.max_messages} messages in one request; shorten the conversation", param="messages")
        converted: list[dict] = []
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                raise MessageError(f"message {index}: role must be one of {', '.join(ROLES)} (tools are not supported)")
            if message.get("tool_calls") or message.get("function_call"):
                raise MessageError(f"message {index}: tool calls are not supported by this server")
            content = message.get("content")
            if content is None:
                raise MessageError(f"message {index}: content is missing")
            parts = [self.part(p) for p in (content if isinstance(content, list) else [content])]
            role = ROLES[message["role"]]
            if converted and converted[-1]["role"] == role:
                converted[-1]["content"] += parts
            else:
                converted.append({"role": role, "content": parts})
        return converted
