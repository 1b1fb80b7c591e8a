"""Loaded models kept per Variant, under a memory budget, least recently used evicted first.

A MatFormer slice is served from its parent (the same Variant without `matformer`): `get` loads
the parent, not the slice, and returns an elastic view of it (`g3n_core.matformer.elastic`), which
copies no weights and needs no budget of its own. Later slices of a resident parent are views at
once; evicting a parent drops its views. A slice loads on its own only when it cannot be elastic
(int8, prepack) or when its parent would not fit the budget. Loads and views are logged
(logger `g3n_core.model_cache`), so a run shows what was loaded.
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
from .matformer.elastic import elastic_refusal, elastic_view, parent_key, parent_variant
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
        self._views: dict[Variant, LoadedModel] = {}  # elastic slices of resident models

    def __contains__(self, variant: Variant) -> bool:
        with self._lock:
            return variant in self._models or variant in self._views

    def variants(self) -> list[Variant]:
        """Loaded variants (not elastic views), least recently used first."""
        with self._lock:
            return list(self._models)

    def ready(self, variant: Variant) -> bool:
        """True when `get(variant)` loads nothing: it is cached, or it is a slice of a loaded parent (an elastic view)."""
        with self._lock:
            if variant in self._models or variant in self._views:
                return True
        return variant.matformer is not None and elastic_refusal(variant) is None and self._resident_parent(variant) is not None

    def views(self) -> list[Variant]:
        """Slices served as elastic views of a loaded parent."""
        with self._lock:
            return list(self._views)

    def used_bytes(self) -> int:
        """Bytes held by cached models."""
        with self._lock:
            return sum(m.weight_bytes() for m in self._models.values())

    def get(self, variant: Variant, progress: Progress | None = None) -> LoadedModel:
        """The loaded model for `variant`, loading (and evicting others) on a miss; a slice is a view of its parent."""
        if variant.matformer is not None:
            view = self._elastic(variant, progress)
            if view is not None:
                return view
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
            log.info("loaded %s in %.2f s", variant.name, loaded.load_seconds)
            return loaded

    def _elastic(self, variant: Variant, progress: Progress | None) -> LoadedModel | None:
        """`variant`'s slice as a view of its parent, loading the parent when needed; None when it loads on its own."""
        report = progress or (lambda fraction, message: None)
        with self._lock:
            if variant in self._views:
                view = self._views[variant]
                self._models.move_to_end(view.extras["elastic_parent"].variant)
                return view
            if variant in self._models:  # loaded on its own earlier
                return None
        reason = elastic_refusal(variant)
        if reason is not None:
            log.info("%s is not elastic: %s", variant.name, reason)
            report(0.0, f"{variant.name} is not elastic: {reason}")
            return None
        parent = self._resident_parent(variant)
        if parent is None:
            wanted = parent_variant(variant)
            if not self.fits(wanted):  # the slice alone may fit (else its own load is refused, naming what would)
                log.info("%s loads on its own: its parent %s would not fit the budget", variant.name, wanted.name)
                report(0.0, f"the parent {wanted.name} would not fit the memory budget; loading the slice on its own")
                return None
            parent = self.get(wanted, progress)
        view = elastic_view(parent, variant)
        with self._lock:
            if parent.variant not in self._models:  # evicted meanwhile: serve it, keep nothing pointing at it
                return view
            view = self._views.setdefault(variant, view)
        log.info("elastic %s from resident %s in %.1f ms (no weights loaded)", variant.name, parent.variant.name, 1e3 * view.load_seconds)
        report(1.0, f"ready: {variant.name}, served from the loaded {parent.variant.name} (no weights loaded)")
        return view

    def _resident_parent(self, variant: Variant) -> LoadedModel | None:
        """A loaded model whose weights can serve `variant`'s slice (same variant but for slice and sparsity)."""
        key = parent_key(variant)
        with self._lock:
            for candidate, loaded in reversed(self._models.items()):
                if candidate.matformer is None and parent_key(candidate) == key:
                    return loaded
        return None

    def _drop_views_of(self, parent: Variant) -> None:
        """Forget the views of an evicted parent (caller holds the lock)."""
        for view in [v for v, loaded in self._views.items() if loaded.extras["elastic_parent"].variant == parent]:
            del self._views[view]

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
                self._drop_views_of(victim)
            self._release(victim)

    def evict(self, variant: Variant) -> bool:
        """Drop one variant (a parent takes its elastic views with it); True when it was cached."""
        with self._lock:
            if self._views.pop(variant, None) is not None:
                return True
            found = self._models.pop(variant, None) is not None
            self._drop_views_of(variant)
        if found:
            self._release(variant)
        return found

    def clear(self) -> None:
        """Drop every cached model and view."""
        with self._lock:
            self._models.clear()
            self._views.clear()
        self._release(None)

    @staticmethod
    def _release(_: Variant | None) -> None:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
