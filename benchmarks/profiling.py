"""Where decode time goes: torch.profiler over a few greedy decode steps, top operators by self time."""

from __future__ import annotations

import torch
from torch.profiler import ProfilerActivity, profile


def profile_decode(model, input_ids: torch.Tensor, steps: int = 4, rows: int = 12, **generate_kwargs) -> str:
    """A table of the operators that take the most self time while generating `steps` tokens."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if input_ids.device.type == "cuda" else [])

    def run() -> None:
        model.generate(
            input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=steps, min_new_tokens=steps, do_sample=False, **generate_kwargs
        )

    with torch.inference_mode():
        run()  # warm-up: page-ins and first-call allocations are not what is being profiled
        with profile(activities=activities) as prof:
            run()
    key = "self_cuda_time_total" if input_ids.device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)
