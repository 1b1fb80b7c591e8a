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


@lru_cache(maxsize=1)
def _bpe() -> tuple[list[str], list[tuple[str, str]]]:
    data = json.loads((ASSETS / "tiny_bpe.json").read_text())
    return data["pieces"], [tuple(m.split(" ")) for m in data["merges"]]


def chat_template() -> str:
    """Gemma 3n's chat template, as shipped with the -it checkpoints."""
    return (ASSETS / "chat_template.jinja").read_text()


def _vocab(layout: TokenLayout) -> dict[str, int]:
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
    pieces, _ = _bpe()
    ordinary = iter([f"<0x{i:02X}>" for i in range(256)] + pieces)
    vocab = {}
    for token_id in range(layout.vocab_size):
        token = specials.get(token_id)
        if token is None:
            token = next(ordinary, None) or f"<unused{token_id}>"
        vocab[token] = token_id
    return vocab


def build_tokenizer(layout: TokenLayout) -> GemmaTokenizer:
    """A GemmaTokenizer whose special tokens sit at the ids of `layout`."""
    _, merges = _bpe()
    return GemmaTokenizer(
        vocab=_vocab(layout),
        merges=merges,
        extra_special_tokens=["<start_of_turn>", "<end_of_turn>"],
        **MODEL_SPECIFIC_TOKENS,
    )


def build_processor(layout: TokenLayout, image_size: int, image_tokens: int, audio_tokens: int) -> Gemma3nProcessor:
    """Tokenizer, SigLIP-style image processor and Gemma 3n audio feature extractor, with the chat template."""
    image_processor = SiglipImageProcessor(
        size={"height": image_size, "width": image_size},
        do_normalize=False,  # MobileNetV5 takes pixels in [0, 1]
        resample=2,
    )
    return Gemma3nProcessor(
        feature_extractor=Gemma3nAudioFeatureExtractor(),
        image_processor=image_processor,
        tokenizer=build_tokenizer(layout),
        chat_template=chat_template(),
        audio_seq_length=audio_tokens,
        image_seq_length=image_tokens,
    )
