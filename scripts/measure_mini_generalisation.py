"""How far a mini checkpoint carries what it learnt over to held-out items, per family, both sides side by side.

    python scripts/measure_mini_generalisation.py SPEC [SPEC ...] [--per-family 64] [--pictures 24] [--clips 48] [--json OUT]

SPEC is a variant spec: `mini`, `"mini sparsity=off"`, or a training run's `DIR/checkpoint`.
For every text family it takes up to --per-family items from each side of the held-out split
(`training_items` / `evaluation_items`; the colour world is knowledge and on both sides, so it has
one row) in chat form (the answer and `<end_of_turn>` scored) and in lm-eval's 0-shot completion
form (` answer\\n` scored); for pictures and speech it draws fresh media on each side (not the
run's own pool: its training loss is in the run's loss.csv). Per family and side it prints the
answer tokens' mean loss and **exact**: the share of answers whose every token is the argmax under
teacher forcing, i.e. what greedy decoding would answer. Both are computed on more items than the
built-in suites hold (24-100 per suite), with no sampling, so they separate two short training runs
that the suites' exact match cannot (docs/mini.md). A wide gap between the sides means the model
learnt its training table, not the family's rule.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from g3n_core import parse_variant_spec  # noqa: E402
from g3n_core.builtin.mini_data.batches import answer_loss, collate, length_groups  # noqa: E402
from g3n_core.builtin.mini_data.examples import IGNORE, Example, MediaPool, TextExamples, build_media_pool  # noqa: E402
from g3n_core.builtin.mini_data.families import (  # noqa: E402
    EVAL_SEED,
    IMAGE_QUESTIONS,
    TRANSCRIBE_PROMPTS,
    TRANSLATE_PROMPTS,
    evaluation_items,
    training_items,
)
from g3n_core.host import cpu_model  # noqa: E402
from g3n_core.loading import load_model  # noqa: E402

SIDES = {"train": training_items, "held_out": evaluation_items}


def text_examples(texts: TextExamples, side: str, per_family: int, rnd: random.Random) -> list[Example]:
    """Up to `per_family` items per family from `side`, each in chat form and in 0-shot completion form."""
    by_family: dict[str, list] = defaultdict(list)
    for item in SIDES[side]():
        if not item.knowledge or side == "train":  # the colour world is the same facts on both sides: one row
            by_family[item.family].append(item)
    examples = []
    for family, items in sorted(by_family.items()):
        for item in rnd.sample(items, min(per_family, len(items))):
            examples.append(texts.chat(item.question, item.answer, f"{family}/chat"))
            examples.append(texts.completion(item.question, item.answer, f"{family}/completion", []))
    return examples


def media_examples(texts: TextExamples, side: str, pictures: int, clips: int) -> tuple[list[Example], MediaPool]:
    """Fresh pictures (per kind) and clips (digit strings, then every translation word once) drawn on `side`."""
    per_word = max(1, clips // 24) if clips else 0  # 19 translation words
    pool = build_media_pool(texts.processor, EVAL_SEED, pictures, clips, per_word, side=side)
    examples = [
        texts.chat(IMAGE_QUESTIONS[kind], answer, f"image_{kind}/chat", media="image", image=n)
        for n, (kind, answer) in enumerate(pool.image_labels)
    ]
    for n, (task, answer) in enumerate(pool.audio_labels):
        prompt = (TRANSCRIBE_PROMPTS if task == "asr" else TRANSLATE_PROMPTS)[0]
        examples.append(texts.chat(prompt, answer, f"speech_{task}/chat", media="audio", audio=n))
    return examples, pool


@torch.inference_mode()
def score(model, examples: list[Example], pool: MediaPool | None, batch: int = 16) -> dict[str, dict]:
    """Per family: mean answer-token loss, the share of answers greedy decoding gets exactly right, and the count."""
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0, 0, 0])  # loss sum, tokens, exact, answers
    for group in length_groups(examples, batch):
        inputs = collate(group, pool)
        labels = inputs.pop("labels")
        logits = model(**inputs).logits
        _, per_token = answer_loss(logits, labels)
        hits = torch.nn.functional.pad(logits[:, :-1].argmax(-1) == labels[:, 1:], (1, 0))
        for row, example in enumerate(group):
            scored = labels[row] != IGNORE
            total = sums[example.family]
            total[0] += float(per_token[row][scored].sum())
            total[1] += int(scored.sum())
            total[2] += int(bool(hits[row][scored].all()))
            total[3] += 1
    return {f: {"loss": s[0] / max(s[1], 1), "exact": s[2] / s[3], "n": s[3]} for f, s in sorted(sums.items())}


def measure(spec: str, per_family: int, pictures: int, clips: int) -> dict[str, dict[str, dict]]:
    """side -> family/form -> {loss, exact, n} for one variant."""
    loaded = load_model(parse_variant_spec(spec))
    texts = TextExamples(loaded.processor)
    result = {}
    for side in SIDES:
        figures = score(loaded.model, text_examples(texts, side, per_family, random.Random(f"generalisation-{side}")), None)
        if pictures or clips:
            examples, pool = media_examples(texts, "train" if side == "train" else "eval", pictures, clips)
            figures |= score(loaded.model, examples, pool)
        result[side] = figures
    return result


def table(spec: str, result: dict[str, dict[str, dict]]) -> str:
    """One markdown table: a row per family and form, both sides' loss and exact side by side."""
    train, held = result["train"], result["held_out"]
    lines = [f"#### `{spec}`", "", "| family / form | loss: train | loss: held out | exact: train | exact: held out | items (train / held out) |", "|---|---|---|---|---|---|"]
    for family in train:
        other = held.get(family)
        if other is None:  # knowledge: one side
            lines.append(f"| {family} (knowledge) | {train[family]['loss']:.3f} | - | {train[family]['exact']:.2f} | - | {train[family]['n']} |")
            continue
        lines.append(
            f"| {family} | {train[family]['loss']:.3f} | {other['loss']:.3f} | {train[family]['exact']:.2f} | {other['exact']:.2f} "
            f"| {train[family]['n']} / {other['n']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure every SPEC and print its table (and write them all as JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="+", help="variant specs: mini, 'mini sparsity=off', DIR/checkpoint")
    parser.add_argument("--per-family", type=int, default=64, help="items per text family and side")
    parser.add_argument("--pictures", type=int, default=24, help="fresh pictures per image kind and side (0: none)")
    parser.add_argument("--clips", type=int, default=48, help="fresh digit-string clips per side, plus each translation word once per 24 of them (0: no speech)")
    parser.add_argument("--json", type=Path, help="also write {spec: {side: {family: figures}}} here")
    args = parser.parse_args(argv)
    results = {}
    print(f"measured on {cpu_model()}\n")
    for spec in args.specs:
        results[spec] = measure(spec, args.per_family, args.pictures, args.clips)
        print(table(spec, results[spec]) + "\n", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
