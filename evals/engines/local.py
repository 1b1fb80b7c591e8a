"""The local engine: every unit in this process, variant by variant, from one ModelCache (a variant loads once)."""

from __future__ import annotations

from collections.abc import Sequence

from g3n_core import ModelCache

from ..worker import Unit, UnitWorker
from .base import OnResult, UnitProgress, WorkerSettings


class LocalEngine:
    """Runs units in order in this process; intra-unit progress is reported as examples finish."""

    name = "local"

    def __init__(self, cache: ModelCache | None = None):
        self.cache = cache

    def run(self, units: Sequence[Unit], settings: WorkerSettings, on_result: OnResult, progress: UnitProgress) -> None:
        """Compute the units one after another."""
        worker = UnitWorker(self.cache, settings.measure_settings, settings.scoring, settings.seed)
        for unit in units:
            progress(unit, 0.0)
            on_result(worker.compute(unit, lambda fraction, unit=unit: progress(unit, fraction)))
            progress(unit, 1.0)
