"""Elastic MatFormer slices against the same slices loaded on their own, side by side in one run.

    python -m benchmarks.elastic --model e2b-shape                    # the CPU figures of the benchmark README
    python -m benchmarks.elastic --model tiny --dtype float32 --rounds 2 --new-tokens 16
    python -m benchmarks.elastic --model e4b-shape --device cuda --no-standalone   # gpu_check: the 16 Lab presets

Every slice comes through `ModelCache.get`, the path chat, evals and benchmarks take. Prints:
1. memory: resident set (GPU: allocated bytes) after the parent loads, then after each slice of the
   ladder (the Lab presets on E4B, mini's own on mini, a width/skip ladder elsewhere) is served and
   has decoded a few tokens; the largest over the parent's (target: flat, <= +2%);
2. switching: the first use of each slice (its Variant made and validated, its view built) and
   switching between two slices already used, request after request (target < 10 ms);
3. the down_proj layout choice: `F.linear` on a column prefix read in place (a strided view) against
   the same prefix copied contiguous, at the parent's decode shape;
4. decode tokens/s of one slice elastic and loaded on its own (`load_model` of the slice: its weights
   cut and copied contiguous, what an export holds), in alternating rounds with the paired ratio
   (target >= 0.90), and whether their greedy tokens are identical.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time

import psutil
import torch
import torch.nn.functional as F

from benchmarks.plain import fixed_prompt
from benchmarks.report import available_memory_gb, machine, result_path, write_result
from benchmarks.timing import median, paired_ratio, timed_generate
from evals.measure.common import synchronize
from g3n_core import ModelCache, load_model, parse_variant_spec
from g3n_core.matformer.presets import presets_for
from g3n_core.matformer.slicing import text_model
from g3n_core.matformer.spec import MatformerSlice
from g3n_core.sources import classify, read_config

SWITCHES = 200  # alternating requests between two used slices


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="e2b-shape", help="the parent: tiny, e2b-shape, e4b-shape, a hub id or a folder")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--features", default="ple=mmap", help="Variant fields of the parent and every slice (CPU default: ple=mmap)")
    parser.add_argument("--slice", default=None, help="the slice of the decode comparison (a preset or ffn=...;skip=...); default: half width")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="alternating decode rounds; medians are reported")
    parser.add_argument("--no-standalone", action="store_true", help="skip the decode comparison (no second model in memory)")
    parser.add_argument("--out", default=None, help="folder for the JSON result (default results/)")
    return parser.parse_args(argv)


def slice_ladder(model: str) -> list[MatformerSlice]:
    """The presets that fit the parent (the Lab's on E4B, mini's ladder on mini), else 3/4, 1/2, 1/4 widths and half width without a third of the KV-shared layers."""
    text = read_config(classify(model)).text_config
    fitting = [preset.to_slice() for preset in presets_for(model)]
    if fitting:
        return fitting
    width = max(text.intermediate_size)
    shared = [i for i, mode in enumerate(text.kv_sharing_modes) if mode == "reuse"]
    skip = tuple(shared[: len(shared) // 3])
    ladder = [MatformerSlice(ffn=(width * k // 4,) * text.num_hidden_layers, preset=f"ffn {name}") for k, name in ((3, "3/4"), (2, "1/2"), (1, "1/4"))]
    ladder.append(MatformerSlice(ffn=(width // 2,) * (text.num_hidden_layers - len(skip)), skip=skip, preset="ffn 1/2, skip " + ",".join(map(str, skip))))
    return ladder


def resident_bytes(device: str) -> int:
    """Process RSS on the CPU; the allocator's allocated bytes on a GPU (after a collection)."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        return torch.cuda.memory_allocated()
    return psutil.Process().memory_info().rss


def measure_memory_and_switching(cache: ModelCache, parent_variant, ladder: list, ids: torch.Tensor, args) -> dict:
    """Serve every slice of the ladder from the loaded parent: memory after each, first-use and switch times."""
    start = time.perf_counter()
    parent = cache.get(parent_variant)
    print(f"parent {parent_variant.name} loaded in {time.perf_counter() - start:.1f} s", flush=True)
    timed_generate(parent.model, ids, 4, **parent.extras.get("generate_kwargs", {}))
    base = resident_bytes(args.device)
    rows = []
    for slc in ladder:
        synchronize(torch.device(args.device))
        t0 = time.perf_counter()
        variant = parent_variant.replace(matformer=slc)  # what a request does first: its Variant, validated
        t1 = time.perf_counter()
        view = cache.get(variant)
        variant_ms, first_use_ms = 1e3 * (t1 - t0), 1e3 * (time.perf_counter() - t0)
        tokens = timed_generate(view.model, ids, 4, **view.extras.get("generate_kwargs", {})).tokens
        held = resident_bytes(args.device)
        rows.append({"slice": slc.label, "first_use_ms": first_use_ms, "variant_ms": variant_ms, "resident_bytes": held, "over_parent": held / base - 1, "tokens": tokens})
        print(f"  {slc.label:28s} first use {first_use_ms:7.2f} ms (its Variant {variant_ms:5.2f} ms)   resident {held / 2**30:7.3f} GiB ({100 * (held / base - 1):+.2f}% of the parent's)", flush=True)
    a, b = (parent_variant.replace(matformer=s) for s in ladder[:2]) if len(ladder) > 1 else (parent_variant, parent_variant.replace(matformer=ladder[0]))
    cache.get(a), cache.get(b)
    switches = []
    for i in range(SWITCHES):
        t0 = time.perf_counter()
        cache.get(a if i % 2 else b)
        switches.append(1e6 * (time.perf_counter() - t0))
    worst = max(rows, key=lambda r: r["over_parent"])
    return {
        "parent_resident_bytes": base,
        "slices": rows,
        "max_over_parent": worst["over_parent"],
        "switch_us_median": statistics.median(switches),
        "switch_us_max": max(switches),
        "first_use_ms_median": median([r["first_use_ms"] for r in rows]),
        "first_use_ms_max": max(r["first_use_ms"] for r in rows),
        "views": len(cache.views()),
    }


def time_down_proj(parent_model, width: int, device: str, dtype: torch.dtype, repeats: int = 50) -> dict:
    """One-token down_proj of the parent's first layer: a column prefix read in place vs copied contiguous."""
    weight = text_model(parent_model).layers[0].mlp.down_proj.weight.detach()
    strided = weight[:, :width]
    contiguous = strided.contiguous()
    x = torch.randn(1, width, dtype=dtype, device=device)
    times = {}
    for name, w in (("strided_view", strided), ("contiguous_copy", contiguous)):
        for _ in range(5):
            F.linear(x, w)
        synchronize(torch.device(device))
        t0 = time.perf_counter()
        for _ in range(repeats):
            F.linear(x, w)
        synchronize(torch.device(device))
        times[name] = 1e3 * (time.perf_counter() - t0) / repeats
    same = torch.equal(F.linear(x, strided), F.linear(x, contiguous))
    return {"shape": list(strided.shape), **{f"{k}_ms": v for k, v in times.items()}, "ratio": times["contiguous_copy"] / times["strided_view"], "bitwise_equal": same}


def compare_decode(cache: ModelCache, variant, ids: torch.Tensor, args) -> dict:
    """Decode tokens/s of `variant`'s slice served elastically and loaded on its own, alternating round by round."""
    view = cache.get(variant)
    print(f"\n== loading {variant.name} on its own ...", flush=True)
    start = time.perf_counter()
    alone = load_model(variant, lambda fraction, message: print(f"  [{time.perf_counter() - start:6.1f} s] {message}", flush=True))
    runners = {"elastic": (view.model, view.extras.get("generate_kwargs", {})), "alone": (alone.model, alone.extras.get("generate_kwargs", {}))}
    for model, kwargs in runners.values():
        timed_generate(model, ids, min(8, args.new_tokens), **kwargs)  # warm-up
    speeds: dict[str, list[float]] = {"elastic": [], "alone": []}
    tokens: dict[str, list[int]] = {}
    for round_index in range(args.rounds):
        order = list(runners) if round_index % 2 == 0 else list(runners)[::-1]
        for who in order:
            model, kwargs = runners[who]
            timing = timed_generate(model, ids, args.new_tokens, **kwargs)
            speeds[who].append(timing.decode_tokens_per_s)
            tokens[who] = timing.tokens
        print(f"  round {round_index + 1}: elastic {speeds['elastic'][-1]:7.2f}  alone {speeds['alone'][-1]:7.2f} tokens/s", flush=True)
    del alone, runners
    gc.collect()
    return {
        "slice": variant.matformer.label,
        "elastic_tokens_per_s": median(speeds["elastic"]),
        "alone_tokens_per_s": median(speeds["alone"]),
        "ratio": paired_ratio(speeds["elastic"], speeds["alone"]),
        "rounds": speeds,
        "tokens_identical": tokens["elastic"] == tokens["alone"],
    }


def print_summary(result: dict) -> None:
    """The figures against their targets."""
    mem = result["memory"]
    unit = "allocated on the GPU" if result["device"].startswith("cuda") else "process RSS"
    print(f"\n== headline ({result['model']} {result['dtype']} on {result['device']}, {mem['views']} elastic slices)")
    print(f"   memory: {unit} with every slice served {100 * mem['max_over_parent']:+.2f}% of the parent's alone (target <= +2%)")
    print(f"   switching between two used slices: median {mem['switch_us_median']:.1f} us, max {mem['switch_us_max']:.1f} us (target < 10 ms); "
          f"first use of a slice (Variant made, view built): median {mem['first_use_ms_median']:.1f} ms, max {mem['first_use_ms_max']:.1f} ms")
    down = result["down_proj"]
    print(f"   down_proj prefix {down['shape']}: strided view {down['strided_view_ms']:.3f} ms, contiguous copy {down['contiguous_copy_ms']:.3f} ms "
          f"(view at x{down['ratio']:.2f} of the copy's speed), outputs {'bitwise equal' if down['bitwise_equal'] else 'differ'}")
    decode = result.get("decode")
    if decode:
        print(f"   decode [{decode['slice']}]: elastic {decode['elastic_tokens_per_s']:.2f} tokens/s, loaded on its own {decode['alone_tokens_per_s']:.2f} "
              f"tokens/s: x{decode['ratio']:.2f} (target >= x0.90); greedy tokens {'identical' if decode['tokens_identical'] else 'DIFFER'}")


def main(argv: list[str] | None = None) -> None:
    """Run the measurements in order and write the JSON result."""
    args = parse_args(argv)
    info = machine()
    print(f"machine: {info['nproc']} cores ({info['cpu']}), load {info['loadavg_1m']:.1f}, torch threads {info['torch_threads']}; "
          f"available memory {available_memory_gb():.1f} GB")
    parent_variant = parse_variant_spec(f"{args.model} dtype={args.dtype} device={args.device} towers=text {args.features}")
    ladder = slice_ladder(args.model)
    ids = fixed_prompt(args.prompt_tokens, device=args.device)
    cache = ModelCache(budget_bytes=2**62)  # one parent; the views need no budget
    result: dict = {"model": args.model, "dtype": args.dtype, "device": args.device, "features": args.features}
    path = result_path("elastic", args.out)
    print(f"\n== memory and switching over {len(ladder)} slices", flush=True)
    result["memory"] = measure_memory_and_switching(cache, parent_variant, ladder, ids, args)
    chosen = parse_variant_spec(f"{parent_variant.model} matformer={args.slice}").matformer if args.slice else None
    target = parent_variant.replace(matformer=chosen or next((s for s in ladder if "1/2" in s.label or s.label == "E2B"), ladder[0]))
    width = min(target.matformer.ffn or [0]) or max(read_config(classify(args.model)).text_config.intermediate_size) // 2
    result["down_proj"] = time_down_proj(cache.get(parent_variant).model, width, args.device, getattr(torch, args.dtype))
    write_result("elastic", result, path=path)
    if not args.no_standalone:
        result["decode"] = compare_decode(cache, target, ids, args)
    print_summary(result)
    print(f"\nwrote {write_result('elastic', result, path=path)}")


if __name__ == "__main__":
    sys.exit(main())
