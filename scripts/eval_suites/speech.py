"""Speech suites: held-out spoken digit strings (builtin_speech_asr) and spoken English words with their
French translation (builtin_speech_translation), synthesised with espeak-ng (CC0 1.0).

The digit strings are held-out items; every clip's voice, speed, pitch, loudness and lead-in are
drawn on the evaluation side of the held-out split (g3n_core.builtin.mini_data.render).
"""

from __future__ import annotations

import random

from g3n_core.builtin.mini_data.families import EVAL_SEED, digits_held_out, digits_transcript, translation_pairs
from g3n_core.builtin.mini_data.render import speech_params, spoken_digits

ASR_PER_LENGTH = {1: 3, 2: 7, 3: 10, 4: 10, 5: 10}  # held-out digit strings per length: 40 clips (only 3 single digits are held out)
CLIPS_PER_WORD = 2  # 19 words: 38 clips


def asr_items() -> list[tuple[object, str]]:
    """(speech parameters, transcript) for each held-out digit string."""
    rnd = random.Random(f"{EVAL_SEED}-asr")
    items, seen = [], set()
    for length in ASR_PER_LENGTH:
        count = 0
        while count < ASR_PER_LENGTH[length]:
            digits = "".join(rnd.choice("0123456789") for _ in range(length))
            if digits in seen or not digits_held_out(digits):
                continue
            seen.add(digits)
            items.append((speech_params(spoken_digits(digits), rnd, "eval"), digits_transcript(digits)))
            count += 1
    return items


def translation_items() -> list[tuple[object, str, str]]:
    """(speech parameters, English word, French reference) per clip."""
    rnd = random.Random(f"{EVAL_SEED}-translation")
    return [(speech_params(en, rnd, "eval"), en, fr) for en, fr in translation_pairs() for _ in range(CLIPS_PER_WORD)]
