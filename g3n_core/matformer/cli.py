"""`python -m g3n_core matformer presets|size|slice|search`: list presets with their sizes, size a custom
slice, export a slice as a checkpoint, find the best slice under a budget."""

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
        add_knob_arg(parser, knob("dtype"), help="count bytes at this dtype (default: bfloat16; float32 for mini and tiny)")


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
    if args.model == "mini":
        return _mini_presets(args, dtype)
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


MINI_COLUMNS = (("builtin_mc/acc", "MC acc"), ("builtin_short_answer/exact_match", "short EM"), ("builtin_image_qa/exact_match", "image EM"), ("builtin_speech_asr/wer", "ASR WER"))


def _mini_presets(args: argparse.Namespace, dtype: str) -> int:
    from .mini_ladder import ladder_table, read_table

    rows = ladder_table(dtype)
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"mini's MatFormer ladder (sizes in {dtype}); source: {read_table()['source']}")
    header = f"{'preset':<14} {'level':<6} {'layers':>6} {'effective':>10} {'of full':>7} {'MiB':>6} " + " ".join(f"{title:>9}" for _, title in MINI_COLUMNS)
    print(header)
    print("-" * len(header))
    for row in rows:
        measured = row["measured"]
        values = " ".join(f"{measured[key]:>9.3f}" if key in measured else f"{'-':>9}" for key, _ in MINI_COLUMNS)
        print(
            f"{row['preset']:<14} {row['level']:<6} {row['layers']:>6} {_gb(row['effective_params']):>10} "
            f"{100 * row['effective_fraction']:>6.1f}% {row['bytes'] / 2**20:>6.1f} {values}"
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


# -- search --------------------------------------------------------------------------------------------

def search_budget(args: argparse.Namespace):
    """The Budget the search flags describe (--budget-like sets the effective parameters of a preset or slice)."""
    from .search import budget_from_texts

    return budget_from_texts(args.model, args.max_effective_params, args.max_memory, args.min_tokens_per_s, args.budget_like)


def _search(args: argparse.Namespace) -> int:
    # The one command that composes the model layer with the evaluation bench (tasks, dev splits,
    # results folders); imported here, when it runs, so g3n_core never imports evals otherwise.
    from tqdm import tqdm

    from evals.slice_search import front_table, run_search

    from ..variant import parse_variant_spec

    parent = parse_variant_spec(f"{args.model} {args.fields or ''} dtype={_dtype(args)}")
    budget = search_budget(args)
    seeds = [parse_variant_spec(f"{args.model} matformer={s}").matformer for s in [*(args.seed or []), *([args.budget_like] if args.budget_like else [])]]
    widths = tuple(int(w) for w in args.widths.split(",")) if args.widths else None
    bar = tqdm(total=args.max_evals, unit="eval", desc="matformer search")

    def progress(done: int, total: int, what: str) -> None:
        bar.n = done
        bar.set_postfix_str(what[-60:], refresh=True)

    try:
        result, summary = run_search(parent, args.task, budget, args.out, max_evals=args.max_evals, limit=args.limit, widths=widths,
                                     block_size=args.block_size, seeds=seeds, measure_speed=not args.no_speed, progress=progress)  # fmt: skip
    finally:
        bar.close()
    print(f"searched {result.evaluations} slices of {parent.name} on {summary['objective']}; budget: {budget.describe()}")
    print(f"{'slice':<16} {'origin':<7} {'score':>8} {'effective':>10} {'GiB':>7} {'tok/s':>7}  flags")
    for row in front_table(result):
        flags = " ".join(f for f, on in (("in-budget", row["under_budget"]), ("front", row["front"]), ("pareto", row["pareto"]), ("BEST", row["best"])) if on)
        speed = f"{row['tokens_per_s']:7.1f}" if row["tokens_per_s"] is not None else "      -"
        print(f"{row['slice']:<16} {row['origin']:<7} {row['score']:>8.4f} {_gb(row['effective_params']):>10} {row['memory_bytes'] / 2**30:>7.3f} {speed}  {flags}")
    print("path: " + " | ".join(result.path))
    if result.best is None:
        print("no evaluated slice meets the budget: raise --max-evals or loosen the budget", file=sys.stderr)
        return 1
    best = result.best
    print(f"best under the budget: {best.slice.label} ({best.origin}), score {best.score:.4f}, {_gb(best.effective_params)} effective params")
    if summary.get("use"):
        print(f"  export: {summary['use']['export']}")
        print(f"  run:    {summary['use']['variant']}")
    print(f"results: {args.out} (search.json, results.csv, charts/search.html; `python -m evals report {args.out}`)")
    return 0


def register(sub) -> None:
    """Add the `matformer` command group to the CLI."""
    parser = sub.add_parser("matformer", help="MatFormer Mix-n-Match: preset sizes, custom slice sizes, slice export")
    group = parser.add_subparsers(dest="matformer_command", required=True)

    p = group.add_parser("presets", help="every MatFormer Lab preset that fits the model, with its size (mini: its own measured ladder)")
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

    p = group.add_parser("search", help="find the best slice under a budget, measured elastically on a task's dev split")
    p.add_argument("--model", required=True, help="the parent: tiny, mini, e4b-shape, google/gemma-3n-E4B-it, a folder, ...")
    p.add_argument("--task", required=True, help="an evals task (builtin_mc, builtin_short_answer, ...; its dev half is used) or 'agreement' (synthetic: agreement with the parent)")
    p.add_argument("--max-effective-params", default=None, help="budget: effective parameters, e.g. 1.9e9 or 1.9B")
    p.add_argument("--max-memory", default=None, help="budget: bytes of the slice's weights on its own, e.g. 4GiB")
    p.add_argument("--min-tokens-per-s", type=float, default=None, help="budget: decode tokens/s (measured on this machine)")
    p.add_argument("--budget-like", default=None, help="budget: the effective parameters of this preset or slice (e.g. E2B), which is also a seed")
    p.add_argument("--max-evals", type=int, default=40, help="at most this many slices evaluated (seeds included)")
    p.add_argument("--limit", type=int, default=None, help="first N dev examples per evaluation")
    p.add_argument("--widths", default=None, help="allowed FFN widths, comma-separated (default: the presets' widths, else 1/4..1 of each layer's)")
    p.add_argument("--block-size", type=int, default=None, help="layers per block of the block-level moves (default: one attention period)")
    p.add_argument("--seed", action="append", help="an extra starting slice (a preset or ffn=...;skip=...); repeatable")
    p.add_argument("--fields", default=None, help="other Variant fields of the parent, e.g. 'towers=text attn=eager'")
    p.add_argument("--dtype", default=None, help="the parent's dtype (default: bfloat16; float32 for tiny)")
    p.add_argument("--no-speed", action="store_true", help="skip the short decode per slice (no tokens/s column)")
    p.add_argument("--out", default="runs/matformer-search", help="results folder (search.json, results.csv, charts/)")
    p.set_defaults(handler=_search)
