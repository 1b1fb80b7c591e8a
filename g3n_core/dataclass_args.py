"""Command-line flags made from a settings dataclass: each field's default, type, choices and help are written once, on the field.

A field's `metadata={"help": ..., "choices": ...}` is its documentation; `--field-name` is its flag
(booleans become --x / --no-x switches). Used for GenerationSettings and MediaPolicy's limits
(g3n_core.knobs), the serve limits and the Ray engine's settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def flag(name: str) -> str:
    """The command-line flag of a field: --kv-cache for kv_cache."""
    return "--" + name.replace("_", "-")


def _base_type(hint: Any) -> type:
    """str for `str | None`, int for `int`, ... (the first non-None member of a union)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def _chosen_fields(cls: type, names: Iterable[str] | None, exclude: tuple[str, ...]) -> list[dataclasses.Field]:
    wanted = None if names is None else set(names)
    return [
        f for f in dataclasses.fields(cls)
        if not f.name.startswith("_") and f.name not in exclude and (wanted is None or f.name in wanted)
    ]


def add_dataclass_args(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    names: Iterable[str] | None = None,
    exclude: tuple[str, ...] = (),
    aliases: dict[str, list[str]] | None = None,
) -> None:
    """One flag per field of the dataclass `cls` (only `names` when given, never `exclude`), with the field's help,
    choices and default; `aliases` adds other spellings of a field's flag."""
    hints = typing.get_type_hints(cls)
    for f in _chosen_fields(cls, names, exclude):
        kind = _base_type(hints[f.name])
        spellings = [flag(f.name), *(aliases or {}).get(f.name, [])]
        help_text = f.metadata.get("help", "")
        if kind is bool:
            parser.add_argument(*spellings, dest=f.name, action=argparse.BooleanOptionalAction, default=f.default, help=help_text)
            continue
        shown = "" if f.default is None else " (default %(default)s)"
        choices = f.metadata.get("choices") or None
        parser.add_argument(*spellings, dest=f.name, type=kind, choices=choices, default=f.default, help=help_text + shown)


def dataclass_values(cls: type, args: argparse.Namespace, names: Iterable[str] | None = None) -> dict[str, Any]:
    """The values the parsed flags give the fields of `cls` (only `names` when given; fields absent from `args` are left out)."""
    return {f.name: getattr(args, f.name) for f in _chosen_fields(cls, names, ()) if hasattr(args, f.name)}


def dataclass_from_args(cls: type[T], args: argparse.Namespace, **overrides: Any) -> T:
    """The dataclass `cls` built from the parsed flags `add_dataclass_args` made (fields absent from `args` keep their defaults)."""
    return cls(**{**dataclass_values(cls, args), **overrides})
