"""Configurations of the built-in models, as data.

`tiny` keeps every part of Gemma 3n (AltUp, LAuReL, per-layer embeddings, KV sharing, the
4-local-to-1-global pattern, activation sparsity, MobileNetV5, the USM-style audio encoder) at a
size that builds in seconds. `e2b-shape` / `e4b-shape` are the public E2B / E4B configurations
(Google's config.json values, as listed in the Gemma 3n model cards) for memory and speed work
without the real weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import Gemma3nAudioConfig, Gemma3nConfig, Gemma3nTextConfig, Gemma3nVisionConfig


@dataclass(frozen=True)
class TokenLayout:
    """Where the special tokens sit in a vocabulary; the model config and tokenizer must agree."""

    text_vocab: int  # ids below this are text tokens and have per-layer embeddings
    vision_vocab: int
    audio_vocab: int
    start_of_turn: int
    end_of_turn: int
    boi: int  # <start_of_image>
    boa: int  # <start_of_audio>

    @property
    def vocab_size(self) -> int:
        """All token ids: text, then the vision block, then the audio block."""
        return self.text_vocab + self.vision_vocab + self.audio_vocab

    @property
    def eoi(self) -> int:
        """<end_of_image>, the first id of the vision block."""
        return self.text_vocab

    @property
    def image_token(self) -> int:
        """<image_soft_token>."""
        return self.text_vocab + 1

    @property
    def eoa(self) -> int:
        """<end_of_audio>, the first id of the audio block."""
        return self.text_vocab + self.vision_vocab

    @property
    def audio_token(self) -> int:
        """<audio_soft_token>."""
        return self.eoa + 1


# The released checkpoints' ids (Gemma 3n config.json / tokenizer).
REAL_LAYOUT = TokenLayout(
    text_vocab=262_144, vision_vocab=128, audio_vocab=128, start_of_turn=105, end_of_turn=106, boi=255_999, boa=256_000
)
TINY_LAYOUT = TokenLayout(text_vocab=2048, vision_vocab=8, audio_vocab=8, start_of_turn=5, end_of_turn=6, boi=2046, boa=2047)

# mini: a character vocabulary (scripts/make_mini_vocab.py) needs few text ids.
MINI_LAYOUT = TokenLayout(text_vocab=384, vision_vocab=8, audio_vocab=8, start_of_turn=5, end_of_turn=6, boi=382, boa=383)

TINY_IMAGE_SIZE = 128  # pixels; the real processor uses 768
TINY_IMAGE_TOKENS = 16  # MobileNetV5 fusion adapter output 4x4; the real one is 16x16 = 256
AUDIO_TOKENS = 188  # 30 s of audio -> 188 soft tokens, in tiny as in the real model
REAL_IMAGE_SIZE = 768
REAL_IMAGE_TOKENS = 256


def _multimodal_ids(layout: TokenLayout) -> dict:
    return {
        "boi_token_id": layout.boi,
        "eoi_token_id": layout.eoi,
        "image_token_id": layout.image_token,
        "boa_token_id": layout.boa,
        "eoa_token_id": layout.eoa,
        "audio_token_id": layout.audio_token,
    }


def _small_config(layout: TokenLayout, text: dict, vision_args: dict, audio: dict) -> Gemma3nConfig:
    """A built-in Gemma 3n of small size: `text` / `audio` are config fields, `vision_args` timm's MobileNetV5 arguments."""
    return Gemma3nConfig(
        text_config=Gemma3nTextConfig(vocab_size=layout.vocab_size, vocab_size_per_layer_input=layout.text_vocab, altup_num_inputs=4, **text),
        vision_config=Gemma3nVisionConfig(model_args=vision_args, vocab_size=layout.vision_vocab, vocab_offset=layout.text_vocab),
        audio_config=Gemma3nAudioConfig(vocab_size=layout.audio_vocab, vocab_offset=layout.text_vocab + layout.vision_vocab, **audio),
        vision_soft_tokens_per_image=TINY_IMAGE_TOKENS,
        audio_soft_tokens_per_image=AUDIO_TOKENS,
        **_multimodal_ids(layout),
    )


def tiny_config() -> Gemma3nConfig:
    """15 layers (3 blocks of 4 local + 1 global), the last 10 KV-shared, the first 5 sparse: E4B's proportions."""
    text = {
        "hidden_size": 64,
        "intermediate_size": [512] * 15,
        "num_hidden_layers": 15,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 32,
        "sliding_window": 16,
        "max_position_embeddings": 2048,
        "hidden_size_per_layer_input": 16,
        "laurel_rank": 8,
        "num_kv_shared_layers": 10,
        "activation_sparsity_pattern": [0.95] * 5 + [0.0] * 10,
    }
    # The real mobilenetv5_300m_enc block layout at 1/16 of its channels, fused to a 4x4 grid.
    vision = {"channel_multiplier": 0.0625, "stem_size": 16, "msfa_output_resolution": 4}
    audio = {"hidden_size": 64, "conf_num_attention_heads": 2, "conf_num_hidden_layers": 2, "sscp_conv_channel_size": [16, 8]}
    return _small_config(TINY_LAYOUT, text, vision, audio)


MINI_LAYERS = 10


def mini_config() -> Gemma3nConfig:
    """10 layers (2 blocks of 4 local + 1 global), the last 4 KV-shared, the first 3 sparse; small towers; ~7M parameters."""
    text = {
        "hidden_size": 128,
        "intermediate_size": [512] * MINI_LAYERS,
        "num_hidden_layers": MINI_LAYERS,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 64,
        "sliding_window": 64,
        "max_position_embeddings": 1024,
        "hidden_size_per_layer_input": 16,
        "laurel_rank": 16,
        "num_kv_shared_layers": 4,
        "activation_sparsity_pattern": [0.95] * 3 + [0.0] * (MINI_LAYERS - 3),
    }
    # The released mobilenetv5_300m_enc block layout at 1/32 of its channels (its attention widths do not
    # scale with the multiplier, so this is over half of mini's parameters), fused to a 4x4 grid.
    vision = {"channel_multiplier": 0.03125, "stem_size": 16, "msfa_output_resolution": 4}
    audio = {"hidden_size": 96, "conf_num_attention_heads": 2, "conf_num_hidden_layers": 3, "sscp_conv_channel_size": [32, 16]}
    return _small_config(MINI_LAYOUT, text, vision, audio)


# Public Gemma 3n text configurations; everything not listed is shared and is the config default.
SHAPES = {
    "e2b-shape": {"num_hidden_layers": 30, "intermediate_size": 8192, "num_kv_shared_layers": 10},
    "e4b-shape": {"num_hidden_layers": 35, "intermediate_size": 16_384, "num_kv_shared_layers": 15},
}


def shape_config(name: str) -> Gemma3nConfig:
    """The E2B or E4B configuration with the real vision (MobileNetV5-300M) and audio (USM) towers."""
    spec = SHAPES[name]
    layers = spec["num_hidden_layers"]
    text = Gemma3nTextConfig(
        num_hidden_layers=layers,
        intermediate_size=[spec["intermediate_size"]] * layers,
        num_kv_shared_layers=spec["num_kv_shared_layers"],
        activation_sparsity_pattern=[0.95] * 10 + [0.0] * (layers - 10),
    )
    return Gemma3nConfig(
        text_config=text,
        vision_config=Gemma3nVisionConfig(),
        audio_config=Gemma3nAudioConfig(),
        vision_soft_tokens_per_image=REAL_IMAGE_TOKENS,
        audio_soft_tokens_per_image=AUDIO_TOKENS,
        **_multimodal_ids(REAL_LAYOUT),
    )
