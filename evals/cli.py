"""`python -m evals list | run | report | diff | rerun`: the evaluation bench from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from g3n_core import RemoteVariant, Variant, parse_variant_spec
from g3n_core.cli import run_handler
from g3n_core.knobs import spec_help
from g3n_core.errors import EvalError
from g3n_core.settings_args import add_settings_args, settings_from_args
from g3n_core.variant import variant_from_dict

from .engines import ENGINES, RaySettings


def read_variants(items: list[str]) -> list[Variant | RemoteVariant]:
    """Variants from specs ('tiny attn=eager', 'openai:http://HOST:PORT/v1 model=NAME') and JSON / JSONL files of their dicts."""
    variants: list[Variant | RemoteVariant] = []
    for item in items:
        path = Path(item)
        if path.suffix in (".json", ".jsonl") and path.is_file():
            text = path.read_text()
            if path.suffix == ".jsonl":
                data = [json.loads(line) for line in text.splitlines() if line.strip()]
            else:
                loaded = json.loads(text)
                data = loaded if isinstance(loaded, list) else [loaded]
            variants += [variant_from_dict(d) for d in data]
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
    for suite in SUITES[:-1]:
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

    from .engines import make_engine
    from .measure import MeasureSettings
    from .report import comparison_table
    from .runner import run

    if args.threads:
        torch.set_num_threads(args.threads)
    variants = read_variants(args.variants)
    measures = [m for m in (args.measure or "").split(",") if m]
    settings = MeasureSettings(prompt_tokens=args.prompt_tokens, new_tokens=args.new_tokens, repeats=args.repeats, kv_context=args.kv_context)
    engine = make_engine(args.engine, settings_from_args(RaySettings, args))
    bar, update = _progress_bar()
    try:
        frame = run(variants, args.tasks, args.out, measures=measures, limit=args.limit, data_dir=args.data_dir, measure_settings=settings, seed=args.seed, progress=update,
                    engine=engine, command=args.command_line)
    finally:
        bar.close()
    print(comparison_table(frame).T.to_string())
    print(f"results: {Path(args.out) / 'results.csv'} ({len(frame)} rows); the verdict: python -m evals report {args.out}")
    errors = frame[frame["status"] == "error"]
    for _, row in errors.iterrows():
        print(f"error: {row['variant']} · {row['task']}: {row['note']}", file=sys.stderr)
    return 1 if len(errors) else 0


def cmd_report(args: argparse.Namespace) -> int:
    """Print the verdict lines and the comparison table of a run folder; write verdict.md and the charts."""
    from .report import build_report, comparison_table, save_report

    report = build_report(args.dir, args.baseline, args.against)
    paths = save_report(report)
    for line in report.verdict_lines() or ["(nothing to compare: fewer than two variants with results)"]:
        print(line)
    print()
    print(comparison_table(report.frame).T.to_string())
    print()
    for line in report.manifest:
        print(line)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _print_disagreement(d, a, b) -> None:
    side = {"a": f"  [{a} better]", "b": f"  [{b} better]"}.get(d.better, "")
    print(f"{d.task} · {d.example_id}{side}")
    prompt = d.prompt.strip().replace("\n", "\n          ")
    print(f"  prompt: {prompt}")
    for kind, path in d.media.items():
        print(f"  {kind}: {path}")
    print(f"  reference: {d.reference}")
    for name, text, score in ((a, d.answer_a, d.score_a), (b, d.answer_b, d.score_b)):
        scored = f"  ({d.metric} {score:g})" if score is not None else ""
        print(f"  {name}: {text!r}{scored}")


def cmd_diff(args: argparse.Namespace) -> int:
    """List the examples where two variants of a run answer differently."""
    from .diff import disagreements, find_side, sides
    from .paired import primary_metrics
    from .results import load_results

    frame = load_results(args.dir)
    found = sides(args.dir, frame)
    a, b = find_side(found, args.a), find_side(found, args.b)
    tasks = [t for t in dict.fromkeys(frame["task"]) if not str(t).startswith("measure:")]
    if args.task:
        if args.task not in tasks:
            raise EvalError(f"task {args.task!r} is not in this run; its tasks are {', '.join(tasks)}")
        tasks = [args.task]
    directed = frame.dropna(subset=["higher_is_better"]).drop_duplicates("metric")
    higher = dict(zip(directed["metric"], directed["higher_is_better"].astype(bool)))
    total = 0
    summary = []
    for task in tasks:
        metrics = primary_metrics(task, list(dict.fromkeys(frame[frame["task"] == task]["metric"])))
        listed = disagreements(a, b, task, metrics, higher, only=args.only.replace("-", "_"))
        total += len(listed)
        if args.json:
            for d in listed:
                print(json.dumps(d.to_dict()))
            continue
        for d in listed:
            _print_disagreement(d, a.label, b.label)
        wins = sum(d.better == "a" for d in listed), sum(d.better == "b" for d in listed)
        summary.append(f"{task}: {len(listed)} differing ({a.label} better on {wins[0]}, {b.label} better on {wins[1]})")
    if not args.json:
        print("\n".join(summary) if summary else "no tasks in this run")
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    """Repeat a run from its manifest into a new folder, then compare the two (same accuracy expected on the same machine)."""
    import time

    import torch

    from .manifest import read_manifest, rerun_arguments
    from .report import build_report, reproduction_mismatches, save_report
    from .results import load_results
    from .runner import run

    source = Path(args.dir)
    options = rerun_arguments(read_manifest(source))
    out = Path(args.out) if args.out else source.with_name(f"{source.name}-rerun-{time.strftime('%Y%m%d-%H%M%S')}")
    if out.resolve() == source.resolve():
        raise EvalError("--out must be a new folder: a run repeated into its own folder would only resume it")
    threads = options.pop("threads")
    if threads:
        torch.set_num_threads(int(threads))
    bar, update = _progress_bar()
    try:
        run(**options, out_dir=out, progress=update, command=args.command_line)
    finally:
        bar.close()
    report = build_report(out, against=source)
    save_report(report)
    for line in report.verdict_lines():
        print(line)
    compared, changed = reproduction_mismatches(load_results(source), report.frame)
    print(f"rerun: {out}")
    if changed:
        print(f"NOT reproduced: {len(changed)} of {compared} accuracy numbers differ:", *changed, sep="\n  ", file=sys.stderr)
        return 1
    print(f"reproduced: all {compared} accuracy numbers identical")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `python -m evals`."""
    parser = argparse.ArgumentParser(prog="python -m evals", description="Compare Gemma 3n variants for accuracy, latency and memory.")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="tasks, suites and measurements")
    listing.add_argument("--data-dir", help="local copies of the standard benchmarks (dataset folders)")
    listing.set_defaults(handler=cmd_list)

    running = sub.add_parser("run", help="run variants x tasks x measurements into a results folder (resumes)")
    running.add_argument("--variants", nargs="+", required=True, metavar="FILE_OR_SPEC", help=spec_help() + "; or 'openai:http://HOST:PORT/v1 model=NAME' for an OpenAI-compatible server; or JSON/JSONL files of their dicts")
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
    running.add_argument("--engine", choices=ENGINES, default="local", help="where units run: this process, or actors on a Ray cluster (default %(default)s)")
    add_settings_args(running.add_argument_group("Ray engine (--engine ray)"), RaySettings)
    running.set_defaults(handler=cmd_run)

    reporting = sub.add_parser("report", help="print the verdict and the comparison table; write verdict.md and HTML charts")
    reporting.add_argument("dir", help="a results folder written by `run`")
    reporting.add_argument("--baseline", help="the variant the others are compared with (default: the first; a unique part of its name is enough)")
    reporting.add_argument("--against", metavar="OTHER_RUN", help="compare each variant with itself in another run (e.g. the run a rerun repeated)")
    reporting.set_defaults(handler=cmd_report)

    diffing = sub.add_parser("diff", help="list the examples where two variants answer differently")
    diffing.add_argument("dir", help="a results folder written by `run`")
    diffing.add_argument("a", help="variant A (its name in the table, or a unique part of it)")
    diffing.add_argument("b", help="variant B")
    diffing.add_argument("--task", help="only this task")
    diffing.add_argument("--only", choices=("all", "a-better", "b-better"), default="all", help="a-better: A right / B wrong (A scores higher); b-better: the reverse")
    diffing.add_argument("--json", action="store_true", help="one JSON object per differing example")
    diffing.set_defaults(handler=cmd_diff)

    rerunning = sub.add_parser("rerun", help="repeat a run from its manifest.json, then compare the two runs")
    rerunning.add_argument("dir", help="a results folder with a manifest.json")
    rerunning.add_argument("--out", help="the new results folder (default: <dir>-rerun-<time>)")
    rerunning.set_defaults(handler=cmd_rerun)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (g3n_core's error handling: typed errors print one line)."""
    args = build_parser().parse_args(argv)
    args.command_line = ["python", "-m", "evals", *(sys.argv[1:] if argv is None else argv)]  # recorded in manifest.json
    return run_handler(args)
