"""`python -m g3n_core matformer presets|size|slice`: list presets with their sizes, size a custom slice,
export a slice as a checkpoint."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import SliceError
from .spec import MatformerSlice

_SLICE_HELP = (
    "--ffn takes one width per KEPT layer (8192*20,16384*5,...), or a rule over parent layers: "
    "8192 (every layer) or 8192,20-24:16384 (8192 everywhere, layers 20-24 at 16384). --skip takes parent layer indices (20-24)."
)


def _gb(n: float) -> str:
    from ..info import human_count

    return f"{n / 1e9:.3f}B" if n >= 1e9 else human_count(n, "")


def _model_and_dtype(parser: argparse.ArgumentParser, model: str, dtype: bool = True) -> None:
    """--model (the parent) and, for sizes, --dtype: the Variant knobs' own flags."""
    from ..knobs import add_knob_arg, knob

    add_knob_arg(parser, knob("model"), default=model, help=f"the parent: {knob('model').metadata['help']} (default %(default)s)")
    if dtype:
        add_knob_arg(parser, knob("dtype"), help="count bytes at this dtype (default: bfloat16; float32 for tiny)")


def _slice_args(parser: argparse.ArgumentParser, dtype: bool = True) -> None:
    _model_and_dtype(parser, "tiny", dtype)
    parser.add_argument("--preset", default=None, help="a MatFormer Lab preset: E2B, E2.98B-layer, E3.49B-block, ... (see `matformer presets`)")
    parser.add_argument("--ffn", default=None, help="FFN widths; " + _SLICE_HELP)
    parser.add_argument("--skip", default=None, help="parent layers to drop, e.g. 20-24")


def slice_from_args(args: argparse.Namespace) -> MatformerSlice:
    """The slice that --preset or --ffn/--skip describe."""
    from ..sources import num_text_layers
    from .presets import find_preset, slice_from_parts

    if args.preset and (args.ffn or args.skip):
        raise SliceError("give either --preset or --ffn/--skip, not both")
    if args.preset:
        return find_preset(args.preset).to_slice()
    if not (args.ffn or args.skip):
        raise SliceError("no slice given: use --preset NAME, or --ffn W,... and/or --skip I,J")
    return slice_from_parts(args.ffn, args.skip, num_text_layers(args.model))


def _dtype(args: argparse.Namespace) -> str:
    from ..variant import DTYPE_ALIASES, DTYPES, default_dtype

    dtype = args.dtype or default_dtype(args.model, "cpu")
    dtype = DTYPE_ALIASES.get(dtype.lower(), dtype.lower())
    if dtype not in DTYPES:
        raise SliceError(f"unknown dtype {args.dtype!r}; choose one of {', '.join(DTYPES)}")
    return dtype


# -- presets -------------------------------------------------------------------------------------------


def _presets(args: argparse.Namespace) -> int:
    from .presets import lab_parent_layers, lab_presets
    from .sizes import preset_table

    dtype = _dtype(args)
    rows = preset_table(args.model, dtype)
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print(
            f"none of the {len(lab_presets())} MatFormer Lab presets fits {args.model}: they slice the "
            f"{lab_parent_layers()}-layer E4B (e4b-shape, google/gemma-3n-E4B[-it]). Size a custom slice with "
            "`matformer size --ffn ... --skip ...`.",
            file=sys.stderr,
        )
        return 0
    print(f"MatFormer Lab presets on {args.model} ({dtype}); Lab figures are Google's, for E4B")
    header = f"{'preset':<14} {'layers':>6} {'kv-shared':>9} {'total':>9} {'effective':>10} {'GiB':>7} {'Lab eff.':>8} {'diff':>7} {'Lab MMLU':>8}"
    print(header)
    print("-" * len(header))
    for row in rows:
        diff = 100 * (row["effective_params"] / row["lab_effective_params"] - 1)
        print(
            f"{row['preset']:<14} {row['layers']:>6} {row['kv_shared_layers']:>9} {_gb(row['total_params']):>9} "
            f"{_gb(row['effective_params']):>10} {row['bytes'] / 2**30:>7.2f} {row['lab_effective_params'] / 1e9:>7.2f}B "
            f"{diff:>+6.2f}% {row['lab_mmlu']:>8.1f}"
        )
    return 0


# -- size ----------------------------------------------------------------------------------------------


def _size(args: argparse.Namespace) -> int:
    from ..sources import classify
    from .sizes import slice_report

    report = slice_report(classify(args.model).name, slice_from_args(args), _dtype(args))
    if args.json:
        print(json.dumps(report))
        return 0
    parent = report["parent"]
    print(f"{report['label']} on {args.model} ({report['dtype']})")
    print(f"  layers            {report['layers']} of {parent['layers']} ({report['kv_shared_layers']} KV-shared)")
    print(f"  total params      {_gb(report['total_params'])} of {_gb(parent['total_params'])}  ({report['bytes'] / 2**30:.2f} GiB)")
    print(f"  effective params  {_gb(report['effective_params'])} of {_gb(parent['effective_params'])}  ({100 * report['effective_fraction']:.1f}%)")
    if "lab_effective_params" in report:
        print(f"  Lab               {report['lab_effective_params'] / 1e9:.2f}B effective, MMLU {report['lab_mmlu']:.1f}")
    print("  layer  attention  kv        width / parent")
    for row in report["ffn_profile"]:
        width = "skipped" if row["skipped"] else f"{row['width']:>6} / {row['parent_width']}"
        print(f"  {row['layer']:>5}  {row['attention']:<9}  {row['kv']:<8}  {width}")
    return 0


# -- slice ---------------------------------------------------------------------------------------------


def _slice(args: argparse.Namespace) -> int:
    from .export import export_slice

    def progress(fraction: float, message: str) -> None:
        print(f"[{fraction:4.0%}] {message}", file=sys.stderr)

    slc = slice_from_args(args)
    out = export_slice(args.model, slc, args.out, chunk_bytes=int(args.chunk_mib * 2**20), progress=progress)
    print(f"wrote MatFormer slice {slc.label} of {args.model} to {out}")
    return 0


def register(sub) -> None:
    """Add the `matformer` command group to the CLI."""
    parser = sub.add_parser("matformer", help="MatFormer Mix-n-Match: preset sizes, custom slice sizes, slice export")
    group = parser.add_subparsers(dest="matformer_command", required=True)

    p = group.add_parser("presets", help="every MatFormer Lab preset that fits the model, with its size")
    _model_and_dtype(p, "e4b-shape")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_presets)

    p = group.add_parser("size", help="size of one slice (preset or custom) and its per-layer FFN profile", epilog=_SLICE_HELP)
    _slice_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_size)

    p = group.add_parser("slice", help="write a slice as a checkpoint folder stock transformers loads", epilog=_SLICE_HELP)
    _slice_args(p, dtype=False)
    p.add_argument("--out", required=True, help="new (or empty) folder for the checkpoint")
    p.add_argument("--chunk-mib", type=float, default=64, help="largest piece of a tensor held in memory while writing (MiB)")
    p.set_defaults(handler=_slice)
