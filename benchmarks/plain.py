"""The baseline: plain transformers on the same checkpoint, loaded the default way."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, Gemma3nForCausalLM

from g3n_core.builtin.checkpoint import ensure_shape_checkpoint
from g3n_core.errors import VariantError
from g3n_core.loading import TEXT_ONLY_KEY_MAPPING, quiet_transformers
from g3n_core.sources import checkpoint_path, classify
from g3n_core.variant import parse_variant_spec

PLAIN = "plain transformers"  # the baseline's label in every benchmark's rows


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


def variant_spec(model: str, dtype: str, device: str, extra: str, attn: str | None = None) -> str:
    """The full spec of a benchmark variant: the run's model, dtype, device, text-only towers (and attention), then `extra`."""
    fields = f"{model} dtype={dtype} device={device} towers=text"
    fields += "" if attn is None or "attn=" in extra else f" attn={attn}"
    return f"{fields} {extra}"


def runnable(model: str, dtype: str, device: str, specs: list[str], attn: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The specs this machine can run, and for each other one the one-line reason (printed as it is skipped)."""
    keep, skipped = [], {}
    for spec in specs:
        try:
            parse_variant_spec(variant_spec(model, dtype, device, spec, attn))
            keep.append(spec)
        except VariantError as err:
            skipped[spec] = str(err)
            print(f"skipped [{spec}]: {err}", flush=True)
    return keep, skipped
