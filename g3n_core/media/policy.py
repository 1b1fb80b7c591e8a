"""What one request may read and decode: the MediaPolicy limits, and access to paths and URLs.

Every limit is checked before the expensive step it guards (a header before pixels are decoded,
a stream's frame count before frames are), so a small hostile file cannot cost gigabytes.
"""

from __future__ import annotations

import urllib.request
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import EmptyMediaError, MediaAccessError, SettingsError, UnsupportedMediaError

SAMPLE_RATE = 16_000
MAX_AUDIO_SECONDS = 30.0  # the audio encoder's window: 188 soft tokens cover 30 s
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".webm"}
VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v", ".gif"}
# Larger images and frames are scaled down to fit this side before the processor resizes them to the
# model's input (768 px for Gemma 3n): the processor works in float32, 12 bytes a pixel.
WORKING_SIDE = 1536


def limit(default: float, help: str) -> Any:  # noqa: A002 - argparse's word
    """A MediaPolicy field a host may set (app.py's command line), with its one line of help."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class MediaPolicy:
    """What a request may read (URLs only when `allow_network`, paths only under `allowed_roots` when
    set) and how much decoding it may cost. The limits (fields made with `limit`) are app.py options."""

    allow_network: bool = False
    allowed_roots: tuple[Path, ...] | None = None
    max_video_frames: int = limit(8, "frames of a video sent to the model, spread over its whole length")
    max_bytes: int = 200 * 1024 * 1024
    url_timeout_s: float = 10.0
    max_image_pixels: int = limit(50_000_000, "largest image or video frame in pixels (width x height), read from the header before decoding")
    max_video_seconds: float = limit(3600.0, "longest video accepted, in seconds")
    max_video_source_frames: int = limit(200_000, "most frames a video file may hold (counted without decoding)")
    video_decode_pixels: int = limit(1_000_000_000, "pixels one video may decode to reach its frames (about 1-4 s of work)")
    max_audio_seconds: float = limit(600.0, "most seconds of one audio clip decoded (chunked transcription); the rest is cut, with a warning")

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not item.name.startswith(("max_", "video_", "url_")):
                continue
            whole = isinstance(item.default, int)
            if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)) or not value > 0:
                raise SettingsError(f"MediaPolicy.{item.name}={value!r} must be {'a whole number' if whole else 'a number'} > 0")


def limit_fields() -> tuple[Field, ...]:
    """The MediaPolicy limits a host sets, in order."""
    return tuple(f for f in fields(MediaPolicy) if "help" in f.metadata)


@dataclass
class MediaNotes:
    """Warnings collected while decoding (truncated audio, sampled video frames, a sound left out)."""

    warnings: list[str] = field(default_factory=list)


def is_url(value: Any) -> bool:
    """True for a string that names a URL (http, https, ftp, file)."""
    return isinstance(value, str) and "://" in value and value.split("://", 1)[0].lower() in {"http", "https", "ftp", "file"}


def fetch_url(url: str, policy: MediaPolicy) -> bytes:
    """The bytes at an http(s) URL, when the policy allows the network; at most `policy.max_bytes`."""
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


def checked_path(value: str | Path, policy: MediaPolicy, suffixes: set[str], kind: str) -> Path:
    """A local media file the policy lets this request read: allowed root, non-empty, under the size cap, known suffix."""
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


def check_pixels(width: int, height: int, policy: MediaPolicy, label: str, what: str = "image") -> None:
    """Refuse an image (or video frame) whose header says it is over `policy.max_image_pixels`."""
    pixels = int(width) * int(height)
    if pixels > policy.max_image_pixels:
        raise UnsupportedMediaError(
            label,
            f"the {what} is {width}x{height} ({pixels / 1e6:.0f} megapixels), over the {policy.max_image_pixels / 1e6:.0f}-megapixel "
            f"limit; scale it down before sending it",
        )


def working_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) scaled down, aspect kept, to fit WORKING_SIDE (unchanged when it already fits)."""
    scale = WORKING_SIDE / max(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def media_payload(item: dict, kind: str) -> Any:
    """The media object of a content part: its `kind` field, else `path`, else `url`."""
    for key in (kind, "url", "path"):
        if item.get(key) is not None:
            return item[key]
    raise UnsupportedMediaError(kind, f"a {kind} part needs a '{kind}', 'path' or 'url' field")
