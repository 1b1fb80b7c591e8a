"""The baseline: plain transformers on the same checkpoint, loaded the default way."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, Gemma3nForCausalLM

from g3n_core.builtin.checkpoint import ensure_shape_checkpoint
from g3n_core.loading import TEXT_ONLY_KEY_MAPPING, quiet_transformers
from g3n_core.sources import checkpoint_path, classify


def checkpoint_for(model: str) -> Path:
    """The folder a model's weights live in; e2b/e4b shapes are written to the cache once (bfloat16, text-only)."""
    source = classify(model)
    return ensure_shape_checkpoint(source.name, text_only=True) if source.is_shape else checkpoint_path(source)


def load_plain(model: str, dtype: str = "bfloat16", device: str = "cpu", attn: str = "sdpa") -> Gemma3nForCausalLM:
    """Gemma3nForCausalLM.from_pretrained on the checkpoint, with only the dtype, attention and device set."""
    path = checkpoint_for(model)
    with quiet_transformers():
        plain = Gemma3nForCausalLM.from_pretrained(
            path,
            config=AutoConfig.from_pretrained(path).get_text_config(),
            dtype=getattr(torch, dtype),
            attn_implementation=attn,
            key_mapping=TEXT_ONLY_KEY_MAPPING,  # multimodal layouts (tiny, released checkpoints) nest the decoder
        )
    return plain.to(device).eval()


def fixed_prompt(length: int = 32, seed: int = 0, low: int = 1000, high: int = 2000, device: str = "cpu") -> torch.Tensor:
    """[1, length] token ids drawn from a fixed seed (ordinary text ids, valid in tiny's vocabulary and E2B's)."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(low, high, (1, length), generator=generator)
    ids[0, 0] = 2  # <bos>
    return ids.to(device)
