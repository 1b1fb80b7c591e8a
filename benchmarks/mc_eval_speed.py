"""Multiple-choice evaluation speed: the workbench's scorer against lm-evaluation-harness's HF model.

    python -m benchmarks.mc_eval_speed [--variant "tiny"] [--rounds 3] [--threads 1] [--lm-eval-batch-sizes 1,8]

Both sides score the same requests (the built-in multiple-choice suite, 3-shot, 48 questions x 4
choices) with the same model object in the same process. lm-eval: `HFLM.loglikelihood` (one
forward pass per choice over context + choice; its default batch size is 1). Workbench:
`MultipleChoiceTask.evaluate` as the runner calls it (shared-context prefill, KV cache reused by
all choices, contexts batched by length, near ties re-scored exactly). Rounds alternate between
the sides after a warm-up; each figure is the median over rounds. Per-question choices (acc and
acc_norm) must be identical, else the script fails. Prints examples/s of each and the ratio;
writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

DEFAULT_JSON = Path(__file__).parent / "results" / "mc_eval_speed.json"


def lm_eval_choices(hflm, task, docs) -> tuple[list[int], list[int], float]:
    """(argmax choices, length-normalised argmax choices, seconds) of lm-eval's HFLM on the task's requests."""
    from lm_eval.api.instance import Instance

    per_doc = task.build_requests(docs)
    instances = [
        Instance("loglikelihood", doc, (r.context, r.continuation), idx=j, metadata=("bench", i, 1))
        for i, (doc, requests) in enumerate(zip(docs, per_doc))
        for j, r in enumerate(requests)
    ]
    start = time.perf_counter()
    answers = hflm.loglikelihood(instances, disable_tqdm=True)
    seconds = time.perf_counter() - start
    preds, preds_norm, k = [], [], 0
    for doc in docs:
        lls = np.array([answers[k + j][0] for j in range(len(doc["choices"]))])
        k += len(doc["choices"])
        preds.append(int(np.argmax(lls)))
        preds_norm.append(int(np.argmax(lls / np.array([len(c) for c in doc["choices"]], dtype=np.float64))))
    return preds, preds_norm, seconds


def workbench_choices(model, task, limit) -> tuple[list[int], list[int], float]:
    """(choices, normalised choices, seconds) of the workbench's multiple-choice evaluation."""
    start = time.perf_counter()
    result = task.evaluate(model, limit)
    seconds = time.perf_counter() - start
    return [s["pred"] for s in result.samples], [s["pred_norm"] for s in result.samples], seconds


def main(argv: list[str] | None = None) -> int:
    """Run the comparison, print it, write JSON; exit 1 when choices differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="tiny", help="a g3n_core variant spec (default: tiny, float32)")
    parser.add_argument("--limit", type=int, help="first N questions")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--lm-eval-batch-sizes", default="1,8", help="HFLM batch sizes to time (1 is lm-eval's default)")
    parser.add_argument("--json", default=str(DEFAULT_JSON))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from lm_eval.models.huggingface import HFLM

    from evals import EvalModel
    from evals.tasks import resolve_tasks
    from g3n_core import load_model, parse_variant_spec

    variant = parse_variant_spec(args.variant)
    loaded = load_model(variant)
    task = resolve_tasks(["builtin_mc"])[0]
    docs = task.docs(args.limit)
    ours = EvalModel(loaded)
    batch_sizes = [int(b) for b in args.lm_eval_batch_sizes.split(",") if b]
    hflms = {bs: HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, backend="causal", batch_size=bs) for bs in batch_sizes}

    # warm-up (not timed), and the identical-choices check
    reference = workbench_choices(ours, task, args.limit)
    seconds: dict[str, list[float]] = {"workbench": []} | {f"lm_eval_bs{bs}": [] for bs in batch_sizes}
    mismatches = {}
    for bs, hflm in hflms.items():
        theirs = lm_eval_choices(hflm, task, docs)
        mismatches[f"lm_eval_bs{bs}"] = sum(a != b for a, b in zip(reference[0] + reference[1], theirs[0] + theirs[1]))
    for _ in range(args.rounds):
        seconds["workbench"].append(workbench_choices(ours, task, args.limit)[2])
        for bs, hflm in hflms.items():
            seconds[f"lm_eval_bs{bs}"].append(lm_eval_choices(hflm, task, docs)[2])

    rates = {name: len(docs) / statistics.median(values) for name, values in seconds.items()}
    print(f"model: {variant.name}; task builtin_mc: {len(docs)} questions x 4 choices, 3-shot; {args.rounds} rounds, torch threads {torch.get_num_threads()}")
    for name, rate in rates.items():
        print(f"  {name:<14} {rate:8.1f} examples/s   (median of {[round(s, 3) for s in seconds[name]]} s)")
    for bs in batch_sizes:
        key = f"lm_eval_bs{bs}"
        print(f"  speed-up over {key}: {rates['workbench'] / rates[key]:.2f}x   choices identical: {mismatches[key] == 0} ({mismatches[key]} differ)")
    record = {
        "benchmark": "mc_eval_speed",
        "variant": variant.to_dict(),
        "questions": len(docs),
        "rounds": args.rounds,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''} cpus={torch.get_num_threads()}",
        "examples_per_s": rates,
        "seconds": seconds,
        "speedup": {f"over_lm_eval_bs{bs}": rates["workbench"] / rates[f"lm_eval_bs{bs}"] for bs in batch_sizes},
        "choice_mismatches": mismatches,
    }
    from evals.results import atomic_write_text

    atomic_write_text(args.json, json.dumps(record, indent=1))
    print(f"wrote {args.json}")
    return 1 if any(mismatches.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
