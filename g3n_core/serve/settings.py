"""The server's knobs: what a request may cost and who may call. Flags of `python -m g3n_core serve` (and of the app's /v1) come from these fields."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import SettingsError

MiB = 2**20


@dataclass(frozen=True)
class ServeSettings:
    """Limits and access rules of the OpenAI-compatible API."""

    model_name: str | None = field(default=None, metadata={"help": "the model id clients send and GET /v1/models lists (default: the --model value)"})
    api_key_env: str | None = field(default=None, metadata={"help": "environment variable holding the key clients must send as 'Authorization: Bearer KEY' (unset: no key needed)"})
    allow_url_media: bool = field(default=False, metadata={"help": "let requests name http(s) URLs as media (off: data URLs, base64 audio and uploaded files only)"})
    max_body_bytes: int = field(default=32 * MiB, metadata={"help": "largest request body, uploads included"})
    max_media_bytes: int = field(default=20 * MiB, metadata={"help": "largest single image, audio clip or video in a request (decoded bytes)"})
    max_image_pixels: int = field(default=40_000_000, metadata={"help": "largest image (width x height), checked from its header before decoding"})
    max_audio_seconds: int = field(default=600, metadata={"help": "longest audio clip accepted, checked before decoding (the model hears the first 30 s)"})
    max_images: int = field(default=8, metadata={"help": "images per request, counting every earlier turn (a video counts as its sampled frames)"})
    max_audio: int = field(default=4, metadata={"help": "audio clips per request, counting every earlier turn"})
    max_messages: int = field(default=128, metadata={"help": "messages per request"})
    max_tokens: int = field(default=2048, metadata={"help": "most new tokens one request may ask for (also the default, within the context)"})
    max_prompts: int = field(default=64, metadata={"help": "prompts one /v1/completions request may carry"})
    max_queue: int = field(default=16, metadata={"help": "requests admitted at once per model (one generates, the others wait in line); more get HTTP 429"})
    max_files: int = field(default=64, metadata={"help": "uploaded files kept for /v1/files references (oldest deleted first)"})

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_media_bytes", "max_image_pixels", "max_audio_seconds", "max_images", "max_audio", "max_messages", "max_tokens", "max_prompts", "max_queue", "max_files"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name in ("max_images", "max_audio") else 1):
                raise SettingsError(f"{name}={value!r} must be a whole number >= {0 if name in ('max_images', 'max_audio') else 1}")
