"""`python -m evals list | run | report`: the evaluation bench from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from g3n_core import Variant, parse_variant_spec
from g3n_core.cli import run_handler
from g3n_core.errors import EvalError


def read_variants(items: list[str]) -> list[Variant]:
    """Variants from specs ('tiny attn=eager') and JSON / JSONL files of Variant dicts."""
    variants: list[Variant] = []
    for item in items:
        path = Path(item)
        if path.suffix in (".json", ".jsonl") and path.is_file():
            text = path.read_text()
            if path.suffix == ".jsonl":
                data = [json.loads(line) for line in text.splitlines() if line.strip()]
            else:
                loaded = json.loads(text)
                data = loaded if isinstance(loaded, list) else [loaded]
            variants += [Variant.from_dict(d) for d in data]
        else:
            variants.append(parse_variant_spec(item))
    if len(set(variants)) != len(variants):
        raise EvalError("the same variant is listed twice; each variant runs once per run")
    return variants


def cmd_list(args: argparse.Namespace) -> int:
    """Print the tasks, suites and measurements."""
    from .measure import MEASURES
    from .tasks import SUITES, all_tasks

    tasks = all_tasks(args.data_dir)
    width = max(len(n) for n in tasks)
    for suite in ("builtin", "standard"):
        print(f"{suite} suite:")
        for name, task in tasks.items():
            if task.suite == suite:
                needs = f" [needs {', '.join(task.towers)}]" if task.towers else ""
                print(f"  {name:<{width}}  {task.description}{needs}  (licence: {task.licence})")
    print(f"suites: {', '.join(SUITES)}")
    print(f"measurements: {', '.join(MEASURES)}")
    return 0


def _progress_bar():
    from tqdm import tqdm

    bar = tqdm(total=1000, unit="‰", bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")

    def update(fraction: float, message: str) -> None:
        bar.n = int(fraction * 1000)
        bar.set_postfix_str(message, refresh=False)
        bar.refresh()

    return bar, update


def cmd_run(args: argparse.Namespace) -> int:
    """Run the matrix, print the comparison table."""
    import torch

    from .measure import MeasureSettings
    from .report import comparison_table
    from .runner import RUN_LOG, run

    if args.threads:
        torch.set_num_threads(args.threads)
    variants = read_variants(args.variants)
    measures = [m for m in (args.measure or "").split(",") if m]
    settings = MeasureSettings(prompt_tokens=args.prompt_tokens, new_tokens=args.new_tokens, repeats=args.repeats, kv_context=args.kv_context)
    run_log = Path(args.out) / RUN_LOG
    seen = run_log.stat().st_size if run_log.is_file() else 0
    bar, update = _progress_bar()
    try:
        frame = run(variants, args.tasks, args.out, measures=measures, limit=args.limit, data_dir=args.data_dir, measure_settings=settings, seed=args.seed, progress=update)
    finally:
        bar.close()
    print(comparison_table(frame).T.to_string())
    if run_log.is_file():  # what was loaded (N slices of one parent: one load, N elastic views)
        with open(run_log, encoding="utf-8") as file:
            file.seek(seen)
            for line in file.read().splitlines():
                print(f"model cache: {line.split(' ', 1)[-1]}")
    print(f"results: {Path(args.out) / 'results.csv'} ({len(frame)} rows)")
    errors = frame[frame["status"] == "error"]
    for _, row in errors.iterrows():
        print(f"error: {row['variant']} · {row['task']}: {row['note']}", file=sys.stderr)
    return 1 if len(errors) else 0


def cmd_report(args: argparse.Namespace) -> int:
    """Print the comparison table of a run folder and write its charts."""
    from .report import comparison_table, write_report
    from .results import load_results

    print(comparison_table(load_results(args.dir)).T.to_string())
    for name, path in write_report(args.dir).items():
        print(f"{name}: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `python -m evals`."""
    parser = argparse.ArgumentParser(prog="python -m evals", description="Compare Gemma 3n variants for accuracy, latency and memory.")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="tasks, suites and measurements")
    listing.add_argument("--data-dir", help="local copies of the standard benchmarks (dataset folders)")
    listing.set_defaults(handler=cmd_list)

    running = sub.add_parser("run", help="run variants x tasks x measurements into a results folder (resumes)")
    running.add_argument("--variants", nargs="+", required=True, metavar="FILE_OR_SPEC", help="'tiny attn=eager sparsity=off' specs or JSON/JSONL files of Variant dicts")
    running.add_argument("--tasks", nargs="+", default=[], metavar="NAME", help="task names or suites (builtin, standard, all)")
    running.add_argument("--out", required=True, help="results folder; running again with the same folder resumes")
    running.add_argument("--limit", type=int, help="first N examples of each task")
    running.add_argument("--measure", default="", help="comma-separated: latency,memory,sparsity")
    running.add_argument("--data-dir", help="local copies of the standard benchmarks instead of the hub")
    running.add_argument("--seed", type=int, default=0)
    running.add_argument("--threads", type=int, help="torch CPU threads (1 is often fastest for tiny on a busy machine)")
    running.add_argument("--prompt-tokens", type=int, default=128, help="latency: prompt length")
    running.add_argument("--new-tokens", type=int, default=32, help="latency: tokens decoded")
    running.add_argument("--repeats", type=int, default=5, help="latency: timed repeats after one warm-up")
    running.add_argument("--kv-context", type=int, default=1024, help="memory: context length for the KV-cache size and peak")
    running.set_defaults(handler=cmd_run)

    reporting = sub.add_parser("report", help="print the comparison table and write HTML charts")
    reporting.add_argument("dir", help="a results folder written by `run`")
    reporting.set_defaults(handler=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (g3n_core's error handling: typed errors print one line)."""
    return run_handler(build_parser().parse_args(argv))
