"""The MatFormer Lab's published slices of Gemma 3n E4B, and parsing slice specs from text."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import ModelSourceError, SliceError
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

    @property
    def summary(self) -> str:
        """Its size and published accuracy, for choice lists."""
        return f"{self.effective_params_b:.2f} B effective, MMLU {self.mmlu_pt_accuracy:.1f}"


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


def find_preset(name: str):
    """A preset by its key or full table name, case-insensitively: the Lab's (E2B, E2.98B-layer, ...) or mini's ladder (E1.31M-layer, ...)."""
    from .mini_ladder import mini_presets

    wanted = name.strip().lower()
    for preset in (*lab_presets(), *mini_presets()):
        if wanted in (preset.key.lower(), preset.name.lower()):
            return preset
    keys = ", ".join(p.key for p in lab_presets())
    minis = ", ".join(p.key for p in mini_presets())
    raise SliceError(f"unknown MatFormer preset {name!r}; presets are {keys} (Gemma 3n E4B) and {minis} (mini)")


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


def slice_by_rule(parent_layers: int, width: int, overrides: dict[int, int] | None = None, skip=(), preset: str | None = None) -> MatformerSlice:
    """'`width` everywhere, except these parent layers at their own width', minus `skip` (all indices are the parent's)."""
    overrides = overrides or {}
    skipped = set(skip)
    for layer in sorted(overrides):
        if not 0 <= layer < parent_layers:
            raise SliceError(f"no such layer: the parent has layers 0-{parent_layers - 1}", layer=layer)
        if layer in skipped:
            raise SliceError("a width is given for a layer the slice skips; drop one of the two", layer=layer)
    ffn = tuple(overrides.get(i, width) for i in range(parent_layers) if i not in skipped)
    return MatformerSlice(ffn=ffn, skip=tuple(skip), preset=preset)


def _parse_ffn(text: str, skip: tuple[int, ...], parent_layers: int | None) -> tuple[int, ...] | None:
    """Widths in kept-layer order from 'W,W,W*5,...', or from a rule 'W,20-24:W2,30:W3' (parent layer indices)."""
    tokens = [t for t in text.replace(" ", ",").split(",") if t]
    rules = [t for t in tokens if ":" in t]
    plain = [t for t in tokens if ":" not in t]
    uniform = not rules and len(plain) == 1 and "*" not in plain[0]
    if not rules and not uniform:
        return tuple(_ints(",".join(plain)))
    if parent_layers is None:
        raise SliceError(f"ffn={text!r} is a rule ('W' or 'W,I-J:W2'), which needs the parent's layer count; name the model, or list one width per kept layer")
    if len(plain) != 1 or "*" in plain[0]:
        raise SliceError(f"ffn={text!r}: a rule has one default width and 'layers:width' overrides, e.g. 8192,20-24:16384")
    overrides: dict[int, int] = {}
    for rule in rules:
        layers, width = rule.split(":", 1)
        for layer in _ints(layers):
            overrides[layer] = int(width)
    return slice_by_rule(parent_layers, int(plain[0]), overrides, skip).ffn


def slice_from_parts(ffn: str | None, skip: str | None, parent_layers: int | None = None, preset: str | None = None) -> MatformerSlice:
    """A slice from the --ffn and --skip texts (see `parse_slice` for their forms)."""
    try:
        skipped = tuple(_ints(skip or ""))
        widths = _parse_ffn(ffn, skipped, parent_layers) if ffn else None
    except SliceError:
        raise
    except ValueError as err:
        raise SliceError(f"cannot read slice ffn={ffn!r} skip={skip!r}: {err}") from err
    return MatformerSlice(ffn=widths, skip=skipped, preset=preset)


def parse_slice(text: str, parent_layers: int | None = None) -> MatformerSlice:
    """A preset key/name, or 'ffn=...[;skip=I,J-K]'.

    ffn is one width per kept layer ('8192*20' repeats), or a rule over parent layers: '8192' (every
    layer), '8192,20-24:16384' (8192 everywhere, layers 20-24 at 16384); rules need `parent_layers`.
    """
    text = text.strip()
    if "=" not in text:
        return find_preset(text).to_slice()
    parts = dict(part.split("=", 1) for part in text.split(";") if part.strip())
    unknown = set(parts) - {"ffn", "skip"}
    if unknown:
        raise SliceError(f"unknown slice keys {sorted(unknown)}; write ffn=W,W,...;skip=I,J")
    return slice_from_parts(parts.get("ffn"), parts.get("skip"), parent_layers)


def presets_for(model: str) -> list:
    """The presets whose slice fits `model`, LabPreset or MiniPreset: the Lab's (they slice the 35-layer E4B) and
    mini's ladder (it slices the 10-layer mini); [] when its config is unknown offline."""
    from ..sources import classify, read_config, source_layers
    from .mini_ladder import mini_presets
    from .slicing import check_slice

    try:
        source = classify(model)
        if source_layers(source) is None:
            return []
        config = read_config(source).text_config
    except (ModelSourceError, OSError, ValueError):
        return []
    fitting = []
    for preset in (*lab_presets(), *mini_presets()):
        try:
            check_slice(config, preset.to_slice())
        except SliceError:
            continue
        fitting.append(preset)
    return fitting
