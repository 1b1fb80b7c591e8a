"""The MatFormer Lab's published slices of Gemma 3n E4B, and parsing slice specs from text."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import SliceError
from .spec import MatformerSlice

TABLE = Path(__file__).parent / "lab_slices.json"


@dataclass(frozen=True)
class LabPreset:
    """One row of the Lab's table (parent: the 35-layer E4B)."""

    key: str  # short name used on the command line and in tables, e.g. "E2B", "E2.98B-layer"
    name: str  # the table's own name
    layers: int
    effective_params_b: float
    mmlu_pt_accuracy: float
    ffn: tuple[int, ...]  # kept-layer order
    skip: tuple[int, ...]

    def to_slice(self) -> MatformerSlice:
        """The slice this row describes."""
        return MatformerSlice(ffn=self.ffn, skip=self.skip, preset=self.key)


def _key(name: str) -> str:
    if name == "Main model":
        return "E4B"
    if "official E2B" in name:
        return "E2B"
    match = re.search(r"(E[\d.]+B) \((layer|block)-level\)", name)
    if not match:
        raise ValueError(f"unrecognised preset name {name!r}")
    return f"{match.group(1)}-{match.group(2)}"


@lru_cache(maxsize=1)
def lab_presets() -> tuple[LabPreset, ...]:
    """All rows of the Lab's table, in its order."""
    data = json.loads(TABLE.read_text())
    return tuple(
        LabPreset(
            key=_key(row["name"]),
            name=row["name"],
            layers=row["layers"],
            effective_params_b=row["effective_params_b"],
            mmlu_pt_accuracy=row["mmlu_pt_accuracy"],
            ffn=tuple(row["ffn_hidden_dims"]),
            skip=tuple(row["layers_skipped"]),
        )
        for row in data["rows"]
    )


def lab_parent_layers() -> int:
    """Layer count of the model the Lab's table slices (E4B: 35)."""
    return json.loads(TABLE.read_text())["parent_layers"]


def find_preset(name: str) -> LabPreset:
    """A preset by its key (E2B, E2.98B-layer, ...) or its full table name, case-insensitively."""
    wanted = name.strip().lower()
    for preset in lab_presets():
        if wanted in (preset.key.lower(), preset.name.lower()):
            return preset
    keys = ", ".join(p.key for p in lab_presets())
    raise SliceError(f"unknown MatFormer preset {name!r}; presets are {keys}")


def _ints(text: str) -> list[int]:
    values: list[int] = []
    for part in text.replace(" ", ",").split(","):
        if not part:
            continue
        if "*" in part:  # 8192*20 repeats a width
            width, count = part.split("*", 1)
            values += [int(width)] * int(count)
        elif "-" in part:
            lo, hi = part.split("-", 1)
            values += list(range(int(lo), int(hi) + 1))
        else:
            values.append(int(part))
    return values


def parse_slice(text: str) -> MatformerSlice:
    """A preset key/name, or 'ffn=W,W,...[;skip=I,J-K]' with widths in kept-layer order ('8192*20' repeats)."""
    text = text.strip()
    if "=" not in text:
        return find_preset(text).to_slice()
    parts = dict(part.split("=", 1) for part in text.split(";") if part.strip())
    unknown = set(parts) - {"ffn", "skip"}
    if unknown:
        raise SliceError(f"unknown slice keys {sorted(unknown)}; write ffn=W,W,...;skip=I,J")
    try:
        ffn = tuple(_ints(parts["ffn"])) if "ffn" in parts else None
        skip = tuple(_ints(parts.get("skip", "")))
    except ValueError as err:
        raise SliceError(f"cannot read slice {text!r}: {err}") from err
    return MatformerSlice(ffn=ffn, skip=skip)
