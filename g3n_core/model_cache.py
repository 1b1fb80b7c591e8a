"""Loaded models kept per Variant, under a memory budget, least recently used evicted first."""

from __future__ import annotations

import gc
import os
import threading
from collections import OrderedDict
from collections.abc import Callable

import psutil
import torch

from .info import model_info
from .loading import LoadedModel, Progress, load_model
from .variant import Variant


def default_budget_bytes() -> int:
    """$G3N_CACHE_BYTES, else 60% of the machine's RAM (or of the first GPU's memory when it is used)."""
    if os.environ.get("G3N_CACHE_BYTES"):
        return int(float(os.environ["G3N_CACHE_BYTES"]))
    return int(0.6 * psutil.virtual_memory().total)


class ModelCache:
    """Thread-safe LRU of LoadedModels. Switching back to a cached Variant is instant."""

    def __init__(self, budget_bytes: int | None = None, loader: Callable[..., LoadedModel] = load_model):
        self.budget_bytes = budget_bytes if budget_bytes is not None else default_budget_bytes()
        self._loader = loader
        self._models: OrderedDict[Variant, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[Variant, threading.Lock] = {}

    def __contains__(self, variant: Variant) -> bool:
        with self._lock:
            return variant in self._models

    def variants(self) -> list[Variant]:
        """Cached variants, least recently used first."""
        with self._lock:
            return list(self._models)

    def used_bytes(self) -> int:
        """Bytes held by cached models."""
        with self._lock:
            return sum(m.weight_bytes() for m in self._models.values())

    def get(self, variant: Variant, progress: Progress | None = None) -> LoadedModel:
        """The loaded model for `variant`, loading (and evicting others) on a miss."""
        with self._lock:
            if variant in self._models:
                self._models.move_to_end(variant)
                return self._models[variant]
            variant_lock = self._loading.setdefault(variant, threading.Lock())
        with variant_lock:  # one load per variant even when several requests ask at once
            with self._lock:
                if variant in self._models:
                    self._models.move_to_end(variant)
                    return self._models[variant]
            self._make_room(self._estimate(variant))
            loaded = self._loader(variant, progress)
            with self._lock:
                self._models[variant] = loaded
                self._loading.pop(variant, None)
            return loaded

    def _estimate(self, variant: Variant) -> int:
        try:
            return model_info(variant).total_bytes
        except Exception:  # noqa: BLE001 - an estimate only; the load itself reports real problems
            return 0

    def _make_room(self, needed: int) -> None:
        while True:
            with self._lock:
                used = sum(m.weight_bytes() for m in self._models.values())
                if not self._models or used + needed <= self.budget_bytes:
                    return
                victim, _ = self._models.popitem(last=False)
            self._release(victim)

    def evict(self, variant: Variant) -> bool:
        """Drop one variant; True when it was cached."""
        with self._lock:
            found = self._models.pop(variant, None) is not None
        if found:
            self._release(variant)
        return found

    def clear(self) -> None:
        """Drop every cached model."""
        with self._lock:
            self._models.clear()
        self._release(None)

    @staticmethod
    def _release(_: Variant | None) -> None:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
