"""Images into RGB PIL images. A file's pixel count is read from its header before any pixel is
decoded, so a tiny compressed file cannot expand into gigabytes."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import CorruptMediaError, EmptyMediaError, UnsupportedMediaError
from .policy import IMAGE_SUFFIXES, MediaPolicy, check_pixels, checked_path, fetch_url, is_url, working_size


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


_REDUCIBLE = {"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F"}  # modes Image.reduce takes


def _fit(image: Image.Image) -> Image.Image:
    """An RGB image no larger than the working size (policy.WORKING_SIDE); big ones shrink in their own mode before
    conversion, so a 50-megapixel image never exists as float32 or even as full-size RGB."""
    target = working_size(*image.size)
    if target != image.size:
        if image.mode == "1":
            image = image.convert("L")  # same bytes per pixel as "1" in memory
        factor = min(image.width // target[0], image.height // target[1])
        if factor >= 2 and image.mode in _REDUCIBLE:
            image = image.reduce(factor)  # box filter over factor x factor blocks
        elif factor >= 2:  # palette and 16-bit modes: nearest-neighbour to twice the target first
            image = image.resize((target[0] * 2, target[1] * 2), Image.Resampling.NEAREST)
    image = image.convert("RGB")
    final = working_size(*image.size)
    return image if final == image.size else image.resize(final, Image.Resampling.LANCZOS)


def _open_image(data: bytes | Path, policy: MediaPolicy, label: str) -> Image.Image:
    source = data if isinstance(data, Path) else io.BytesIO(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the pixel limit below is checked instead
            img = Image.open(source)  # lazy: reads the header only
        with img:
            check_pixels(*img.size, policy, label)
            target = working_size(*img.size)
            if target != img.size:
                img.draft("RGB", target)  # JPEG decodes at 1/2, 1/4 or 1/8 scale directly
            img.load()  # an animated image (GIF, APNG, WebP) loads its first frame only
            return _fit(img)
    except UnidentifiedImageError as err:
        raise CorruptMediaError(label, "not a readable image (corrupt, or not an image at all)") from err
    except Image.DecompressionBombError as err:  # Pillow refuses before we can read the size
        limit = policy.max_image_pixels / 1e6
        raise UnsupportedMediaError(label, f"the image is over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels, over the {limit:.0f}-megapixel limit; scale it down before sending it") from err
    except (OSError, SyntaxError, ValueError) as err:
        if isinstance(err, UnsupportedMediaError):
            raise
        raise CorruptMediaError(label, f"the image is truncated or damaged ({err})") from err


def load_image(value: Any, policy: MediaPolicy, label: str = "image") -> Image.Image:
    """An RGB image from a PIL image, a numpy array, a file path, raw bytes or (when allowed) a URL."""
    if isinstance(value, Image.Image):
        return _fit(value)
    if isinstance(value, np.ndarray):
        return _fit(_image_from_array(value, label))
    if isinstance(value, (bytes, bytearray)):
        if not value:
            raise EmptyMediaError(label, "the image data is empty")
        return _open_image(bytes(value), policy, label)
    if is_url(value):
        return _open_image(fetch_url(value, policy), policy, value)
    if isinstance(value, (str, Path)):
        return _open_image(checked_path(value, policy, IMAGE_SUFFIXES, "image"), policy, str(value))
    raise UnsupportedMediaError(label, f"cannot use a {type(value).__name__} as an image")
