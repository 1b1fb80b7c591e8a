"""The MatFormer slice as a value: per-layer FFN widths and skipped layers, applied to a parent model."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ..errors import SliceError


def custom_label(key: str) -> str:
    """'custom-' and a stable 6-character digest of `key`: distinct short names for long settings."""
    return "custom-" + hashlib.sha1(key.encode()).hexdigest()[:6]


LABEL_CHARS = 32


def runs_text(values: tuple[int, ...], times: str) -> str:
    """(256, 256, 512) -> '256x2,512' (with times='x')."""
    runs: list[list[int]] = []
    for value in values:
        if runs and runs[-1][0] == value:
            runs[-1][1] += 1
        else:
            runs.append([value, 1])
    return ",".join(f"{v}{times}{n}" if n > 1 else str(v) for v, n in runs)


def ranges(indices, sep: str = ",") -> str:
    """(5, 6, 7, 9) -> '5-7,9' (joined by `sep`)."""
    spans: list[list[int]] = []
    for i in indices:
        if spans and spans[-1][1] == i - 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return sep.join(f"{a}-{b}" if b > a else str(a) for a, b in spans)


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
        """Short, stable, readable name for tables and plots: the preset, else e.g. 'ffn 256x15 skip 5-9'
        (a 'custom-<digest>' when that would be longer than LABEL_CHARS)."""
        if self.preset:
            return self.preset
        parts = ([f"ffn {runs_text(self.ffn, 'x')}"] if self.ffn else []) + ([f"skip {ranges(self.skip)}"] if self.skip else [])
        readable = " ".join(parts) or "full"
        return readable if len(readable) <= LABEL_CHARS else custom_label(repr((self.ffn, self.skip)))

    @property
    def spec(self) -> str:
        """The slice as `parse_slice` reads it: the preset key, else 'ffn=256*14;skip=7'."""
        if self.preset:
            return self.preset
        parts = ([f"ffn={runs_text(self.ffn, '*')}"] if self.ffn else []) + ([f"skip={ranges(self.skip)}"] if self.skip else [])
        return ";".join(parts)

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
