"""Numeric traps of real Gemma 3n weights: float16 is never silent, inf/NaN logits stop generation, cached = uncached logits."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from evals.worker import Unit, make_row
from g3n_core import GenerationSettings, NumericalError, Variant, VariantError, chat, load_model, model_info
from g3n_core.generation import check_finite_logits
from g3n_core.variant import FLOAT16_WARNING

HELLO = [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]


def _as_float16(variant: Variant) -> Variant:
    """The same variant in float16, as a GPU would run it (the CPU refuses float16 at construction)."""
    unchecked = object.__new__(Variant)
    for f in dataclasses.fields(Variant):
        object.__setattr__(unchecked, f.name, getattr(variant, f.name))
    object.__setattr__(unchecked, "dtype", "float16")
    return unchecked


def test_the_logit_check_names_the_cure():
    check_finite_logits(torch.randn(1, 1, 50), "bfloat16")
    for bad in (float("inf"), float("-inf"), float("nan")):
        logits = torch.zeros(1, 1, 50)
        logits[0, 0, 7] = bad
        with pytest.raises(NumericalError, match="Use dtype bfloat16, or float32") as caught:
            check_finite_logits(logits, "float16")
        assert "float16 overflows on real Gemma 3n weights" in str(caught.value)


def test_generation_stops_on_overflowing_logits_and_the_next_request_works():
    loaded = load_model(Variant(towers=()))
    norm = loaded.model.model.norm.weight
    kept = norm.detach().clone()
    with torch.no_grad():
        norm.mul_(3e38)  # activations past float32's range: what float16 does to real weights
    with pytest.raises(NumericalError, match="produced (inf|NaN) logits in float32"):
        chat(loaded, HELLO, GenerationSettings(max_new_tokens=3))
    with torch.no_grad():
        norm.copy_(kept)
    assert chat(loaded, HELLO, GenerationSettings(max_new_tokens=3)).new_tokens >= 1


def test_float16_results_carry_the_warning(tiny):
    half = _as_float16(tiny.variant)
    assert half.warnings == [FLOAT16_WARNING] and tiny.variant.warnings == []
    reply = chat(dataclasses.replace(tiny, variant=half), HELLO, GenerationSettings(max_new_tokens=2))
    assert FLOAT16_WARNING in reply.warnings
    assert model_info(half).warnings == [FLOAT16_WARNING] and model_info(tiny.variant).warnings == []
    assert make_row(Unit(half, "builtin_mc"), "acc", 0.5, where={})["warning"] == FLOAT16_WARNING
    assert make_row(Unit(tiny.variant, "builtin_mc"), "acc", 0.5, where={})["warning"] == ""


def test_a_gpu_without_bfloat16_is_not_told_to_use_float16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Tesla T4")
    with pytest.raises(VariantError) as caught:
        Variant(device="cuda", dtype="bfloat16")
    message = str(caught.value)
    assert "use float32" in message and "float16 overflows" in message and "use float16" not in message


# -- cached and uncached logits agree (KV-shared layers read their producer's cache) ----------------

PROMPT = 40  # longer than tiny's 16-token sliding window, so sliding layers drop history while decoding
STEPS = 8


def _runnable_attns() -> list[str]:
    """Every attention implementation a Variant accepts on this machine (flex and flash need CUDA)."""
    from g3n_core.variant import ATTN_IMPLS

    runnable = []
    for attn in ATTN_IMPLS:
        try:
            Variant(attn=attn)
            runnable.append(attn)
        except VariantError:
            pass
    return runnable


def _cached_and_uncached(model) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits at each decode position: a cached prefill then one token at a time, and one uncached pass over it all."""
    ids = torch.randint(10, 2000, (1, PROMPT + STEPS), generator=torch.Generator().manual_seed(3))
    ids[0, 0] = 2
    with torch.inference_mode():
        uncached = model(ids, use_cache=False).logits[0, PROMPT - 1 : -1].float()
        out = model(ids[:, :PROMPT], use_cache=True)
        cached = [out.logits[0, -1].float()]
        for step in range(PROMPT, PROMPT + STEPS - 1):
            out = model(ids[:, step : step + 1], past_key_values=out.past_key_values, use_cache=True)
            cached.append(out.logits[0, -1].float())
    return torch.stack(cached), uncached


@pytest.fixture(scope="module", params=_runnable_attns())
def cache_runs(request) -> dict:
    """For one attention implementation: (cached, uncached) logits of tiny in float32 and in bfloat16."""
    return {dtype: _cached_and_uncached(load_model(Variant(attn=request.param, dtype=dtype, towers=())).model) for dtype in ("float32", "bfloat16")}


def test_logits_with_and_without_a_kv_cache_agree_in_float32(cache_runs):
    cached, uncached = cache_runs["float32"]
    assert (cached - uncached).abs().max() < 1e-4 * max(1.0, float(uncached.abs().max()))
    assert torch.equal(cached.argmax(-1), uncached.argmax(-1))


def test_logits_with_and_without_a_kv_cache_agree_in_bfloat16(cache_runs):
    """Within bfloat16's own rounding: on random weights it moves logits by more than the cache path does."""
    reference = cache_runs["float32"][1]
    cached, uncached = cache_runs["bfloat16"]
    rounding = float((uncached - reference).abs().max())  # the yardstick: bfloat16 against float32, both uncached
    assert float((cached - uncached).abs().max()) <= rounding
    assert float((cached - reference).abs().max()) <= 1.25 * rounding
