"""The MatFormer slice as a value: per-layer FFN widths and skipped layers, applied to a parent model."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ..errors import SliceError


def custom_label(key: str) -> str:
    """'custom-' and a stable 6-character digest of `key`: distinct short names for long settings."""
    return "custom-" + hashlib.sha1(key.encode()).hexdigest()[:6]


@dataclass(frozen=True)
class MatformerSlice:
    """FFN widths of the kept layers, in kept-layer order (None keeps the parent's), and the parent layers to skip.

    This is the MatFormer Lab table's convention (and mistral.rs's): `ffn[k]` is the width of the
    k-th layer that remains after `skip` is removed. `preset` names a row of that table when the
    slice came from one; it is a label only, the widths and skips are what define the slice.
    """

    ffn: tuple[int, ...] | None = None
    skip: tuple[int, ...] = field(default_factory=tuple)
    preset: str | None = None

    def __post_init__(self) -> None:
        if self.ffn is not None:
            object.__setattr__(self, "ffn", tuple(int(w) for w in self.ffn))
        object.__setattr__(self, "skip", tuple(sorted({int(i) for i in self.skip})))
        kept = [i for i in range(len(self.ffn or ()) + len(self.skip)) if i not in set(self.skip)]
        for layer, width in zip(kept, self.ffn or ()):
            if width <= 0:
                raise SliceError(f"FFN width must be positive, got {width}", layer=layer)
        for i in self.skip:
            if i < 0:
                raise SliceError("skipped layer indices must be >= 0", layer=i)

    @property
    def is_empty(self) -> bool:
        """True when nothing is cut (no widths given and nothing skipped)."""
        return self.ffn is None and not self.skip

    @property
    def label(self) -> str:
        """Short, stable name for tables and plots."""
        if self.preset:
            return self.preset
        return custom_label(repr((self.ffn, self.skip)))

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"ffn": list(self.ffn) if self.ffn is not None else None, "skip": list(self.skip), "preset": self.preset}

    @classmethod
    def from_dict(cls, data: dict) -> MatformerSlice:
        """Inverse of `to_dict`."""
        unknown = set(data) - {"ffn", "skip", "preset"}
        if unknown:
            raise SliceError(f"unknown slice keys {sorted(unknown)}; expected ffn, skip, preset")
        ffn = data.get("ffn")
        return cls(ffn=tuple(ffn) if ffn is not None else None, skip=tuple(data.get("skip") or ()), preset=data.get("preset"))
