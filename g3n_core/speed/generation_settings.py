"""Decode settings handed to `model.generate`: a static KV cache (kv_cache="static") and torch.compile (compile=True).

Gemma 3n's static cache in transformers 5.24 keeps one fixed-size buffer per layer that stores KV:
sliding layers get a window-sized ring, global layers the full length, and KV-shared layers store
nothing (they read the producer layer's states), so greedy tokens match the dynamic cache (tested
on tiny past its 16-token window). A static cache is what lets the decode step compile once: its
shapes never change. transformers only auto-compiles on GPUs; on the CPU the compile config must ask
for it explicitly. Without compile=True, a static cache on a GPU gets `disable_compile`, so it does
not compile behind the user's back (a first call costing minutes is a choice, not a default).
"""

from __future__ import annotations

from typing import Any

from transformers import CompileConfig

from ..variant import Variant


def compile_config(device: str) -> CompileConfig:
    """torch.compile settings for the decode step: CUDA graphs on a GPU, plain inductor on the CPU."""
    on_gpu = device.startswith("cuda")
    config = CompileConfig(fullgraph=False, dynamic=False, mode="reduce-overhead" if on_gpu else "default")
    config._compile_all_devices = True  # transformers' own switch for compiling on the CPU
    return config


def generate_kwargs(variant: Variant) -> dict[str, Any]:
    """Extra keyword arguments for model.generate that realise the variant's cache and compile settings."""
    kwargs: dict[str, Any] = {}
    if variant.kv_cache == "static":
        kwargs["cache_implementation"] = "static"
    if variant.compile:
        kwargs["compile_config"] = compile_config(variant.device)
    elif variant.kv_cache == "static" and variant.device != "cpu":
        kwargs["disable_compile"] = True  # transformers would compile a static-cache decode on a GPU by itself
    return kwargs
