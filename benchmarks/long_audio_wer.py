"""Long audio: word error rate of chunked transcription against the same speech cut into short clips.

    python -m benchmarks.long_audio_wer --variants "tiny" ["google/gemma-3n-E2B-it dtype=bfloat16"] [--passages 3]

Runs evals' long-speech suite (evals/data/long_speech: espeak-ng passages of 60-130 s) for each
variant: the whole clips transcribed by windows (long_audio=chunk), the whole clips truncated to
their first 30 s, and the same speech cut at its sentence boundaries into short clips, all scored
by corpus WER on the same words. Prints, per variant, the three WERs and chunked minus short
against the target (issue 16: at most 0.05), with how each clip was windowed. Any model works;
on random weights (tiny) the numbers only show the mechanics. Results are resumable evals
folders under --out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

TARGET_DELTA = 0.05
TASKS = {"chunked": "builtin_long_speech_asr", "truncated": "builtin_long_speech_asr_truncated", "short clips": "builtin_long_speech_asr_short"}


def windowing(passages: int) -> list[str]:
    """How each clip is cut: seconds, windows and how many end in a pause."""
    from evals.tasks.builtin_media import long_speech_docs
    from g3n_core.long_audio import plan_windows
    from g3n_core.media import MediaPolicy, read_audio

    lines = []
    for doc in long_speech_docs()[:passages]:
        windows = plan_windows(read_audio(doc["audio"], MediaPolicy(), max_seconds=doc["seconds"] + 1).samples)
        spans = ", ".join(f"{w.start / 16000:.1f}-{w.end / 16000:.1f}" for w in windows)
        lines.append(f"{Path(doc['audio']).name}: {doc['seconds']:.1f} s, {len(windows)} windows "
                     f"({sum(w.pause_cut for w in windows)} cut in pauses): {spans}")
    return lines


def main(argv: list[str] | None = None) -> None:
    """Run the three tasks per variant and print the WER comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["tiny"], help="variant specs, as for `python -m evals run`")
    parser.add_argument("--passages", type=int, default=None, help="first N passages only (default: all)")
    parser.add_argument("--out", default="results/long_audio_wer", help="evals results folder (resumable)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)

    import torch

    from evals.cli import read_variants
    from evals.runner import run
    from evals.tasks.builtin_media import long_speech_docs
    from g3n_core.sources import classify, has_random_weights

    if args.threads:
        torch.set_num_threads(args.threads)
    docs = long_speech_docs()[: args.passages]
    sentences = sum(len(doc["sentences"]) for doc in docs)
    variants = read_variants(args.variants)
    whole = run(variants, [TASKS["chunked"], TASKS["truncated"]], args.out, limit=len(docs))
    cut = run(variants, [TASKS["short clips"]], args.out, limit=sentences)
    rows = [r for frame in (whole, cut) for r in frame.to_dict("records") if r["metric"] == "wer" and r["status"] == "ok"]
    print(f"{len(docs)} passages ({sum(d['seconds'] for d in docs):.0f} s, {sentences} sentences)")
    for line in windowing(len(docs)):
        print("  " + line)
    print(f"{'variant':<40} {'short clips':>11} {'chunked':>8} {'truncated':>9} {'chunked - short':>16}  target <= {TARGET_DELTA}")
    random = {v.name: has_random_weights(classify(v.model)) for v in variants}
    for variant in dict.fromkeys(r["variant"] for r in rows):
        wer = {label: next((r["value"] for r in rows if r["variant"] == variant and r["task"] == task), float("nan")) for label, task in TASKS.items()}
        delta = wer["chunked"] - wer["short clips"]
        verdict = "random weights: mechanics only" if random.get(variant) else "met" if delta <= TARGET_DELTA else "NOT met"
        print(f"{variant:<40} {wer['short clips']:>11.3f} {wer['chunked']:>8.3f} {wer['truncated']:>9.3f} {delta:>+16.3f}  {verdict}")


if __name__ == "__main__":
    main()
