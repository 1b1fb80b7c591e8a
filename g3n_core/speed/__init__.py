"""Speed and memory features selected by Variant fields (sparse FFN decode, PLE placement, cache, compile, int8)."""

from __future__ import annotations

from ..errors import VariantError

_NOT_YET = {"sparse_ffn": True, "ple": "mmap", "kv_cache": "static", "compile": True, "quant": "int8"}


def apply_speed_features(loaded, progress) -> None:
    """Turn on the speed features a loaded model's Variant asks for."""
    for name, value in _NOT_YET.items():
        if getattr(loaded.variant, name) == value:
            raise VariantError(name, f"{name}={value!r} is not available in this build yet")
