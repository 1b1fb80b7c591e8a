"""Does the slice found under a preset's budget hold up on the held-out half? Search on dev, score on test.

    python -m benchmarks.slice_search_check --model mini --task builtin_mc          # mini's half preset (its ladder names it)
    python -m benchmarks.slice_search_check --model tiny --task agreement --preset "ffn=256" --fields towers=text

Runs `matformer search` with the preset's effective parameters as the budget (the presets that fit
the parent are seeds, this one included, so it competes), then scores the found slice and the
preset on the task's `test` half, which the search never saw, side by side through the same model
cache (one parent load, elastic views). Prints, for both: the dev score, the test metric with its
standard error, effective parameters; the paired difference on test (95% interval, p; McNemar for
accuracy); the evaluations and wall time the search used; the checkpoint's version (mini is
retrained from time to time, so a figure names the weights it was measured on). Writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks.report import machine, write_result
from evals.paired import paired_test
from evals.slice_search import AGREEMENT, AgreementObjective, TaskObjective, run_search
from g3n_core import G3nError, ModelCache, SliceError, parse_variant_spec
from g3n_core.builtin.checkpoint import MARKER
from g3n_core.matformer.search import State, budget_from_texts
from g3n_core.sources import checkpoint_path, read_config


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--task", default=AGREEMENT)
    parser.add_argument("--preset", default=None, help="the preset (or slice) whose effective parameters are the budget; on mini default: the half preset of its ladder")
    parser.add_argument("--fields", default="", help="other Variant fields of the parent, e.g. 'towers=text dtype=float32'")
    parser.add_argument("--max-evals", type=int, default=40)
    parser.add_argument("--limit", type=int, default=None, help="first N examples of each half")
    parser.add_argument("--out", default="results/slice-search-check")
    return parser.parse_args(argv)


def default_preset(model: str) -> str:
    """The preset whose budget the check uses when none is given: mini's half preset (named once, in its ladder)."""
    if model != "mini":
        raise SliceError("give --preset (a preset or ffn=...;skip=... slice of the model) whose effective parameters are the budget")
    from g3n_core.matformer.mini_ladder import half_preset

    return half_preset().key


def checkpoint_version(parent) -> dict:
    """The checkpoint's own record of what it is (name, version) when it has one (the built-in models do)."""
    try:
        marker = checkpoint_path(parent.source) / MARKER
        record = json.loads(marker.read_text()) if marker.is_file() else {}
    except (G3nError, OSError, ValueError):  # e.g. a shape model has no folder; the check does not need one
        return {}
    return {key: record[key] for key in ("name", "version") if key in record}


def held_out(parent, task: str, slices: dict, cache: ModelCache, limit: int | None) -> dict:
    """Each named slice on the test half: its score, every metric with n and stderr, its per-example records."""
    if task == AGREEMENT:
        objective = AgreementObjective(parent, cache, limit, speed=None, split="test")
    else:
        objective = TaskObjective(task, cache, limit, speed=None, split="test")
    scores = {}
    for name, slc in slices.items():
        score = objective(parent.replace(matformer=slc)).score
        evaluated = objective.log[-1]
        metrics = {m: {"value": value, "n": n, "stderr": stderr} for m, value, n, stderr in evaluated.metrics}
        scores[name] = {"score": score, "metric": objective.metric, "metrics": metrics, "samples": evaluated.samples}
    return scores


def paired(scores: dict, metric: str) -> dict | None:
    """found against preset on the same test examples (None when the objective keeps no per-example records)."""
    preset, found = scores["preset"]["samples"], scores["found"]["samples"]
    if not preset or not found:
        return None
    by_id = {s["example_id"]: s for s in found}
    test = paired_test([(s["example_id"], s, by_id[s["example_id"]]) for s in preset if s["example_id"] in by_id], metric)
    return None if test is None else {key: value for key, value in test.__dict__.items()}


def _figure(entry: dict) -> str:
    """'0.6400 +- 0.0686' of the headline metric (the score alone where it has no stderr)."""
    metric = entry["metrics"].get(entry["metric"], {})
    if metric.get("stderr") is None:
        return f"{entry['score']:.4f}"
    return f"{metric['value']:.4f} +- {metric['stderr']:.4f}"


def main(argv: list[str] | None = None) -> None:
    """Search on dev, then score the found slice and the preset on test."""
    args = parse_args(argv)
    parent = parse_variant_spec(f"{args.model} {args.fields}")
    args.preset = args.preset or default_preset(parent.model)
    preset = parse_variant_spec(f"{args.model} matformer={args.preset}").matformer
    budget = budget_from_texts(parent.model, like=args.preset)
    cache = ModelCache()
    start = time.perf_counter()
    result, summary = run_search(parent, args.task, budget, Path(args.out), max_evals=args.max_evals, limit=args.limit,
                                 seeds=[preset], cache=cache, measure_speed=False)  # fmt: skip
    search_s = time.perf_counter() - start
    if result.best is None:
        print("no slice under the budget was found", file=sys.stderr)
        return
    found = result.best.slice
    parent_widths = tuple(int(w) for w in read_config(parent.source).text_config.intermediate_size)
    preset_point = next((p for p in result.points if State.of(p.slice, parent_widths) == State.of(preset, parent_widths)), None)
    if preset_point is None:  # seeds come first, so only a bound below the seed count leaves it out
        print(f"the preset was not evaluated within {args.max_evals} evaluations; raise --max-evals", file=sys.stderr)
        return
    start = time.perf_counter()
    scores = held_out(parent, args.task, {"found": found, "preset": preset}, cache, args.limit)
    test_s = time.perf_counter() - start
    comparison = paired(scores, scores["found"]["metric"])
    version = checkpoint_version(parent)
    print(f"\nparent {parent.name} ({', '.join(f'{k} {v}' for k, v in version.items()) or 'no version record'}), task {args.task}, "
          f"budget {budget.describe()} ({args.preset})")  # fmt: skip
    print(f"search: {result.evaluations} evaluations (at most {args.max_evals}) on the dev half in {search_s:.0f} s; the test half scored in {test_s:.0f} s")
    metric = scores["found"]["metric"]
    print(f"{'':8s} {'dev score':>10s} {'test ' + metric:>20s} {'effective':>11s}  slice")
    for name, point in (("found", result.best), ("preset", preset_point)):
        slc = point.slice
        print(f"{name:8s} {point.score:>10.4f} {_figure(scores[name]):>20s} {point.effective_params:>11,}  "
              f"{slc.label} ({point.origin}): ffn {slc.ffn} skip {slc.skip}")  # fmt: skip
    if comparison is not None:
        print(f"paired on {comparison['n']} test examples: found - preset = {comparison['diff']:+.4f} "
              f"(95% interval {comparison['low']:+.4f} .. {comparison['high']:+.4f}, p = {comparison['p']:.3f})")  # fmt: skip
    holds = scores["found"]["score"] >= scores["preset"]["score"]
    print(f"found >= preset on the held-out test half: {'yes' if holds else 'NO'}")
    info = machine()
    print(f"machine: {info['nproc']} cores ({info['cpu']}), load {info['loadavg_1m']:.1f}")
    for entry in scores.values():
        entry.pop("samples")
    record = {"args": vars(args), "checkpoint": version, "search": summary, "search_wall_s": search_s, "test_wall_s": test_s,
              "test": scores, "paired": comparison, "found_at_least_preset": holds,
              "effective_params": {"found": result.best.effective_params, "preset": preset_point.effective_params}}  # fmt: skip
    path = write_result("slice-search-check", record, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
