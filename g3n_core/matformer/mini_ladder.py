"""mini's own MatFormer ladder: named slices of the 10-layer mini with their measured sizes and accuracy.

The slices are defined in mini_ladder.json; `scripts/measure_mini_ladder.py` fills in each row's
effective parameters and held-out accuracy (`measured`), and the training run learns the rows'
layer skips (`training_skip_sets`), so every preset is a sub-model mini was trained to be.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import SliceError
from .spec import MatformerSlice

TABLE = Path(__file__).parent / "mini_ladder.json"


@dataclass(frozen=True)
class MiniPreset:
    """One row of mini's ladder."""

    key: str
    name: str
    level: str  # full | layer | block
    ffn: tuple[int, ...]
    skip: tuple[int, ...]
    measured: dict | None  # {"effective_params": int, "<task>/<metric>": value, ...} from the ladder script

    def to_slice(self) -> MatformerSlice:
        """The slice this row describes (None widths for the full model, so it is no slice at all)."""
        return MatformerSlice(ffn=self.ffn, skip=self.skip, preset=self.key)

    @property
    def summary(self) -> str:
        """Its size and measured multiple-choice accuracy (when the ladder script measured it), for choice lists."""
        measured = self.measured or {}
        size = f"{measured['effective_params'] / 1e6:.2f} M effective" if "effective_params" in measured else self.name
        return size + (f", MC acc {measured['builtin_mc/acc']:.2f}" if "builtin_mc/acc" in measured else "")


def read_table(path: Path = TABLE) -> dict:
    """The raw table."""
    return json.loads(path.read_text())


@lru_cache(maxsize=1)
def mini_presets() -> tuple[MiniPreset, ...]:
    """All rows, in the table's order (largest first)."""
    return tuple(
        MiniPreset(r["key"], r["name"], r["level"], tuple(r["ffn"]), tuple(r["skip"]), r.get("measured"))
        for r in read_table()["rows"]
    )


def find_mini_preset(name: str) -> MiniPreset:
    """A row by its key, case-insensitively."""
    for preset in mini_presets():
        if preset.key.lower() == name.strip().lower():
            return preset
    raise SliceError(f"unknown mini preset {name!r}; mini's presets are {', '.join(p.key for p in mini_presets())}")


def training_skip_sets() -> list[tuple[int, ...]]:
    """The distinct layer-skip sets of the ladder, plus each single layer they skip (trained for robustness)."""
    sets = {p.skip for p in mini_presets() if p.skip}
    sets |= {(i,) for p in mini_presets() for i in p.skip}
    return sorted(sets)


def mini_parent_layers() -> int:
    """Layer count of the model the ladder slices (mini: 10)."""
    return read_table()["parent_layers"]


def half_preset() -> MiniPreset:
    """The preset with about half of mini's effective parameters (the issue's ladder target)."""
    return find_mini_preset(read_table()["half_preset"])


def ladder_table(dtype: str = "bfloat16") -> list[dict]:
    """One row per preset: its sizes on mini (computed now, on the meta device) and what the ladder script measured."""
    from .sizes import slice_report

    rows = []
    for preset in mini_presets():
        report = slice_report("mini", preset.to_slice(), dtype)
        rows.append(
            {
                "preset": preset.key,
                "name": preset.name,
                "level": preset.level,
                "layers": report["layers"],
                "kv_shared_layers": report["kv_shared_layers"],
                "total_params": report["total_params"],
                "effective_params": report["effective_params"],
                "effective_fraction": report["effective_fraction"],
                "bytes": report["bytes"],
                "skip": list(preset.skip),
                "measured": preset.measured or {},
            }
        )
    return rows
