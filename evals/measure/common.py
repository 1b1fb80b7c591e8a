"""What every measurement shares: its settings, its result type, a fixed prompt, device timing."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

MEASURES = ("latency", "memory", "sparsity")

# A fixed English paragraph, so that every variant sees the same tokens.
PROMPT_TEXT = (
    "The workbench compares configurations of the same model side by side. Each configuration loads "
    "the weights, runs the same prompts and reports how fast it answers, how much memory it needs and "
    "how often the feed-forward layers skip work. Small changes to attention, layer widths or sparsity "
    "can move these numbers in different directions, which is why they are measured together. "
)


@dataclass(frozen=True)
class MeasureSettings:
    """Knobs of the measurements (defaults keep tiny fast and e2b-shape feasible on a CPU)."""

    prompt_tokens: int = 128  # prefill / time-to-first-token prompt length
    new_tokens: int = 32  # decode length
    warmup: int = 1
    repeats: int = 5
    kv_context: int = 1024  # context length at which the KV cache is sized
    sparsity_prompt_tokens: int = 128

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


@dataclass
class Measurement:
    """One measured number."""

    name: str
    value: float | None
    unit: str
    note: str = ""
    n: int | None = None  # repeats or tokens it summarises
    status: str = "ok"  # "unsupported": this variant cannot be measured this way (value None, note says why)
    repeats: tuple[float, ...] = ()  # the per-repeat values a median summarises (saved as the unit's samples)


def synchronize(device: torch.device) -> None:
    """Wait for queued device work, so wall-clock timings are real."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn) -> tuple[float, object]:
    """(seconds, result) of fn(), with device synchronisation on both sides."""
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return time.perf_counter() - start, result


def prompt_ids(tokenizer, length: int) -> list[int]:
    """Exactly `length` token ids of the fixed paragraph (repeated as needed), after BOS."""
    ids = tokenizer.encode(PROMPT_TEXT, add_special_tokens=False)
    body = (ids * (length // max(1, len(ids)) + 1))[: max(0, length - 1)]
    return [tokenizer.bos_token_id, *body]


def median_p95(values: list[float], higher_is_better: bool) -> tuple[float, float]:
    """Median, and the 95th-percentile-worst value (slowest rate or longest time)."""
    arr = np.asarray(values, dtype=np.float64)
    worst = np.percentile(arr, 5) if higher_is_better else np.percentile(arr, 95)
    return float(np.median(arr)), float(worst)
