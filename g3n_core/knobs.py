"""Command-line flags generated from the fields: every Variant knob and every GenerationSettings field.

`add_variant_args` adds `--FIELD` for each Variant knob (help and choices from the field's `knob`
metadata, default "not given"); `variant_from_args` builds the Variant from the flags that were
given, filling the machine-dependent defaults (`default_device`, `default_dtype`) and the towers
the inputs need. `add_settings_args` / `settings_from_args` do the same for GenerationSettings (its
defaults are the flags' defaults), and `add_media_limit_args` / `media_limits` for MediaPolicy's
limits. `python -m g3n_core generate` / `info` and `python app.py` use them, so a new field shows
up everywhere without touching this module.
"""

from __future__ import annotations

import argparse
from dataclasses import Field

from .generation import GenerationSettings, user_settings
from .variant import Variant, default_device, default_dtype, field_default, field_from_text, field_kind, knobs


def flag(name: str) -> str:
    """The command-line flag of a field: --kv-cache for kv_cache."""
    return "--" + name.replace("_", "-")


def knob_help(f: Field) -> str:
    """A Variant knob's help line with its choices and default, for --help."""
    choices = f.metadata["choices"]
    shown = f" (choices: {', '.join(choices)})" if choices else ""
    default = field_default(f)
    if field_kind(f) == "list":
        default = ",".join(default) or "text"
    return f"{f.metadata['help']}{shown}; Variant default: {default if default is not None else 'none'}"


def add_knob_arg(parser, f: Field, default=None, help: str | None = None) -> None:  # noqa: A002 - argparse's word
    """The flag of one Variant knob (`default` None: not given); `help` replaces the generated help line."""
    text = help or knob_help(f)
    if field_kind(f) == "bool":
        parser.add_argument(flag(f.name), dest=f.name, action=argparse.BooleanOptionalAction, default=default, help=text)
    else:
        parser.add_argument(flag(f.name), dest=f.name, default=default, metavar=f.name.upper(), help=text)


def knob(name: str) -> Field:
    """The Variant knob called `name`."""
    return next(f for f in knobs() if f.name == name)


def add_variant_args(parser: argparse.ArgumentParser) -> None:
    """One flag per Variant knob, in a group of its own."""
    group = parser.add_argument_group("variant", "what runs: the Variant's fields (g3n_core/variant.py), all optional")
    for f in knobs():
        add_knob_arg(group, f)


def variant_from_args(args: argparse.Namespace, towers: tuple[str, ...] | None = None) -> Variant:
    """The Variant the given flags describe; device and dtype default for this machine, towers to `towers` when given."""
    model = getattr(args, "model", None) or "tiny"
    values = {}
    for f in knobs():
        value = getattr(args, f.name, None)
        if f.name != "model" and value is not None:
            values[f.name] = value if isinstance(value, bool) else field_from_text(f.name, value, model)
    device = values.setdefault("device", default_device())
    values.setdefault("dtype", default_dtype(model, device))
    if towers is not None:
        values.setdefault("towers", towers)
    return Variant(model=model, **values)


def spec_help() -> str:
    """What a Variant spec string may hold, for the help of commands that take specs (`evals run --variants`)."""
    keys = ", ".join(f"{f.name}={'|'.join(f.metadata['choices'])}" if f.metadata["choices"] and field_kind(f) != "list" else f.name
                     for f in knobs()[1:])
    return f"'MODEL key=value ...' specs, e.g. 'tiny attn=eager sparsity=off towers=text'; keys: {keys}; ffn=/skip= for a custom MatFormer slice"


def add_settings_args(parser: argparse.ArgumentParser) -> None:
    """One flag per GenerationSettings field a person sets, with its default (--video-sound / --no-video-sound for on/off)."""
    group = parser.add_argument_group("generation", "how the reply is sampled, and its media handled (g3n_core.GenerationSettings)")
    for f in user_settings():
        text = f"{f.metadata['help']} (default %(default)s)"
        if f.type == "bool":
            group.add_argument(flag(f.name), dest=f.name, action=argparse.BooleanOptionalAction, default=f.default, help=text)
        elif f.metadata.get("choices"):
            group.add_argument(flag(f.name), dest=f.name, choices=f.metadata["choices"], default=f.default, help=text)
        else:
            group.add_argument(flag(f.name), dest=f.name, type=int if f.type == "int" else float, default=f.default, help=text)


def add_media_limit_args(parser: argparse.ArgumentParser) -> None:
    """One flag per MediaPolicy limit (--max-image-pixels, --max-audio-seconds, ...), help and default from the field."""
    from .media.policy import limit_fields

    group = parser.add_argument_group("media limits", "what one request may cost to decode (g3n_core.MediaPolicy)")
    aliases = {"max_video_frames": ["--max-frames"]}
    for f in limit_fields():
        group.add_argument(flag(f.name), *aliases.get(f.name, []), dest=f.name, type=type(f.default), default=f.default,
                           help=f"{f.metadata['help']} (default %(default)s)")


def media_limits(args: argparse.Namespace) -> dict:
    """The MediaPolicy limits the flags set."""
    from .media.policy import limit_fields

    return {f.name: getattr(args, f.name, f.default) for f in limit_fields()}


def settings_from_args(args: argparse.Namespace) -> GenerationSettings:
    """The GenerationSettings of the parsed flags."""
    return GenerationSettings(**{f.name: getattr(args, f.name) for f in user_settings()})
