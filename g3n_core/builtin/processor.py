"""Tokenizer and processor for the built-in models: Gemma 3n's special tokens around a small BPE."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from transformers import Gemma3nAudioFeatureExtractor, Gemma3nProcessor, GemmaTokenizer, SiglipImageProcessor

from .configs import TokenLayout

ASSETS = Path(__file__).parent / "assets"

# Named special tokens as the released tokenizer_config.json declares them.
MODEL_SPECIFIC_TOKENS = {
    "image_token": "<image_soft_token>",
    "boi_token": "<start_of_image>",
    "eoi_token": "<end_of_image>",
    "audio_token": "<audio_soft_token>",
    "boa_token": "<start_of_audio>",
    "eoa_token": "<end_of_audio>",
}


TINY_VOCABULARY = "tiny_bpe.json"  # byte-fallback BPE (scripts/make_tiny_bpe.py)
MINI_VOCABULARY = "mini_chars.json"  # one token per character, no merges (scripts/make_mini_vocab.py)


@lru_cache(maxsize=None)
def _bpe(vocabulary: str) -> tuple[list[str], list[tuple[str, str]]]:
    data = json.loads((ASSETS / vocabulary).read_text())
    return data["pieces"], [tuple(m.split(" ")) for m in data["merges"]]


def chat_template() -> str:
    """Gemma 3n's chat template, as shipped with the -it checkpoints."""
    return (ASSETS / "chat_template.jinja").read_text()


def _vocab(layout: TokenLayout, vocabulary: str) -> dict[str, int]:
    specials = {
        0: "<pad>",
        1: "<eos>",
        2: "<bos>",
        3: "<unk>",
        4: "<mask>",
        layout.start_of_turn: "<start_of_turn>",
        layout.end_of_turn: "<end_of_turn>",
        layout.boi: "<start_of_image>",
        layout.boa: "<start_of_audio>",
        layout.eoi: "<end_of_image>",
        layout.image_token: "<image_soft_token>",
        layout.eoa: "<end_of_audio>",
        layout.audio_token: "<audio_soft_token>",
    }
    pieces, _ = _bpe(vocabulary)
    ordinary = iter([f"<0x{i:02X}>" for i in range(256)] + pieces)
    vocab = {}
    for token_id in range(layout.vocab_size):
        token = specials.get(token_id)
        if token is None:
            token = next(ordinary, None) or f"<unused{token_id}>"
        vocab[token] = token_id
    return vocab


def build_tokenizer(layout: TokenLayout, vocabulary: str = TINY_VOCABULARY, add_bos: bool = False) -> GemmaTokenizer:
    """A GemmaTokenizer whose special tokens sit at the ids of `layout`, around the pieces of `vocabulary` (an asset).

    `add_bos` makes plain-text encoding start with <bos>, as the released Gemma 3n tokenizer does (mini);
    tiny keeps its original behaviour (no BOS), which its tests were written against.
    """
    _, merges = _bpe(vocabulary)
    return GemmaTokenizer(
        vocab=_vocab(layout, vocabulary),
        merges=merges,
        add_bos_token=add_bos,
        extra_special_tokens=["<start_of_turn>", "<end_of_turn>"],
        **MODEL_SPECIFIC_TOKENS,
    )


def build_processor(
    layout: TokenLayout,
    image_size: int,
    image_tokens: int,
    audio_tokens: int,
    vocabulary: str = TINY_VOCABULARY,
    add_bos: bool = False,
) -> Gemma3nProcessor:
    """Tokenizer, SigLIP-style image processor and Gemma 3n audio feature extractor, with the chat template."""
    image_processor = SiglipImageProcessor(
        size={"height": image_size, "width": image_size},
        do_normalize=False,  # MobileNetV5 takes pixels in [0, 1]
        resample=2,
    )
    return Gemma3nProcessor(
        feature_extractor=Gemma3nAudioFeatureExtractor(),
        image_processor=image_processor,
        tokenizer=build_tokenizer(layout, vocabulary, add_bos),
        chat_template=chat_template(),
        audio_seq_length=audio_tokens,
        image_seq_length=image_tokens,
    )
