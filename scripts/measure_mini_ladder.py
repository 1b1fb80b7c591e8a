"""Measure mini on the held-out built-in suites: its MatFormer ladder and its knobs (sparsity, int8, sparse FFN, bfloat16).

    python scripts/measure_mini_ladder.py [--out runs/mini_ladder] [--write]

Runs `evals` (the same runner as `python -m evals run`) over every preset of
g3n_core/matformer/mini_ladder.json plus `sparsity=off`, `quant=int8`, `sparse_ffn=true` and
`dtype=bfloat16`, prints one markdown table (for docs/mini.md), and with --write stores each
preset's figures in the ladder's `measured` field, the source naming this script, the date and the CPU.
A killed run resumes (evals' durable log in --out).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evals.report import comparison_table  # noqa: E402
from evals.results import read_samples  # noqa: E402
from evals.runner import run  # noqa: E402
from g3n_core import parse_variant_spec  # noqa: E402
from g3n_core.host import cpu_model  # noqa: E402
from g3n_core.matformer.mini_ladder import TABLE, ladder_table, mini_presets, read_table  # noqa: E402

KNOBS = ("mini sparsity=off", "mini quant=int8", "mini sparse_ffn=true", "mini dtype=bfloat16")
METRICS = ("builtin_mc/acc", "builtin_short_answer/exact_match", "builtin_image_qa/exact_match", "builtin_speech_asr/wer", "builtin_speech_translation/chrf")


def preset_spec(key: str) -> str:
    """The variant spec of a ladder row (the full model is plain `mini`)."""
    full = mini_presets()[0].key
    return "mini" if key == full else f"mini matformer={key}"


def colour_accuracy(out: Path, variant) -> float:
    """Exact match on the colour questions of builtin_image_qa, from the run's samples."""
    rows = [json.loads(line) for line in (Path(__file__).resolve().parents[1] / "evals" / "data" / "image_qa.jsonl").read_text().splitlines()]
    samples = read_samples(out, variant.to_json(), "builtin_image_qa")
    scores = [s["exact_match"] for s in samples if rows[s["doc_id"]]["category"] == "colour"]
    return sum(scores) / len(scores)


def measure(out: Path, limit: int | None = None) -> dict[str, dict]:
    """Figures per variant spec: each metric (and its stderr where defined) plus colour exact match."""
    specs = [preset_spec(p.key) for p in mini_presets()] + list(KNOBS)
    variants = [parse_variant_spec(s) for s in specs]
    frame = run(variants, ["builtin"], out, limit=limit)
    figures: dict[str, dict] = {}
    for spec, variant in zip(specs, variants):
        rows = frame[frame["variant"] == variant.name]
        values = {}
        for _, row in rows.iterrows():
            key = f"{row['task']}/{row['metric']}"
            values[key] = round(float(row["value"]), 4)
            if row.get("stderr") == row.get("stderr") and row.get("stderr") is not None:  # not NaN
                values[key + "_stderr"] = round(float(row["stderr"]), 4)
        values["builtin_image_qa/colour_exact_match"] = round(colour_accuracy(out, variant), 4)
        figures[spec] = values
    print(comparison_table(frame).to_string())
    return figures


def markdown(figures: dict[str, dict]) -> str:
    """One table: variant, effective params, the suites' headline metrics."""
    sizes = {preset_spec(r["preset"]): r for r in ladder_table()}
    lines = ["| variant | effective params | MC acc | short-answer EM | image EM (colour) | ASR WER | translation chrF |", "|---|---|---|---|---|---|---|"]
    for spec, v in figures.items():
        eff = f"{sizes[spec]['effective_params'] / 1e6:.2f}M" if spec in sizes else "2.68M"
        lines.append(
            f"| `{spec}` | {eff} | {v['builtin_mc/acc']:.3f} ± {v.get('builtin_mc/acc_stderr', 0):.3f} | {v['builtin_short_answer/exact_match']:.3f} "
            f"| {v['builtin_image_qa/exact_match']:.3f} ({v['builtin_image_qa/colour_exact_match']:.3f}) | {v['builtin_speech_asr/wer']:.3f} "
            f"| {v['builtin_speech_translation/chrf']:.1f} |"
        )
    return "\n".join(lines)


def write_ladder(figures: dict[str, dict]) -> None:
    """Store each preset's measured figures in mini_ladder.json (one row per line)."""
    table = read_table()
    sizes = {r["preset"]: r for r in ladder_table()}
    for row in table["rows"]:
        row["measured"] = {"effective_params": sizes[row["key"]]["effective_params"], **figures[preset_spec(row["key"])]}
    table["source"] = (
        "mini's MatFormer ladder: slices defined here; effective parameters and accuracy on the held-out built-in suites "
        f"measured by scripts/measure_mini_ladder.py on {datetime.date.today().isoformat()} ({cpu_model()}, float32)"
    )
    rows = ",\n".join("  " + json.dumps(r) for r in table["rows"])
    head = {k: v for k, v in table.items() if k != "rows"}
    TABLE.write_text(json.dumps(head, indent=1)[:-2] + ',\n "rows": [\n' + rows + "\n ]\n}\n")


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/mini_ladder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, help="first N examples of each suite (a quick check of the script; never --write these)")
    parser.add_argument("--write", action="store_true", help="store the figures in g3n_core/matformer/mini_ladder.json")
    args = parser.parse_args(argv)
    if args.write and args.limit:
        parser.error("--write stores the ladder's published figures: run it on the whole suites (no --limit)")
    torch.set_num_threads(args.threads)
    figures = measure(Path(args.out), args.limit)
    print(markdown(figures))
    (Path(args.out) / "figures.json").write_text(json.dumps(figures, indent=1) + "\n")
    if args.write:
        write_ladder(figures)
        print(f"wrote {TABLE}")


if __name__ == "__main__":
    main()
