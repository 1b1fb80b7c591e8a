"""Training examples for mini in exactly the forms evaluation feeds them, with loss on the answer only.

- chat: the Gemma 3n chat template (`g3n_core.prompt.encode_conversation`, as `generate` and evals'
  chat requests build it), answer + <end_of_turn>;
- completion: lm-eval's plain text, 0-3 shots of "Question: q\\nAnswer: a\\n\\n" before
  "Question: q\\nAnswer:", the answer " a\\n" (builtin_short_answer stops at the newline;
  builtin_mc scores " a" by log-likelihood);
- images and speech: a chat turn with the media item and its question, media drawn once per run
  into memory (`MediaPool`) on the training side of the split.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ...prompt import encode_conversation
from .families import (
    IMAGE_QUESTIONS,
    TRANSCRIBE_PROMPTS,
    TRANSLATE_PROMPTS,
    alphabet_items,
    digits_held_out,
    digits_transcript,
    fewshot_items,
    training_items,
    translation_pairs,
)
from .render import draw, draw_params, pcm_to_float, speak, speech_params, spoken_digits

IGNORE = -100  # label of tokens without loss
IMAGE_KINDS = tuple(IMAGE_QUESTIONS)


@dataclass
class Example:
    """Token ids, per-token labels (IGNORE outside the answers), and the media item it needs, if any."""

    ids: list[int]
    labels: list[int]
    family: str
    image: int | None = None  # index into MediaPool.pixels
    audio: int | None = None  # index into MediaPool.features
    # (family, start, end) of each answer in `ids`, for the per-family loss log; default: every label is `family`'s
    spans: list[tuple[str, int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.spans:
            self.spans = [(self.family, 0, len(self.ids))]


def _answer_example(prompt_ids: list[int], answer_ids: list[int], family: str, **media) -> Example:
    return Example(prompt_ids + answer_ids, [IGNORE] * len(prompt_ids) + answer_ids, family, **media)


class TextExamples:
    """Chat and completion examples of the training items (and the alphabet they build on)."""

    def __init__(self, processor):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.end_of_turn = self.tokenizer.convert_tokens_to_ids("<end_of_turn>")
        self.items = [i for i in training_items()]
        self.fewshot = list(fewshot_items())
        self.facts = [(i.question, i.answer, i.family) for i in self.items] + [(q, a, "alphabet") for q, a in alphabet_items()]
        self.by_family: dict[str, list[tuple[str, str, str]]] = {}
        for fact in self.facts:
            self.by_family.setdefault(fact[2], []).append(fact)
        # Families are drawn evenly (comparison alone has 90% of the items), the alphabet and letter successors at half weight.
        self.families = list(self.by_family)
        self.weights = [0.5 if f in ("alphabet", "after_letter") else 1.0 for f in self.families]

    @lru_cache(maxsize=None)  # noqa: B019 - one instance per run; prompts repeat
    def chat_prompt(self, text: str, media: str | None = None) -> tuple[int, ...]:
        """Token ids of a one-turn conversation up to the model's turn (media as its full soft-token sequence)."""
        content = ([{"type": media}] if media else []) + [{"type": "text", "text": text}]
        return tuple(encode_conversation(self.processor, [{"role": "user", "content": content}]))

    def chat(self, question: str, answer: str, family: str, media: str | None = None, **index) -> Example:
        """The chat form: the answer and <end_of_turn> carry the loss."""
        answer_ids = self.tokenizer.encode(answer, add_special_tokens=False) + [self.end_of_turn]
        return _answer_example(list(self.chat_prompt(question, media)), answer_ids, family, **index)

    def completion(self, question: str, answer: str, family: str, shots: list[tuple[str, str, str]], supervise_shots: bool = False) -> Example:
        """The lm-eval form: BOS (the tokenizer's own), shots, question; ' answer\\n' carries the loss (each shot's too if asked).

        A shot's answer has exactly the context of a completion with fewer shots, so supervising it is
        free extra signal; the tokenizer must tokenize a prefix as the whole does (mini's is per character).
        """
        text, ids, labels, spans = "", [], [], []
        for n, (q, a, f) in enumerate([*shots, (question, answer, family)]):
            text += f"Question: {q}\nAnswer:"
            start = len(self.tokenizer.encode(text))
            text += f" {a}\n"
            whole = self.tokenizer.encode(text)
            if whole[: len(ids)] != ids:
                raise ValueError("the tokenizer does not tokenize prefixes stably; shots cannot be supervised")
            scored = n == len(shots) or supervise_shots
            labels += [IGNORE] * (start - len(ids)) + (whole[start:] if scored else [IGNORE] * (len(whole) - start))
            if scored:
                spans.append((f, start, len(whole)))
            ids = whole
            text += "\n"
        return Example(ids, labels, family, spans=spans)

    def sample(self, rnd: random.Random, weights: list[float] | None = None, supervise_shots: bool = False) -> Example:
        """One random text example: a family (by `weights`, default the fixed ones), then one of its training facts, in chat or completion form."""
        family = rnd.choices(self.families, weights or self.weights)[0]
        question, answer, _ = rnd.choice(self.by_family[family])
        if rnd.random() < 0.5:
            return self.chat(question, answer, family)
        if rnd.random() < 0.4:  # the evaluation's own few-shot context (the pool's first 3)
            shots = [(i.question, i.answer, i.family) for i in self.fewshot[:3]]
        else:  # fewer, random shots: cheaper, and the answer must not depend on which shots came first
            shots = rnd.sample(self.facts, rnd.choice((0, 0, 1, 2)))
        return self.completion(question, answer, family, shots, supervise_shots)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass
class MediaPool:
    """Images and speech drawn once per run (training side of the split), ready for the model."""

    pixels: np.ndarray  # [N, 3, H, W] uint8: the processor's resized image (its float values are pixels / 255)
    image_labels: list[tuple[str, str]]  # (kind, answer)
    features: list[np.ndarray]  # log-mel [frames, 128] float32 per clip, as the feature extractor makes it
    audio_labels: list[tuple[str, str]]  # ("asr" | "translate", answer)
    hashes: dict[str, list[str]] = field(default_factory=dict)  # sha256[:16] of image pixels / PCM bytes, for the held-out test


def image_batch_pixels(processor, images) -> np.ndarray:
    """The processor's pixel values for PIL images, as uint8 (exact: the processor only resizes and divides by 255)."""
    values = processor.image_processor(images, return_tensors="np")["pixel_values"]
    return np.rint(values * 255.0).astype(np.uint8)


def build_media_pool(
    processor, seed: int, images_per_kind: int, asr_clips: int, clips_per_word: int, progress=None, side: str = "train"
) -> MediaPool:
    """Draw and speak the run's media with `seed` on `side` of the split (the trainer's: "train"; "eval" only for measuring)."""
    rnd = random.Random(f"mini-media-{seed}")
    drawn, labels, image_hashes = [], [], []
    for kind in IMAGE_KINDS:
        for _ in range(images_per_kind):
            params = draw_params(kind, rnd, side)
            image = draw(params)
            image_hashes.append(_digest(image.tobytes()))
            drawn.append(image)
            labels.append((kind, params.label))
    batches = [image_batch_pixels(processor, drawn[i : i + 256]) for i in range(0, len(drawn), 256)]
    pixels = np.concatenate(batches) if batches else np.zeros((0, 3, 0, 0), dtype=np.uint8)
    clips: list[tuple[str, str, str]] = []  # (task, spoken text, answer)
    while len(clips) < asr_clips:
        digits = "".join(rnd.choice("0123456789") for _ in range(rnd.randint(1, 5)))
        if digits_held_out(digits) == (side == "eval"):
            clips.append(("asr", spoken_digits(digits), digits_transcript(digits)))
    for english, french in translation_pairs():
        clips += [("translate", english, french)] * clips_per_word
    features, audio_labels, audio_hashes = [], [], []
    for n, (task, text, answer) in enumerate(clips):
        pcm = speak(speech_params(text, rnd, side))
        audio_hashes.append(_digest(pcm.tobytes()))
        extracted = processor.feature_extractor([pcm_to_float(pcm)], return_tensors="np")
        frames = int(extracted["input_features_mask"][0].sum())
        features.append(extracted["input_features"][0, :frames].astype(np.float32))
        audio_labels.append((task, answer))
        if progress and n % 100 == 0:
            progress(n, len(clips))
    return MediaPool(pixels, labels, features, audio_labels, {"images": image_hashes, "audio": audio_hashes})


class MediaExamples:
    """Chat examples over a MediaPool: the picture's question, or a transcription / translation request."""

    def __init__(self, text: TextExamples, pool: MediaPool):
        self.text, self.pool = text, pool

    def image(self, rnd: random.Random) -> Example:
        """A random pooled picture with its question."""
        index = rnd.randrange(len(self.pool.image_labels))
        kind, answer = self.pool.image_labels[index]
        return self.text.chat(IMAGE_QUESTIONS[kind], answer, f"image_{kind}", media="image", image=index)

    def audio(self, rnd: random.Random) -> Example:
        """A random pooled clip with one of its task's instructions."""
        index = rnd.randrange(len(self.pool.audio_labels))
        task, answer = self.pool.audio_labels[index]
        prompt = rnd.choice(TRANSCRIBE_PROMPTS if task == "asr" else TRANSLATE_PROMPTS)
        return self.text.chat(prompt, answer, f"speech_{task}", media="audio", audio=index)
