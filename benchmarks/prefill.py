"""Prefill speed: one forward pass over a prompt, plain transformers against workbench variants, in one run.

    python -m benchmarks.prefill --model e2b-shape --lengths 128 512 [--variants "prepack=true"]

Prefill reads every weight once for the whole prompt, so it is compute-bound where decode is
memory-bound: the features that help decode (sparse FFN, packed weights) are checked here not to
hurt it. Rounds are interleaved; medians and per-round ratios are printed and written as JSON.
"""

from __future__ import annotations

import argparse
import gc

import torch

from benchmarks.decode import PLAIN, variant_of
from benchmarks.plain import fixed_prompt, load_plain, runnable
from benchmarks.report import machine, write_result
from benchmarks.timing import median, paired_ratio
from evals.measure.common import timed
from g3n_core import load_model

CPU_VARIANTS = ("ple=mmap prepack=true", "ple=mmap sparse_ffn=true prepack=true", "ple=mmap sparse_ffn=true quant=int8")
GPU_VARIANTS = ("attn=eager", "kv_cache=static")


def time_prefill(model, ids: torch.Tensor) -> float:
    """Seconds for one forward pass over `ids` that fills a cache and keeps the last logits, as generate's first step does."""
    with torch.inference_mode():
        return timed(ids.device, lambda: model(ids, use_cache=True, logits_to_keep=1))[0]


def time_pair(plain, model, ids: torch.Tensor, rounds: int) -> tuple[dict, list[float]]:
    """Prefill tokens/s of a variant and of plain transformers, alternating; returns the variant's row and plain's speeds."""
    length = ids.shape[1]
    time_prefill(plain, ids)
    time_prefill(model, ids)  # warm-up
    ours, base = [], []
    for round_index in range(rounds):
        pair = [(base, plain), (ours, model)]
        for speeds, runner in pair if round_index % 2 == 0 else pair[::-1]:
            speeds.append(length / time_prefill(runner, ids))
    return {"tokens_per_s": median(ours), "rounds": ours, "ratio_to_plain": paired_ratio(ours, base)}, base


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="e2b-shape")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--attn", default="sdpa")
    parser.add_argument("--variants", nargs="*", default=None)
    parser.add_argument("--lengths", nargs="*", type=int, default=[128, 512])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    asked = list(args.variants if args.variants is not None else (GPU_VARIANTS if args.device.startswith("cuda") else CPU_VARIANTS))
    specs, _ = runnable(args.model, args.dtype, args.device, asked, args.attn)
    info = machine()
    print(f"machine: {info['nproc']} cores, load {info['loadavg_1m']:.1f}" + (f", {info['gpu']}" if "gpu" in info else ""))
    plain = load_plain(args.model, args.dtype, args.device, args.attn)
    prompts = {length: fixed_prompt(length, device=args.device) for length in args.lengths}
    rows: dict = {length: {} for length in args.lengths}
    plain_rounds: dict = {length: [] for length in args.lengths}
    for spec in specs:  # one variant in memory at a time, beside plain transformers
        loaded = load_model(variant_of(args, spec))
        for length, ids in prompts.items():
            rows[length][spec], base = time_pair(plain, loaded.model, ids, args.rounds)
            plain_rounds[length] += base
        del loaded
        gc.collect()
    for length in args.lengths:
        rows[length] = {PLAIN: {"tokens_per_s": median(plain_rounds[length]), "ratio_to_plain": 1.0}, **rows[length]}
        print(f"\n== prefill of {length} tokens (median tokens/s; ratio = median of per-round ratios)")
        for name, row in rows[length].items():
            print(f"{name:48s} {row['tokens_per_s']:9.1f} tokens/s  x{row['ratio_to_plain']:.2f}")
    print(f"\nwrote {write_result('prefill', {'model': args.model, 'dtype': args.dtype, 'device': args.device, 'variants': specs, 'rows': rows}, args.out)}")


if __name__ == "__main__":
    main()
