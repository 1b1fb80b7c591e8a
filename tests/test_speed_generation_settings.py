"""Static KV cache and torch.compile as Variant options: the keyword arguments generate gets, and identical tokens."""

from __future__ import annotations

import pytest
import torch

from benchmarks.plain import fixed_prompt
from benchmarks.timing import timed_generate
from g3n_core import GenerationSettings, Variant, VariantError, chat, load_model
from g3n_core.speed.generation_settings import generate_kwargs


def test_kwargs_follow_the_variant():
    assert generate_kwargs(Variant()) == {}
    assert generate_kwargs(Variant(kv_cache="static")) == {"cache_implementation": "static"}  # the CPU never auto-compiles
    compiled = generate_kwargs(Variant(kv_cache="static", compile=True))
    assert compiled["cache_implementation"] == "static"
    assert compiled["compile_config"]._compile_all_devices  # transformers compiles on the CPU only when asked
    assert compiled["compile_config"].mode == "default"  # CUDA graphs are for GPUs


def test_compile_needs_a_static_cache():
    with pytest.raises(VariantError) as caught:
        Variant(compile=True)
    assert caught.value.field == "compile"


def test_static_cache_matches_dynamic_past_the_sliding_window():
    # tiny's sliding window is 16 tokens: a 40-token prompt and 40 new tokens cross it in prefill and decode.
    dynamic = load_model(Variant(towers=()))
    static = load_model(Variant(towers=(), kv_cache="static"))
    ids = fixed_prompt(40)
    expected = timed_generate(dynamic.model, ids, 40).tokens
    assert timed_generate(static.model, ids, 40, **static.extras["generate_kwargs"]).tokens == expected


def test_chat_uses_the_static_cache(tiny):
    static = load_model(Variant(kv_cache="static"))
    seen = []
    original = static.model.generate

    def spy(*args, **kwargs):
        seen.append(kwargs.get("cache_implementation"))
        return original(*args, **kwargs)

    static.model.generate = spy
    settings = GenerationSettings(max_new_tokens=8)
    assert chat(static, "Count to five", settings).text == chat(tiny, "Count to five", settings).text
    assert seen == ["static"]


def test_compiled_decode_step_gives_the_same_tokens():
    # The wiring of compile=True through generate, traced by dynamo; the eager backend stands in for
    # inductor, whose CPU code generation takes minutes (benchmarks.decode measures the real thing).
    loaded = load_model(Variant(towers=(), kv_cache="static", compile=True))
    kwargs = loaded.extras["generate_kwargs"]
    kwargs["compile_config"].backend = "eager"
    kwargs["compile_config"].mode = None
    ids = fixed_prompt(20)
    torch._dynamo.reset()
    compiled = timed_generate(loaded.model, ids, 3, **kwargs).tokens
    plain = timed_generate(loaded.model, ids, 3, cache_implementation="static", disable_compile=True).tokens
    assert compiled == plain
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # dynamo really traced the decode step
