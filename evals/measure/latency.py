"""Latency: prefill tokens/s, time to first token, decode tokens/s (median and p95 over repeats).

Prefill is one forward pass over `prompt_tokens` tokens. Time to first token and decode speed come
from a greedy `generate` of `new_tokens` tokens that cannot stop early, with the Variant's own
generate settings; a stopping-criteria hook stamps each step after device synchronisation. Warm-up
runs come first and are not counted. "p95" is the 95th-percentile-worst repeat: the slowest rate,
the longest time.
"""

from __future__ import annotations

import time

import torch
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

from .common import Measurement, MeasureSettings, median_p95, prompt_ids, synchronize, timed


class _StepClock(StoppingCriteria):
    """Records a synchronised timestamp after every generated token; never stops generation."""

    def __init__(self, device: torch.device):
        self.device = device
        self.stamps: list[float] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        synchronize(self.device)
        self.stamps.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def _generate_timed(loaded, ids: torch.Tensor, new_tokens: int) -> tuple[float, float]:
    """(time to first token, decode tokens/s after the first) of one greedy generation."""
    tokenizer = loaded.tokenizer
    config = GenerationConfig(
        max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id
    )
    clock = _StepClock(loaded.device)
    synchronize(loaded.device)
    start = time.perf_counter()
    loaded.model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        generation_config=config,
        stopping_criteria=StoppingCriteriaList([clock]),
        **loaded.extras.get("generate_kwargs", {}),
    )
    first, last = clock.stamps[0], clock.stamps[-1]
    decode = (len(clock.stamps) - 1) / (last - first) if len(clock.stamps) > 1 and last > first else float("nan")
    return first - start, decode


@torch.inference_mode()
def measure_latency(loaded, settings: MeasureSettings | None = None) -> list[Measurement]:
    """Prefill, time-to-first-token and decode figures of a loaded model."""
    settings = settings or MeasureSettings()
    length = min(settings.prompt_tokens, loaded.context_length - settings.new_tokens)
    ids = torch.tensor([prompt_ids(loaded.tokenizer, length)], device=loaded.device)
    prefill, ttft, decode = [], [], []
    with loaded.lock:
        for run in range(settings.warmup + settings.repeats):
            seconds, _ = timed(loaded.device, lambda: loaded.model(input_ids=ids, use_cache=True, logits_to_keep=1))
            first, rate = _generate_timed(loaded, ids, settings.new_tokens)
            if run >= settings.warmup:
                prefill.append(length / seconds)
                ttft.append(first)
                decode.append(rate)
    n = settings.repeats
    note = f"{length}-token prompt, {settings.new_tokens} new tokens, {settings.warmup} warm-up + {n} repeats"
    rows = []
    for name, values, unit, higher in (
        ("prefill_tokens_per_s", prefill, "tokens/s", True),
        ("ttft_s", ttft, "s", False),
        ("decode_tokens_per_s", decode, "tokens/s", True),
    ):
        median, worst = median_p95(values, higher)
        rows += [Measurement(f"{name}_median", median, unit, note, n, repeats=tuple(values)), Measurement(f"{name}_p95", worst, unit, note, n)]
    return rows
