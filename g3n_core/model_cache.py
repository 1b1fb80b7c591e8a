"""Loaded models kept per Variant, under a memory budget, least recently used evicted first.

Before a load the variant's resident size is estimated (`g3n_core.footprint`, the figure the app
shows before Load); a variant that could not fit even with every other model evicted is refused
with a `ModelTooLargeError` naming what would fit, and the loader is never called.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable

import psutil
import torch

from .footprint import estimate_bytes, too_large_error
from .loading import LoadedModel, Progress, load_model
from .variant import Variant

log = logging.getLogger(__name__)


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
            self._make_room(self.check_fits(variant))
            loaded = self._loader(variant, progress)
            with self._lock:
                self._models[variant] = loaded
                self._loading.pop(variant, None)
            return loaded

    def estimate(self, variant: Variant) -> int:
        """Estimated resident bytes of `variant` once loaded (0 when it cannot be sized: the load then says why)."""
        try:
            return estimate_bytes(variant)
        except Exception as err:  # noqa: BLE001 - an estimate only; the load itself reports real problems
            log.debug("no size estimate for %s: %s", variant.name, err)
            return 0

    def fits(self, variant: Variant) -> bool:
        """True when `variant` could be loaded under the budget (after evicting every other model)."""
        return self.estimate(variant) <= self.budget_bytes

    def check_fits(self, variant: Variant) -> int:
        """The estimate of `variant`; a ModelTooLargeError (naming what would fit) when it is over the whole budget."""
        needed = self.estimate(variant)
        if needed > self.budget_bytes:
            raise too_large_error(variant, needed, self.budget_bytes)
        return needed

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
