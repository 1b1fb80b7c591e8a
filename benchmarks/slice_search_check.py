"""Does the slice found under a preset's budget hold up on the held-out half? Search on dev, score on test.

    python -m benchmarks.slice_search_check --model mini --task builtin_mc --preset <half preset>
    python -m benchmarks.slice_search_check --model tiny --task agreement --preset "ffn=256" --fields towers=text

Runs `matformer search` with the preset's effective parameters as the budget (the preset is a seed,
so it competes), then scores the found slice and the preset on the task's `test` half, which the
search never saw, side by side through the same model cache (one parent load, elastic views).
Prints both test scores and whether the found slice is at least as good; writes JSON.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.report import machine, write_result
from evals.slice_search import AGREEMENT, AgreementObjective, TaskObjective, run_search
from g3n_core import ModelCache, parse_variant_spec
from g3n_core.matformer.search import budget_from_texts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--task", default=AGREEMENT)
    parser.add_argument("--preset", required=True, help="the preset (or slice) whose effective parameters are the budget")
    parser.add_argument("--fields", default="", help="other Variant fields of the parent, e.g. 'towers=text dtype=float32'")
    parser.add_argument("--max-evals", type=int, default=40)
    parser.add_argument("--limit", type=int, default=None, help="first N examples of each half")
    parser.add_argument("--out", default="results/slice-search-check")
    return parser.parse_args(argv)


def test_scores(parent, task: str, slices: dict, cache: ModelCache, limit: int | None) -> dict:
    """The objective on the test half for each named slice."""
    if task == AGREEMENT:
        objective = AgreementObjective(parent, cache, limit, speed=None, split="test")
    else:
        objective = TaskObjective(task, cache, limit, speed=None, split="test")
    return {name: {"score": (m := objective(parent.replace(matformer=slc))).score, "metrics": m.metrics} for name, slc in slices.items()}


def main(argv: list[str] | None = None) -> None:
    """Search on dev, then score the found slice and the preset on test."""
    args = parse_args(argv)
    parent = parse_variant_spec(f"{args.model} {args.fields}")
    preset = parse_variant_spec(f"{args.model} matformer={args.preset}").matformer
    budget = budget_from_texts(parent.model, like=args.preset)
    cache = ModelCache()
    result, summary = run_search(parent, args.task, budget, Path(args.out), max_evals=args.max_evals, limit=args.limit,
                                 seeds=[preset], cache=cache, measure_speed=False)  # fmt: skip
    if result.best is None:
        print("no slice under the budget was found", file=sys.stderr)
        return
    found = result.best.slice
    scores = test_scores(parent, args.task, {"found": found, "preset": preset}, cache, args.limit)
    print(f"\nparent {parent.name}, task {args.task}, budget {budget.describe()} ({args.preset}), {result.evaluations} evaluations")
    print(f"{'':8s} {'dev score':>10s} {'test score':>11s}  slice")
    dev_preset = next(p.score for p in result.points if p.origin == "seed")
    print(f"{'found':8s} {result.best.score:>10.4f} {scores['found']['score']:>11.4f}  {found.label} ({result.best.origin}): ffn {found.ffn} skip {found.skip}")
    print(f"{'preset':8s} {dev_preset:>10.4f} {scores['preset']['score']:>11.4f}  {args.preset}")
    holds = scores["found"]["score"] >= scores["preset"]["score"]
    print(f"found >= preset on the held-out test half: {'yes' if holds else 'NO'}")
    info = machine()
    print(f"machine: {info['nproc']} cores ({info['cpu']}), load {info['loadavg_1m']:.1f}")
    path = write_result("slice-search-check", {"args": vars(args), "search": summary, "test": scores, "found_at_least_preset": holds}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
