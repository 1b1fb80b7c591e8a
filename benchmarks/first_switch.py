"""The first switch to a new elastic MatFormer slice, cheaply: its Variant made, then `ModelCache.get`.

    python -m benchmarks.first_switch --model e4b-shape                 # meta parent, the 15 Lab slices
    python -m benchmarks.first_switch --model mini --rounds 4
    python -m benchmarks.first_switch --model mini --against /tmp/old   # this tree against another, side by side

A first switch builds no tensors (a view shares the parent's), so a `*-shape` parent is built on
the meta device: the same module tree as the real weights, without 15 GB of them. Other models load
for real. Each round is a fresh process that loads the parent, then for each slice of the ladder
(`benchmarks.elastic.slice_ladder`) times making its Variant and its first `cache.get`, then 200
switches between two used slices. A switch that coincides with a full (generation-2) garbage
collection pays for it; those are counted apart, since any request can meet one.

`--against DIR` runs the same rounds with DIR's g3n_core (e.g. `git archive OLD | tar -x -C DIR`),
alternating with this tree's, and prints the ratio of medians: a before/after in one run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SWITCHES = 200
# a measuring process runs this file with the other tree first on sys.path (that tree may not have this script)
CHILD = "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="e4b-shape", help="the parent: a *-shape model (meta device), mini, tiny, a folder")
    parser.add_argument("--fields", default="dtype=bfloat16 towers=text", help="Variant fields of the parent and every slice")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per tree")
    parser.add_argument("--against", default=None, help="another source tree to measure alternately (before/after)")
    parser.add_argument("--out", default=None, help="folder for the JSON result (default results/)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # JSON slices: one measuring process
    return parser.parse_args(argv)


def measure(model: str, fields: str, slices: list[dict]) -> dict:
    """One process: load the parent, first switch to every slice, then switches between two used ones."""
    from g3n_core import MatformerSlice, ModelCache, parse_variant_spec
    from g3n_core.loading import LoadedModel

    parent = parse_variant_spec(f"{model} {fields}")
    if model.endswith("-shape"):
        from g3n_core.info import meta_model
        from g3n_core.sources import read_config

        def on_meta(variant, progress=None):
            built = meta_model(read_config(variant.source), text_only=variant.text_only)
            return LoadedModel(variant=variant, model=built, processor=None, config=built.config, random_weights=True, checkpoint=None,
                               load_seconds=0.0, lock=threading.Lock(), extras={})  # fmt: skip

        cache = ModelCache(budget_bytes=2**62, loader=on_meta)
    else:
        cache = ModelCache(budget_bytes=2**62)
    cache.get(parent)
    full_gcs, started = [], []
    gc.callbacks.append(lambda phase, info: started.append(time.perf_counter()) if phase == "start"
                        else info["generation"] == 2 and full_gcs.append(1e3 * (time.perf_counter() - started[-1])))  # fmt: skip
    rows, variants = [], []
    for data in slices:
        gcs = len(full_gcs)
        t0 = time.perf_counter()
        variant = parent.replace(matformer=MatformerSlice.from_dict(data))
        t1 = time.perf_counter()
        cache.get(variant)
        t2 = time.perf_counter()
        rows.append({"variant_ms": 1e3 * (t1 - t0), "get_ms": 1e3 * (t2 - t1), "total_ms": 1e3 * (t2 - t0), "full_gc": len(full_gcs) > gcs})
        variants.append(variant)
    switches = []
    for i in range(SWITCHES):
        t0 = time.perf_counter()
        cache.get(variants[i % 2])
        switches.append(1e6 * (time.perf_counter() - t0))
    return {"slices": rows, "switch_us_median": statistics.median(switches), "full_gc_ms": full_gcs, "views": len(cache.views())}


def run_round(tree: Path, args: argparse.Namespace, slices: list[dict]) -> dict:
    """One fresh process measuring with `tree`'s g3n_core."""
    env = dict(os.environ, PYTHONPATH=str(tree), HF_HUB_OFFLINE="1")
    command = [sys.executable, "-c", CHILD, str(Path(__file__).resolve()), "--model", args.model, "--fields", args.fields, "--child", json.dumps(slices)]
    done = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the measuring process in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(rounds: list[dict]) -> dict:
    """Medians over every first switch of every round; the ones without a full collection apart."""
    rows = [row for r in rounds for row in r["slices"]]
    quiet = [row for row in rows if not row["full_gc"]]
    return {
        "first_switches": len(rows),
        "variant_ms_median": statistics.median(r["variant_ms"] for r in rows),
        "get_ms_median": statistics.median(r["get_ms"] for r in rows),
        "total_ms_median": statistics.median(r["total_ms"] for r in rows),
        "total_ms_max_without_full_gc": max((r["total_ms"] for r in quiet), default=None),
        "total_ms_max": max(r["total_ms"] for r in rows),
        "with_full_gc": len(rows) - len(quiet),
        "full_gc_ms_median": statistics.median(ms for r in rounds for ms in r["full_gc_ms"]) if any(r["full_gc_ms"] for r in rounds) else None,
        "switch_us_median": statistics.median(r["switch_us_median"] for r in rounds),
    }


def main(argv: list[str] | None = None) -> None:
    """Measure this tree (and `--against`'s, alternately) and print the first-switch figures."""
    args = parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(args.model, args.fields, json.loads(args.child))))
        return
    from benchmarks.elastic import slice_ladder
    from benchmarks.report import machine, write_result

    slices = [slc.to_dict() for slc in slice_ladder(args.model)]
    trees = {"this tree": ROOT} | ({"against": Path(args.against).resolve()} if args.against else {})
    rounds: dict[str, list[dict]] = {name: [] for name in trees}
    for i in range(args.rounds):
        for name in list(trees) if i % 2 == 0 else list(trees)[::-1]:  # alternate which goes first
            rounds[name].append(run_round(trees[name], args, slices))
    info = machine()
    print(f"{(args.model + ' ' + args.fields).strip()}: {len(slices)} slices, {args.rounds} fresh processes per tree; "
          f"{info['nproc']} cores ({info['cpu']}), load {info['loadavg_1m']:.1f}")  # fmt: skip
    result = {"args": vars(args) | {"child": None}, "slices": slices, "trees": {k: str(v) for k, v in trees.items()}}
    for name, runs in rounds.items():
        s = result[name] = summarise(runs)
        tail = f"max {s['total_ms_max_without_full_gc']:.2f} ms without a full GC" if s["total_ms_max_without_full_gc"] is not None else ""
        gcs = f"; {s['with_full_gc']} met a full GC (median {s['full_gc_ms_median']:.0f} ms), max {s['total_ms_max']:.1f} ms" if s["with_full_gc"] else ""
        print(f"  {name:9s} first switch median {s['total_ms_median']:6.2f} ms (Variant {s['variant_ms_median']:.2f} + cache.get "
              f"{s['get_ms_median']:.2f}), {tail} over {s['first_switches']}{gcs}; used-slice switch {s['switch_us_median']:.1f} us")  # fmt: skip
    if args.against:
        ratio = result["against"]["total_ms_median"] / result["this tree"]["total_ms_median"]
        print(f"  first switch: this tree x{ratio:.1f} faster than {args.against} (ratio of medians)")
        result["against_over_this"] = ratio
    print(f"wrote {write_result('first-switch', result, args.out)}")


if __name__ == "__main__":
    sys.exit(main())
