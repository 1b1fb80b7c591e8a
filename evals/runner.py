"""Run a matrix of variants x tasks x measurements into one tidy table, resumably.

For each variant, in order: memory (it must see the load, so it runs first and empties the model
cache), latency, sparsity, then every task. Each (variant, task-or-measurement) is a unit
(`evals.worker`) whose rows are appended to the run folder's log and fsynced as soon as the unit
finishes, so a killed run loses nothing finished, and running again with the same folder skips
finished units (see `evals.results`). An engine (`evals.engines`) computes the units, in this
process (`local`, models from one g3n_core `ModelCache`, so a variant loads once per run) or on
Ray actors (`ray`); whichever it is, only this runner writes results. Generation is greedy and
seeded: two runs give the same accuracy numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from g3n_core import ModelCache
from g3n_core.errors import EvalError

from .engines import Engine, LocalEngine, WorkerSettings
from .manifest import build_manifest, write_manifest
from .measure import MEASURES, MeasureSettings
from .results import ResultLog, atomic_write_text, export, now, tidy, write_samples
from .scoring import ScoringSettings
from .tasks import Task, resolve_tasks
from .worker import AnyVariant, Unit, UnitResult

Progress = Callable[[float, str], None]  # (fraction of the whole run, message)


class Runner:
    """Runs the units of a matrix that are not finished yet through an engine into a ResultLog; `run()` is the one-call entry point."""

    def __init__(
        self,
        out_dir: str | Path,
        cache: ModelCache | None = None,
        measure_settings: MeasureSettings | None = None,
        scoring: ScoringSettings | None = None,
        seed: int = 0,
        progress: Progress | None = None,
        engine: Engine | None = None,
    ):
        self.out_dir = Path(out_dir)
        self.log = ResultLog(self.out_dir)
        self.engine = engine or LocalEngine(cache)
        self.measure_settings = measure_settings or MeasureSettings()
        self.settings = WorkerSettings(self.measure_settings, scoring, seed)
        self.progress = progress or (lambda fraction, message: None)

    def record(self, result: UnitResult) -> None:
        """Write a unit's samples and rows (only rows not in the log yet; a failure as its one error row)."""
        unit = result.unit
        if result.failed:
            self.log.append(result.rows[0])
            return
        if result.samples is not None:
            write_samples(self.out_dir, unit.variant.to_json(), unit.name, result.samples)
        self.log.write_unit(result.rows)

    @staticmethod
    def units(variants: Sequence[AnyVariant], tasks: Sequence[Task], measures: Sequence[str] = (), limit: int | None = None) -> list[Unit]:
        """Every unit of the matrix, variant by variant (one model resident at a time), memory first."""
        unknown = [m for m in measures if m not in MEASURES]
        if unknown:
            raise EvalError(f"unknown measurement(s) {unknown}; choose from {', '.join(MEASURES)}")
        order = [m for m in ("memory", "latency", "sparsity") if m in measures]
        units = [
            *(Unit(v, f"measure:{m}") for v in variants for m in order),
            *(Unit(v, t.name, t, limit) for v in variants for t in tasks),
        ]
        units.sort(key=lambda u: list(variants).index(u.variant))
        return units

    def run(self, variants: Sequence[AnyVariant], tasks: Sequence[Task], measures: Sequence[str] = (), limit: int | None = None) -> pd.DataFrame:
        """Every unit of the matrix not finished yet; returns the tidy table of the whole folder."""
        units = self.units(variants, tasks, measures, limit)
        finished = self.log.finished_units()
        pending = [u for u in units if u.id not in finished]
        done = {u.id: 1.0 for u in units if u.id in finished}
        total = max(1, len(units))

        def report(unit: Unit, fraction: float) -> None:
            done[unit.id] = max(done.get(unit.id, 0.0), min(1.0, fraction))
            self.progress(sum(done.values()) / total, unit.label)

        if not pending and units:
            self.progress(1.0, units[-1].label)
        self.engine.run(pending, self.settings, self.record, report)
        frame = tidy(self.log.rows())
        export(frame, self.out_dir)
        return frame


def run(
    variants: Sequence[AnyVariant],
    tasks: Sequence[str | Task],
    out_dir: str | Path,
    *,
    measures: Sequence[str] = (),
    limit: int | None = None,
    data_dir: str | Path | None = None,
    cache: ModelCache | None = None,
    measure_settings: MeasureSettings | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    engine: Engine | None = None,
    command: list[str] | None = None,
) -> pd.DataFrame:
    """Run variants x tasks x measurements into `out_dir` (resuming what is there); the tidy table.

    `engine` computes the units (default: the local engine on `cache`). Writes run.json (the request)
    and manifest.json (evals.manifest; `command` is recorded as the command line, sys.argv by default)
    before the first unit.
    """
    resolved = [t for t in tasks if isinstance(t, Task)] + resolve_tasks([t for t in tasks if isinstance(t, str)], data_dir)
    runner = Runner(out_dir, cache, measure_settings, seed=seed, progress=progress, engine=engine)
    manifest = build_manifest(variants, resolved, measures=list(measures), limit=limit, seed=seed, data_dir=data_dir,
                              measure_settings=runner.measure_settings.to_dict(), command=command)  # fmt: skip
    manifest["request"]["engine"] = runner.engine.name
    atomic_write_text(Path(out_dir) / "run.json", json.dumps(manifest["request"] | {"updated_at": manifest["created_at"]}, indent=1))
    write_manifest(out_dir, manifest)
    return runner.run(variants, resolved, measures, limit)
