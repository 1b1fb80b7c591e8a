"""Resident memory of one model per process: plain transformers' default load against workbench variants.

    python -m benchmarks.memory --model e2b-shape [--variants "ple=mmap" "ple=mmap quant=int8"]

Each model is loaded in its own subprocess (never two at once), which reports its resident set
(RSS, split into file-backed and anonymous pages) after loading and after a short greedy
generation, its peak, and the prompt's logits; the parent prints the ratios and whether the logits
are identical to plain transformers'.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from benchmarks.plain import PLAIN, checkpoint_for, fixed_prompt, load_plain, runnable, variant_spec
from benchmarks.report import available_memory_gb, write_result
from g3n_core.speed.ple_mmap import checkpoint_numel

DEFAULT_VARIANTS = ("ple=mmap",)
# --load-peak: the per-layer table is never materialised at load with ple=mmap, nor for a layer-skipping slice.
LOAD_PEAK_VARIANTS = ("ple=mmap", "ple=mmap skip=5-9")
LOAD_PEAK_DTYPES = ("bfloat16", "float32")
LOAD_PEAK_TARGET = 1.15


def load_peak_ratio(row: dict) -> float:
    """Peak resident memory of the process (VmHWM: loading included) over its steady state after generating."""
    return row["after_generate"]["peak_mb"] / row["after_generate"]["rss_mb"]


def _status_mb() -> dict[str, float]:
    fields = {"VmRSS": "rss_mb", "RssAnon": "anon_mb", "RssFile": "file_mb", "VmHWM": "peak_mb"}
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in fields:
            out[fields[key]] = int(line.split()[1]) / 1024
    return out


def _child(job: dict) -> dict:
    """Runs in the subprocess: load one model, generate, report memory and logits."""
    from g3n_core import load_model, parse_variant_spec

    before = _status_mb()
    device = job["device"]
    if job["spec"] is None:
        model, kwargs = load_plain(job["model"], job["dtype"], device), {}
    else:
        loaded = load_model(parse_variant_spec(job["spec"]))
        model, kwargs = loaded.model, loaded.extras.get("generate_kwargs", {})
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    after_load = _status_mb()
    ids = fixed_prompt(job["prompt_tokens"], device=device)
    with torch.inference_mode():
        logits = model(ids).logits[0, -1].float().cpu()
        model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=job["new_tokens"],
                       min_new_tokens=job["new_tokens"], do_sample=False, **kwargs)
    torch.save(logits, job["logits_path"])
    result = {"before_load": before, "after_load": after_load, "after_generate": _status_mb()}
    if device.startswith("cuda"):
        result["gpu_allocated_mb"] = torch.cuda.memory_allocated() / 2**20
        result["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def measure_in_subprocess(job: dict) -> tuple[dict, torch.Tensor]:
    """Run one measurement in a fresh Python process; returns its report and the prompt's last logits."""
    with tempfile.TemporaryDirectory(prefix="g3n-mem-") as tmp:
        job = {**job, "logits_path": str(Path(tmp) / "logits.pt")}
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.memory", "--child", json.dumps(job)],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(Path.cwd())},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"memory measurement of {job['label']} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        return report, torch.load(job["logits_path"])


def compare_memory(model: str, dtype: str, device: str, variants: list[str], new_tokens: int = 16, prompt_tokens: int = 32,
                   baseline: bool = True) -> dict:
    """Plain transformers (unless `baseline` is False) and each variant, one subprocess each; RSS ratios and logits identity."""
    base_job = {"model": model, "dtype": dtype, "device": device, "new_tokens": new_tokens, "prompt_tokens": prompt_tokens}
    rows: dict = {}
    if baseline:
        plain, plain_logits = measure_in_subprocess({**base_job, "label": PLAIN, "spec": None})
        rows[PLAIN] = plain
    for extra in variants:
        spec = variant_spec(model, dtype, device, extra)
        try:
            report, logits = measure_in_subprocess({**base_job, "label": extra, "spec": spec})
        except RuntimeError as err:  # one failed variant (out of memory, say) must not lose the others
            print(err, file=sys.stderr)
            rows[extra] = {"error": str(err)[-500:]}
            continue
        if baseline:
            report["rss_ratio"] = report["after_generate"]["rss_mb"] / plain["after_generate"]["rss_mb"]
            if "gpu_allocated_mb" in plain:  # on a GPU the weights that matter are the ones on the device
                report["gpu_ratio"] = report["gpu_allocated_mb"] / plain["gpu_allocated_mb"]
            report["logits_identical"] = bool(torch.equal(logits, plain_logits))
            report["logits_max_abs_diff"] = float((logits - plain_logits).abs().max())
        rows[extra] = report
    return rows


def print_memory(rows: dict) -> None:
    """One line per model: RSS after load and after generating, file/anon split, ratio to plain."""
    print(f"{'resident memory':32s} {'load MB':>9s} {'gen MB':>9s} {'file MB':>9s} {'anon MB':>9s} {'peak MB':>9s} {'peak/gen':>8s} {'ratio':>6s}  logits")
    for label, row in rows.items():
        if "error" in row:
            print(f"{label:32s} failed: {row['error'].splitlines()[0]}")
            continue
        gen = row["after_generate"]
        ratio = f"{row['rss_ratio']:.2f}" if "rss_ratio" in row else ("1.00" if label == PLAIN else "-")
        same = "" if "logits_identical" not in row else ("identical" if row["logits_identical"] else f"max diff {row['logits_max_abs_diff']:.3g}")
        gpu = f"  GPU {row['gpu_allocated_mb']:.0f} MB (peak {row['gpu_peak_mb']:.0f})" if "gpu_allocated_mb" in row else ""
        gpu += f" x{row['gpu_ratio']:.2f}" if "gpu_ratio" in row else ""
        print(f"{label:32s} {row['after_load']['rss_mb']:9.0f} {gen['rss_mb']:9.0f} {gen['file_mb']:9.0f} {gen['anon_mb']:9.0f} "
              f"{gen['peak_mb']:9.0f} {load_peak_ratio(row):8.2f} {ratio:>6s}  {same}{gpu}")


def plain_fits(model: str, dtype: str) -> bool:
    """Whether plain transformers' load fits here; it converts every weight (the per-layer table too) to `dtype`.

    Estimated as the checkpoint's elements at the dtype's size, against 80% of the available memory
    (e2b-shape in float32: ~18 GB, more than a 24 GB machine has to spare); prints why when it does not.
    """
    needed = checkpoint_numel(checkpoint_for(model)) * torch.finfo(getattr(torch, dtype)).bits / 8 / 1e9
    available = available_memory_gb()
    if needed <= 0.8 * available:
        return True
    print(f"skipped [{PLAIN}]: its {dtype} load would allocate ~{needed:.1f} GB (every weight converted, the per-layer "
          f"table included), {available:.1f} GB available", flush=True)
    return False


def print_load_peaks(args: argparse.Namespace) -> None:
    """Peak over steady resident memory loading with ple=mmap, with and without a layer-skipping slice, per dtype."""
    result = {}
    for dtype in LOAD_PEAK_DTYPES:
        print(f"\n== {args.model} in {dtype} (available memory {available_memory_gb():.1f} GB)")
        variants, _ = runnable(args.model, dtype, args.device, list(LOAD_PEAK_VARIANTS))
        result[dtype] = compare_memory(args.model, dtype, args.device, variants, args.new_tokens, baseline=plain_fits(args.model, dtype))
        print_memory(result[dtype])
    print(f"\n== load peak / steady state (target <= {LOAD_PEAK_TARGET}); steady = resident after a {args.new_tokens}-token generation")
    for dtype, rows in result.items():
        for label, row in rows.items():
            if "error" not in row:
                print(f"   {dtype:9s} {label:28s} peak {row['after_generate']['peak_mb'] / 1e3:6.2f} GB / steady "
                      f"{row['after_generate']['rss_mb'] / 1e3:6.2f} GB = {load_peak_ratio(row):.2f}")
    print(f"wrote {write_result('memory-load-peak', {'model': args.model, 'rows': result}, args.out)}")


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="e2b-shape")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variants", nargs="*", default=list(DEFAULT_VARIANTS), help="Variant fields, e.g. 'ple=mmap quant=int8'")
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--out", default=None, help="folder for the JSON result (default results/)")
    parser.add_argument("--load-peak", action="store_true", help=f"peak / steady RSS of {' and '.join(LOAD_PEAK_VARIANTS)} in {' and '.join(LOAD_PEAK_DTYPES)}")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return
    if args.load_peak:
        return print_load_peaks(args)
    print(f"available memory: {available_memory_gb():.1f} GB")
    variants, skipped = runnable(args.model, args.dtype, args.device, args.variants)
    rows = compare_memory(args.model, args.dtype, args.device, variants, args.new_tokens)
    print_memory(rows)
    print(f"wrote {write_result('memory', {'model': args.model, 'dtype': args.dtype, 'rows': rows, 'skipped': skipped}, args.out)}")


if __name__ == "__main__":
    main()
