"""What int8 weights (quant="int8") cost in accuracy on tiny: built-in suites and logits, float against int8.

    python -m benchmarks.quant_accuracy [--tasks builtin] [--threads 1] [--out runs/quant_accuracy]

Runs the evals package's built-in suites (`python -m evals` underneath) for tiny in float32 and with
int8 linear layers (alone and with the sparse FFN), then prints the accuracy table beside the
logits change (max |difference|, KL, top-1 agreement, teacher-forced on the float model's greedy
tokens). tiny has random weights: accuracies sit near chance, so the figure of interest is how far
int8 moves them, not their level.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.fidelity import compare_logits, teacher_forced_logits
from benchmarks.plain import fixed_prompt
from benchmarks.report import write_result
from benchmarks.timing import timed_generate
from evals.report import comparison_table
from evals.runner import run
from g3n_core import load_model, parse_variant_spec

VARIANTS = ("tiny", "tiny quant=int8", "tiny quant=int8 sparse_ffn=true")


def logits_change(specs: list[str], steps: int = 16) -> dict:
    """Teacher-forced logits of each variant against the first (float) one."""
    ids = fixed_prompt(32)
    base = load_model(parse_variant_spec(specs[0]))
    forced = timed_generate(base.model, ids, steps).tokens
    reference = teacher_forced_logits(base.model, ids, forced)
    return {spec: compare_logits(teacher_forced_logits(load_model(parse_variant_spec(spec)).model, ids, forced), reference) for spec in specs[1:]}


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), help="the first is the float reference")
    parser.add_argument("--tasks", nargs="*", default=["builtin"])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for tiny on a busy machine)")
    parser.add_argument("--out", default="runs/quant_accuracy")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    change = logits_change(args.variants)
    table = comparison_table(run([parse_variant_spec(v) for v in args.variants], args.tasks, args.out))
    print("== built-in suites (evals)")
    print(table.to_string())
    print("\n== logits against the float model (teacher-forced, 16 decode steps)")
    for spec, row in change.items():
        print(f"{spec:40s} max|dlogit| {row['max_abs_diff']:.3g}  KL {row['mean_kl']:.2e}  top-1 agreement {row['top1_agreement']:.0%}")
    print(f"\nwrote {write_result('quant_accuracy', {'variants': args.variants, 'logits': change, 'table': table.to_dict()}, None)}")


if __name__ == "__main__":
    main()
