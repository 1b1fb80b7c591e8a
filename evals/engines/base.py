"""What an engine is: it takes the units still to run and hands each one's result back as it arrives.

Engines decide only where units run (`local`: this process, one after another; `ray`: one Ray
actor per variant on a cluster). They never write results: the runner passes `on_result`, which
appends to the durable log, so resume works the same whatever the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..measure import MeasureSettings
from ..scoring import ScoringSettings
from ..worker import Unit, UnitResult

OnResult = Callable[[UnitResult], None]
UnitProgress = Callable[[Unit, float], None]  # (unit, fraction of it done)


@dataclass(frozen=True)
class WorkerSettings:
    """What every worker needs to compute units the same way, wherever it runs."""

    measure_settings: MeasureSettings
    scoring: ScoringSettings | None = None
    seed: int = 0


class Engine(Protocol):
    """Runs units and reports each result (in any order) through `on_result`."""

    name: str

    def run(self, units: Sequence[Unit], settings: WorkerSettings, on_result: OnResult, progress: UnitProgress) -> None:
        """Compute every unit; return when all results were handed to `on_result`."""
        ...
