"""Command-line flags made from a settings dataclass: each field's default, type and help are written once, on the field.

A field's `metadata={"help": ...}` is its documentation; `--field-name` is its flag (booleans
become on/off switches). Used for the serve limits and the Ray engine's settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _base_type(hint: Any) -> type:
    """str for `str | None`, int for `int`, ... (the first non-None member of a union)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def add_settings_args(parser: argparse.ArgumentParser, cls: type, exclude: tuple[str, ...] = ()) -> None:
    """One flag per field of the dataclass `cls` (except `exclude`), with the field's help and default."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name.startswith("_") or f.name in exclude:
            continue
        kind = _base_type(hints[f.name])
        help_text = f.metadata.get("help", "")
        if kind is bool:
            parser.add_argument(_flag(f.name), dest=f.name, action=argparse.BooleanOptionalAction, default=f.default, help=help_text)
        else:
            shown = "" if f.default is None else " (default %(default)s)"
            parser.add_argument(_flag(f.name), dest=f.name, type=kind, default=f.default, help=help_text + shown)


def settings_from_args(cls: type[T], args: argparse.Namespace, **overrides: Any) -> T:
    """The dataclass `cls` built from the parsed flags `add_settings_args` made (fields absent from `args` keep their defaults)."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {name: getattr(args, name) for name in names if hasattr(args, name)}
    return cls(**{**values, **overrides})
