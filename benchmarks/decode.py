"""Decode speed: plain transformers' model.generate against workbench variants, side by side in one run.

    python -m benchmarks.decode --model e2b-shape            # the CPU figures of the benchmark README
    python -m benchmarks.decode --model tiny --dtype float32 --rounds 1 --new-tokens 16 --no-memory

Prints, in this order: the machine; resident memory of plain transformers and of each variant
(one subprocess per model); the machine's read bandwidth (streaming and best matrix-vector product);
the greedy tokens and teacher-forced logits of every variant against plain transformers (and, as a
yardstick, plain transformers with eager attention against itself with sdpa); decode tokens/s over
interleaved rounds with the median ratio to plain transformers; the sparse layers' FFN time dense vs
sparse; bytes read per token and the fraction of the roofline reached. Writes everything as JSON.
"""

from __future__ import annotations

import argparse
import gc
import sys

import torch

from benchmarks.ffn_layers import time_ffn_layers
from benchmarks.fidelity import compare_logits, compare_tokens, teacher_forced_logits
from benchmarks.memory import compare_memory, print_memory
from benchmarks.plain import PLAIN, fixed_prompt, load_plain, runnable, variant_spec
from benchmarks.profiling import profile_decode
from benchmarks.report import available_memory_gb, machine, result_path, write_result
from benchmarks.timing import median, paired_ratio, timed_generate
from g3n_core import load_model, parse_variant_spec
from g3n_core import hardware
from g3n_core.sparsity import text_layers
from g3n_core.speed.roofline import Roofline, decode_bytes_per_token, measure_matvec, measure_stream_read

YARDSTICK = "plain transformers, eager attention (yardstick)"
CPU_VARIANTS = (  # a machine skips what it cannot run (prepack needs oneDNN bfloat16: AVX-512), one line each
    "ple=mmap fuse_linears=true hugepages=true",  # bit-identical on every CPU: the lossless candidate without oneDNN bf16
    "ple=mmap prepack=true fuse_linears=true hugepages=true",
    "ple=mmap prepack=true",
    "ple=mmap sparse_ffn=true",
    "ple=mmap sparse_ffn=true prepack=true",
    "ple=mmap sparse_ffn=true quant=int8",
)
GPU_VARIANTS = ("kv_cache=static", "kv_cache=static compile=true")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="e2b-shape", help="tiny, e2b-shape, e4b-shape, a hub id or a folder")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--attn", default="sdpa", help="attention of the baseline and of every variant that does not name one")
    parser.add_argument("--variants", nargs="*", default=None, help="Variant fields per variant, e.g. 'sparse_ffn=true ple=mmap'")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds; medians are reported")
    parser.add_argument("--forced-steps", type=int, default=16, help="decode steps of the teacher-forced logits comparison")
    parser.add_argument("--no-memory", action="store_true", help="skip the resident-memory subprocesses")
    parser.add_argument("--no-bandwidth", action="store_true", help="skip the bandwidth measurement (no roofline)")
    parser.add_argument("--profile", action="store_true", help="print torch.profiler's top operators per model")
    parser.add_argument("--out", default=None, help="folder for the JSON result (default results/)")
    return parser.parse_args(argv)


def variant_of(args: argparse.Namespace, spec: str):
    """The Variant a spec names, completed with the run's model, dtype, device, attention and text-only towers."""
    return parse_variant_spec(variant_spec(args.model, args.dtype, args.device, spec, args.attn))


def measure_bandwidth(args: argparse.Namespace, specs: list[str]) -> dict:
    """Streaming read and best matrix-vector product at the dtype (and in int8 when a variant uses it)."""
    dtype = getattr(torch, args.dtype)
    stream = measure_stream_read(args.device)
    matvec, kernel = measure_matvec(args.device, dtype)
    result = {"stream_gbps": stream, "matvec_gbps": matvec, "matvec_kernel": kernel}
    if any("quant=int8" in spec for spec in specs):
        result["int8_matvec_gbps"], result["int8_matvec_kernel"] = measure_matvec(args.device, dtype, int8=True)
    return result


def reference(plain, ids: torch.Tensor, args: argparse.Namespace) -> tuple[list[int], torch.Tensor]:
    """Plain transformers' greedy tokens and its teacher-forced logits on them."""
    tokens = timed_generate(plain, ids, args.new_tokens).tokens
    return tokens, teacher_forced_logits(plain, ids, tokens[: args.forced_steps])


def fidelity_of(model, kwargs: dict, ids: torch.Tensor, base: tuple[list[int], torch.Tensor], args: argparse.Namespace) -> dict:
    """Greedy tokens and teacher-forced logits of one model against plain transformers'."""
    base_tokens, base_logits = base
    tokens = timed_generate(model, ids, args.new_tokens, **kwargs).tokens
    logits = teacher_forced_logits(model, ids, base_tokens[: args.forced_steps], **kwargs)
    return {"tokens": compare_tokens(tokens, base_tokens), "logits": compare_logits(logits, base_logits)}


def time_against_plain(plain, model, kwargs: dict, ids: torch.Tensor, args: argparse.Namespace) -> tuple[dict, list[float], list[float]]:
    """Decode tokens/s of a variant and of plain transformers in alternating order, round after round."""
    timed_generate(model, ids, min(8, args.new_tokens), **kwargs)  # warm-up: page-ins, allocations, compilation
    speeds: dict[str, list[float]] = {"plain": [], "ours": []}
    first: dict[str, list[float]] = {"plain": [], "ours": []}
    for round_index in range(args.rounds):
        pair = [("plain", plain, {}), ("ours", model, kwargs)]
        for who, runner, extra in pair if round_index % 2 == 0 else pair[::-1]:
            timing = timed_generate(runner, ids, args.new_tokens, **extra)
            speeds[who].append(timing.decode_tokens_per_s)
            first[who].append(timing.prefill_s)
        print(f"  round {round_index + 1}: plain {speeds['plain'][-1]:6.2f}  ours {speeds['ours'][-1]:6.2f} tokens/s", flush=True)
    row = {"decode_tokens_per_s": median(speeds["ours"]), "rounds": speeds["ours"], "plain_rounds": speeds["plain"],
           "first_token_s": median(first["ours"]), "ratio_to_plain": paired_ratio(speeds["ours"], speeds["plain"])}
    return row, speeds["plain"], first["plain"]


def roofline_of(model, tokens_per_s: float, bandwidth: dict, int8: bool, args: argparse.Namespace) -> dict:
    """Bytes per token of a model and the fraction of both bandwidth bounds its decode speed reaches."""
    counted = decode_bytes_per_token(model, args.prompt_tokens + args.new_tokens // 2)
    prefix = "int8_" if int8 and "int8_matvec_gbps" in bandwidth else ""
    roof = Roofline(counted.total, bandwidth["stream_gbps"], bandwidth[prefix + "matvec_gbps"], bandwidth[prefix + "matvec_kernel"], tokens_per_s)
    return {**roof.to_dict(), "bytes": counted.to_dict()}


def run_variants(plain, specs: list[str], ids: torch.Tensor, args: argparse.Namespace, result: dict, save) -> None:
    """One variant in memory at a time beside plain transformers: fidelity, paired timing, roofline, profile.

    `save()` is called after each variant, so a run cut short (a time limit) keeps what it measured.
    """
    base = reference(plain, ids, args)
    timed_generate(plain, ids, min(8, args.new_tokens))  # warm-up
    plain_rounds: list[float] = []
    plain_first: list[float] = []
    for spec in specs:
        print(f"\n== {spec}: loading ...", flush=True)
        loaded = load_model(variant_of(args, spec))
        model, kwargs = loaded.model, loaded.extras.get("generate_kwargs", {})
        result["fidelity"][spec] = fidelity_of(model, kwargs, ids, base, args)
        result["decode"][spec], rounds, firsts = time_against_plain(plain, model, kwargs, ids, args)
        plain_rounds += rounds
        plain_first += firsts
        if "bandwidth" in result:
            speed = result["decode"][spec]["decode_tokens_per_s"]
            result["roofline"][spec] = roofline_of(model, speed, result["bandwidth"], loaded.variant.quant == "int8", args)
        if args.profile:
            print(f"\n== profile: {spec}\n{profile_decode(model, ids, **kwargs)}")
        del loaded, model, kwargs
        gc.collect()
        save()
    plain_row = {"decode_tokens_per_s": median(plain_rounds), "rounds": plain_rounds, "first_token_s": median(plain_first), "ratio_to_plain": 1.0}
    result["decode"] = {PLAIN: plain_row, **result["decode"]}
    if "bandwidth" in result:
        result["roofline"] = {PLAIN: roofline_of(plain, median(plain_rounds), result["bandwidth"], False, args), **result["roofline"]}
    if args.attn != "eager" and not any("attn=eager" in spec for spec in specs):  # an eager variant already is one
        eager = load_plain(args.model, args.dtype, args.device, "eager")
        result["fidelity"][YARDSTICK] = fidelity_of(eager, {}, ids, base, args)
        del eager
    if args.profile:
        print(f"\n== profile: {PLAIN}\n{profile_decode(plain, ids)}")


def print_summary(result: dict) -> None:
    """The figures, one table per question."""
    print("\n== fidelity against plain transformers (greedy tokens; logits teacher-forced on its tokens)")
    for name, row in result["fidelity"].items():
        tokens, logits = row["tokens"], row["logits"]
        same = "identical" if tokens["identical"] else f"differ from token {tokens['first_difference']}"
        print(f"{name:52s} tokens {same:26s} top-1 agree {logits['top1_agreement']:.0%}  "
              f"max|dlogit| step0 {logits['first_step_max_abs_diff']:.3g} all {logits['max_abs_diff']:.3g}  KL {logits['mean_kl']:.2e}")
    print("\n== decode tokens/s (median of rounds; ratio = median of per-round ratios)")
    for name, row in result["decode"].items():
        print(f"{name:52s} {row['decode_tokens_per_s']:7.2f} tokens/s  x{row['ratio_to_plain']:.2f}  first token {row['first_token_s']:.2f} s")
    if result.get("ffn"):
        ffn = result["ffn"]
        print(f"\n== FFN of the {len(ffn['layers'])} sparse layers at decode: dense {ffn['dense_ms']:.1f} ms, "
              f"sparse {ffn['sparse_ms']:.1f} ms, ratio {ffn['ratio']:.2f} (target <= 0.50); "
              f"outputs bitwise equal in {ffn['bitwise_equal_layers']} of {len(ffn['layers'])} layers")
    if result.get("roofline"):
        bw = result["bandwidth"]
        print(f"\n== roofline: streaming read {bw['stream_gbps']:.1f} GB/s, best matvec {bw['matvec_gbps']:.1f} GB/s ({bw['matvec_kernel']})"
              + (f", int8 matvec {bw['int8_matvec_gbps']:.1f} GB/s" if "int8_matvec_gbps" in bw else ""))
        for name, row in result["roofline"].items():
            print(f"{name:52s} {row['bytes_per_token'] / 1e9:6.2f} GB/token  achieved {row['achieved_gbps']:5.1f} GB/s  "
                  f"{row['fraction_of_stream']:.0%} of streaming bound ({row['stream_bound_tokens_per_s']:.1f} t/s)  "
                  f"{row['fraction_of_matvec']:.0%} of matvec bound ({row['matvec_bound_tokens_per_s']:.1f} t/s)")
    print_headline(result)


def _headline_line(label: str, name: str, result: dict, target: float) -> None:
    row, fidelity = result["decode"][name], result["fidelity"][name]
    tokens = "identical" if fidelity["tokens"]["identical"] else f"differ from token {fidelity['tokens']['first_difference']}"
    line = (f"   {label} [{name}]: {row['decode_tokens_per_s']:.2f} tokens/s = x{row['ratio_to_plain']:.2f} (target x{target:.2f}); "
            f"greedy tokens {tokens}; top-1 agreement {fidelity['logits']['top1_agreement']:.0%}, KL {fidelity['logits']['mean_kl']:.1e}")
    if result.get("roofline"):
        roof = result["roofline"][name]
        line += f"; {roof['fraction_of_stream']:.0%} of the streaming bound, {roof['fraction_of_matvec']:.0%} of the matvec bound"
    print(line)


def lossless_target() -> float:
    """The issue's target for identical greedy tokens: x1.3 where oneDNN runs bfloat16 (AVX-512), x1.15 on AVX2-only CPUs."""
    return 1.3 if hardware.cpu_info().onednn_bf16 else 1.15


def print_headline(result: dict) -> None:
    """The issue's lines: best variant with identical tokens, fastest float and int8 variants, roofline, RSS ratios."""
    decode = result["decode"]
    print(f"\n== headline ({hardware.cpu_info().describe()}): plain transformers {decode[PLAIN]['decode_tokens_per_s']:.2f} tokens/s")
    for spec, why in result.get("skipped", {}).items():
        print(f"   skipped [{spec}]: {why}")
    ours = [n for n in decode if n != PLAIN]
    identical = [n for n in ours if result["fidelity"][n]["tokens"]["identical"]]
    floats = [n for n in ours if "quant=" not in n]
    int8 = [n for n in ours if "quant=int8" in n]
    fastest = lambda names: max(names, key=lambda n: decode[n]["decode_tokens_per_s"])  # noqa: E731
    if identical:
        _headline_line("best with identical greedy tokens", fastest(identical), result, lossless_target())
    else:
        print("   no variant kept plain transformers' greedy tokens")
    if floats and fastest(floats) not in identical:
        _headline_line("fastest float variant", fastest(floats), result, lossless_target())
    if int8:
        _headline_line("fastest int8 variant", fastest(int8), result, 1.6)
    for name, row in (result.get("memory") or {}).items():
        if "rss_ratio" in row:
            print(f"   resident memory [{name}] / plain transformers' default load: {row['rss_ratio']:.2f} (target <= 0.60), "
                  f"logits {'identical' if row['logits_identical'] else 'differ'}")


def main(argv: list[str] | None = None) -> None:
    """Run every measurement in order and write the JSON result."""
    args = parse_args(argv)
    on_gpu = args.device.startswith("cuda")
    info = machine()
    print(f"machine: {info['nproc']} cores ({info['cpu_features']}), load {info['loadavg_1m']:.1f}, torch threads {info['torch_threads']}"
          + (f", {info['gpu']}" if on_gpu else "") + f"; available memory {available_memory_gb():.1f} GB")
    asked = list(args.variants if args.variants is not None else (GPU_VARIANTS if on_gpu else CPU_VARIANTS))
    specs, skipped = runnable(args.model, args.dtype, args.device, asked, args.attn)
    result: dict = {"model": args.model, "dtype": args.dtype, "device": args.device, "attn": args.attn, "variants": specs,
                    "skipped": skipped, "new_tokens": args.new_tokens, "prompt_tokens": args.prompt_tokens, "rounds": args.rounds}
    if not args.no_memory:
        print("\n== resident memory (one subprocess per model)")
        result["memory"] = compare_memory(args.model, args.dtype, args.device, ["ple=mmap", *[s for s in specs if s != "ple=mmap"]])
        print_memory(result["memory"])
    if not args.no_bandwidth:
        print("\n== measuring read bandwidth ...", flush=True)
        result["bandwidth"] = measure_bandwidth(args, specs)
    print("\n== loading plain transformers ...", flush=True)
    plain = load_plain(args.model, args.dtype, args.device, args.attn)
    ids = fixed_prompt(args.prompt_tokens, device=args.device)
    result.update(fidelity={}, decode={}, roofline={})
    path = result_path("decode", args.out)
    run_variants(plain, specs, ids, args, result, save=lambda: write_result("decode", result, path=path))
    if any(layer.mlp.activation_sparsity > 0 for layer in text_layers(plain)):
        print("\n== timing the sparse layers' FFN, dense and sparse ...", flush=True)
        result["ffn"] = time_ffn_layers(plain, ids, rounds=max(3, args.rounds))
    print_summary(result)
    print(f"\nwrote {write_result('decode', result, path=path)}")


if __name__ == "__main__":
    sys.exit(main())
