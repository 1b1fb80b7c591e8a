"""Measurements of a variant beside accuracy: latency, memory, realised activation sparsity.

Each returns `Measurement`s (name, value, unit, note), which the runner turns into table rows.
"""

from __future__ import annotations

from .common import MEASURES, Measurement, MeasureSettings
from .latency import measure_latency
from .memory import kv_cache_bytes, measure_memory, weight_bytes_by_component
from .sparsity import measure_sparsity, realised_sparsity

__all__ = [
    "MEASURES",
    "MeasureSettings",
    "Measurement",
    "kv_cache_bytes",
    "measure_latency",
    "measure_memory",
    "measure_sparsity",
    "realised_sparsity",
    "weight_bytes_by_component",
]
