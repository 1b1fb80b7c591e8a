"""Timing of generation: per-token clocks, decode tokens/s, medians of interleaved rounds."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from transformers.generation.streamers import BaseStreamer

from evals.measure.common import synchronize


class TokenClock(BaseStreamer):
    """A streamer that notes when the prompt was taken and when each new token arrived."""

    def __init__(self):
        self.started = time.perf_counter()
        self.times: list[float] = []
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate() first streams the prompt
            self._prompt_seen = True
            return
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


@dataclass
class GenerationTiming:
    """One greedy generation: its tokens, time to the first new token, decode speed after it."""

    tokens: list[int]
    prefill_s: float
    decode_tokens_per_s: float


def timed_generate(model, input_ids: torch.Tensor, new_tokens: int, **generate_kwargs) -> GenerationTiming:
    """Greedy generation of exactly `new_tokens` tokens (no early stop), timed per token."""
    device = input_ids.device
    synchronize(device)
    clock = TokenClock()
    with torch.inference_mode():
        out = model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            streamer=clock,
            **generate_kwargs,
        )
    synchronize(device)
    times = clock.times
    decode_s = times[-1] - times[0]
    return GenerationTiming(
        tokens=out[0, input_ids.shape[1] :].tolist(),
        prefill_s=times[0] - clock.started,
        decode_tokens_per_s=(len(times) - 1) / decode_s if decode_s > 0 else float("nan"),
    )


def median(values: list[float]) -> float:
    """Median, NaN for no values."""
    return statistics.median(values) if values else float("nan")


def paired_ratio(ours: list[float], base: list[float]) -> float:
    """Median over rounds of ours/base measured in the same round: robust to a machine whose load drifts."""
    return median([o / b for o, b in zip(ours, base) if b > 0])


def first_difference(a: list[int], b: list[int]) -> int | None:
    """Index of the first differing token, None when the sequences are identical."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))
