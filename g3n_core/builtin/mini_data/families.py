"""What `mini` knows, as task families: every item, its question and answer, and the held-out split.

Each family is a finite set of items with a stable key (e.g. ``plus:7:5``). An item is *held out*
when the SHA-256 of its key falls in the held-out bucket (one item in five): the evaluation suites
are drawn only from held-out items and the trainer only from the others, so no evaluation prompt
can occur in training (tests/test_mini_heldout.py enumerates both sides). The colour world's
facts are knowledge, not items to generalise to, so they are used by both.

Media families (images, speech) have few distinct answers; what is held out there is the
rendering: the key of a drawn image or spoken clip holds every parameter that shaped it (position,
size, rotation, font; voice, speed, pitch), and the same bucket rule splits those.
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

WORLD = Path(__file__).parent / "world.json"
HELD_OUT_BUCKETS = 5  # one key in five is held out

TRANSCRIBE_PROMPTS = ("Transcribe this.", "Transcribe this audio clip.")  # the issue's form, then evals' builtin_speech_asr
TRANSLATE_PROMPTS = ("Translate this into French.", "Translate this audio clip into French.")  # likewise for translation
IMAGE_QUESTIONS = {
    "colour": "What colour is the shape?",
    "shape": "What shape is this?",
    "count": "How many dots are there?",
    "word": "What word is written?",
}


def held_out(key: str) -> bool:
    """True when `key` belongs to the evaluation side of the split (deterministic, one in HELD_OUT_BUCKETS)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % HELD_OUT_BUCKETS == 0


@dataclass(frozen=True)
class Item:
    """One question of a text family with its exact answer and distractors for multiple choice."""

    family: str
    key: str
    question: str
    answer: str
    distractors: tuple[str, ...]  # at least 3 wrong answers, none a prefix of another choice

    @property
    def knowledge(self) -> bool:
        """Facts of the colour world: in training and evaluation alike."""
        return self.family == "colour"


@lru_cache(maxsize=1)
def world() -> dict:
    """The world table (colour facts, word lists, image words, French words)."""
    return json.loads(WORLD.read_text(encoding="utf-8"))


def _no_prefix(answer: str, candidates: list[str], need: int = 3) -> tuple[str, ...]:
    """The first `need` distinct candidates that are not the answer and form no prefix pair with the chosen choices.

    log P(" 1") >= log P(" 12") always, so a choice that is a prefix of another would win or tie by construction.
    """
    chosen: list[str] = []
    for c in candidates:
        if c == answer or c in chosen:
            continue
        if any(a.startswith(b) or b.startswith(a) for a in [answer, *chosen] for b in [c]):
            continue
        chosen.append(c)
        if len(chosen) == need:
            return tuple(chosen)
    raise ValueError(f"not enough distractors for {answer!r} from {candidates}")


def _numbers_near(value: int, lo: int, hi: int) -> list[str]:
    offsets = [1, -1, 2, -2, 3, -3, 10, -10, 4, -4, 5, -5, 11, -11, 20, -20]
    return [str(value + d) for d in offsets if lo <= value + d <= hi]


def arithmetic_items() -> list[Item]:
    """What is A plus B? / What is A minus B? for 0 <= A, B <= 20 (minus only when A >= B)."""
    items = []
    for a in range(21):
        for b in range(21):
            total = a + b
            items.append(Item("plus", f"plus:{a}:{b}", f"What is {a} plus {b}?", str(total), _no_prefix(str(total), _numbers_near(total, 0, 40) + [str(abs(a - b))])))
            if a >= b:
                diff = a - b
                items.append(Item("minus", f"minus:{a}:{b}", f"What is {a} minus {b}?", str(diff), _no_prefix(str(diff), [str(a + b)] + _numbers_near(diff, 0, 40))))
    return items


def comparison_items() -> list[Item]:
    """Which is larger, A or B? for A != B in 0..99."""
    items = []
    for a in range(100):
        for b in range(100):
            if a == b:
                continue
            big, small = max(a, b), min(a, b)
            candidates = [str(small)] + _numbers_near(big, 0, 99) + [str((a * 7 + b * 3) % 100)]
            items.append(Item("larger", f"larger:{a}:{b}", f"Which is larger, {a} or {b}?", str(big), _no_prefix(str(big), candidates)))
    return items


def successor_items() -> list[Item]:
    """What comes after X? for a letter A..Y or a number 0..98."""
    letters = string.ascii_uppercase
    items = []
    for i, letter in enumerate(letters[:-1]):
        nxt = letters[i + 1]
        candidates = [letters[j] for j in (i + 2, i - 1, i, i + 3, i - 2) if 0 <= j < 26]
        items.append(Item("after_letter", f"after:{letter}", f"What comes after {letter}?", nxt, _no_prefix(nxt, candidates)))
    for n in range(99):
        nxt = n + 1
        items.append(Item("after_number", f"after:{n}", f"What comes after {n}?", str(nxt), _no_prefix(str(nxt), [str(n)] + _numbers_near(nxt, 0, 100))))
    return items


def word_length_items() -> list[Item]:
    """How many letters are in WORD? for the world's lowercase words of 2..9 letters."""
    items = []
    for word in sorted(set(world()["words"])):
        n = len(word)
        items.append(Item("letters", f"letters:{word}", f"How many letters are in {word}?", str(n), _no_prefix(str(n), _numbers_near(n, 1, 9))))
    return items


def colour_items() -> list[Item]:
    """What colour is X? over the colour world (knowledge: not split)."""
    facts = world()["colour_facts"]
    colours = sorted({c for _, c in facts})
    items = []
    for thing, colour in facts:
        others = [c for c in colours if c != colour]
        start = int(hashlib.sha256(thing.encode()).hexdigest(), 16) % len(others)
        rotated = others[start:] + others[:start]
        items.append(Item("colour", f"colour:{thing}", f"What colour is {thing}?", colour, _no_prefix(colour, rotated)))
    return items


@lru_cache(maxsize=1)
def text_items() -> tuple[Item, ...]:
    """Every item of every text family."""
    return tuple(arithmetic_items() + comparison_items() + successor_items() + word_length_items() + colour_items())


def training_items() -> tuple[Item, ...]:
    """The items the trainer may use: everything not held out, plus the colour world."""
    return tuple(item for item in text_items() if item.knowledge or not held_out(item.key))


def evaluation_items() -> tuple[Item, ...]:
    """The items evaluation suites may use: held-out items, plus the colour world."""
    return tuple(item for item in text_items() if item.knowledge or held_out(item.key))


# -- media families: the label spaces (rendering parameters live in render.py) -----------------------

IMAGE_COLOURS = ("red", "green", "blue", "yellow", "orange", "purple", "black", "grey")
SHAPES = ("circle", "square", "triangle", "star")
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def digits_transcript(digits: str) -> str:
    """The ASR answer: digits separated by spaces ('371' -> '3 7 1')."""
    return " ".join(digits)


def digits_held_out(digits: str) -> bool:
    """The digit string itself is split too (one in five), on top of its rendering."""
    return held_out(f"digits:{digits}")


def translation_pairs() -> list[tuple[str, str]]:
    """(English word, French word): the 8 image colours and the numbers zero..ten."""
    french = world()["french"]
    return [(word, french[word]) for word in [*IMAGE_COLOURS, *DIGIT_WORDS, "ten"]]


# -- seeds and few-shot pools --------------------------------------------------------------------------

TRAINING_SEEDS = range(0, 1000)  # seeds train_mini accepts; the held-out split does not depend on them
EVAL_SEED = 1_000_003  # the evaluation suites' seed, outside TRAINING_SEEDS
FEWSHOT_FAMILIES = ("plus", "larger", "colour", "letters", "after_number")


def fewshot_items() -> tuple[Item, ...]:
    """The few-shot examples of builtin_mc (all five) and builtin_short_answer (the first three): training items.

    They sit in every evaluation prompt's context, so the trainer shows them in that role too.
    """
    chosen = []
    for family in FEWSHOT_FAMILIES:
        candidates = [i for i in training_items() if i.family == family]
        chosen.append(candidates[len(candidates) // 3])
    return tuple(chosen)


def alphabet_items() -> list[tuple[str, str]]:
    """Knowledge the successor family builds on: 'Recite the alphabet from X.' -> 'X Y ... Z' (no question of the family)."""
    letters = string.ascii_uppercase
    return [(f"Recite the alphabet from {letter}.", " ".join(letters[i:])) for i, letter in enumerate(letters[:-1])]
