"""Memory: weight bytes by component, peak memory while loading and running, KV-cache bytes.

Peak memory is taken over a window that starts before the variant is loaded (the model cache is
emptied first, so no other variant is resident) and ends after a prefill of `kv_context` tokens.
On the CPU it is the process's resident set size, sampled every few milliseconds by a thread
(`peak_memory_bytes` is the rise over the start of the window, `peak_rss_bytes` the absolute peak);
on a GPU it is the caching allocator's peak (`torch.cuda.max_memory_allocated`). The KV cache is
measured, not estimated: the bytes held by the DynamicCache after that prefill (sliding-window
layers keep only their window; KV-shared layers hold nothing of their own). A MatFormer slice is
measured as the model cache serves it: its parent loads in the window and the slice is an elastic
view of it, so its peak is the parent's (export the slice to measure it on its own).
"""

from __future__ import annotations

import gc
import threading
import time

import psutil
import torch

from g3n_core.info import FILE_ONLY, model_info

from .common import Measurement, MeasureSettings, prompt_ids


class PeakRSS:
    """Samples this process's RSS in a background thread between start() and stop()."""

    def __init__(self, interval_s: float = 0.005):
        self.interval_s = interval_s
        self.process = psutil.Process()
        self.start_rss = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval_s)

    def start(self) -> PeakRSS:
        """Begin sampling."""
        self.start_rss = self.peak = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> int:
        """End sampling; the peak RSS in bytes."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        return self.peak


def weight_bytes_by_component(variant) -> dict[str, int]:
    """Bytes of the weights the loaded model holds per component (token embeddings, PLE, decoder, towers) at the variant's dtype.

    What only the released files hold (FILE_ONLY: the KV-shared layers' k/v projections, which
    transformers never builds) is left out: it is never in memory."""
    return {name: value for name, value in model_info(variant).bytes.items() if name != FILE_ONLY}


def _cache_bytes(cache) -> int:
    total = 0
    for layer in getattr(cache, "layers", []):
        for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if isinstance(tensor, torch.Tensor):
                total += tensor.numel() * tensor.element_size()
    return total


@torch.inference_mode()
def kv_cache_bytes(loaded, context: int) -> int:
    """Bytes of the KV cache after a prefill of `context` tokens (batch of one)."""
    context = min(context, loaded.context_length)
    ids = torch.tensor([prompt_ids(loaded.tokenizer, context)], device=loaded.device)
    with loaded.lock:
        out = loaded.model(input_ids=ids, use_cache=True, logits_to_keep=1)
    return _cache_bytes(out.cache)


def _loaded_note(loaded) -> str:
    parent = loaded.extras.get("elastic_parent")
    if parent is None:
        return "parameters and buffers as loaded"
    return f"the slice's tensors: views of its loaded parent {parent.variant.name} ({parent.weight_bytes()} bytes resident), no copies"


def measure_memory(variant, cache, settings: MeasureSettings | None = None) -> list[Measurement]:
    """Weight bytes, peak memory of load + a `kv_context` prefill, and KV-cache bytes, for a variant."""
    settings = settings or MeasureSettings()
    rows = [Measurement(f"weight_bytes_{name}", float(value), "bytes", "from the model's shapes at its dtype") for name, value in weight_bytes_by_component(variant).items()]
    cache.clear()
    gc.collect()
    on_gpu = variant.device.startswith("cuda")
    if on_gpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(variant.device)
        base = torch.cuda.memory_allocated(variant.device)
    sampler = PeakRSS().start()
    loaded = cache.get(variant)
    kv = kv_cache_bytes(loaded, settings.kv_context)
    peak_rss = sampler.stop()
    context = min(settings.kv_context, loaded.context_length)
    window = f"load + {context}-token prefill"
    if on_gpu:
        peak = torch.cuda.max_memory_allocated(variant.device) - base
        rows.append(Measurement("peak_memory_bytes", float(peak), "bytes", f"GPU allocator peak over {window}"))
    else:
        rows.append(Measurement("peak_memory_bytes", float(peak_rss - sampler.start_rss), "bytes", f"rise of process RSS over {window}"))
    rows += [
        Measurement("peak_rss_bytes", float(peak_rss), "bytes", f"process RSS peak over {window}"),
        Measurement("weight_bytes_loaded", float(loaded.weight_bytes()), "bytes", _loaded_note(loaded)),
        Measurement("kv_cache_bytes", float(kv), "bytes", f"DynamicCache after a {context}-token prefill"),
    ]
    return rows
