"""Run a matrix of variants x tasks x measurements into one tidy table, resumably.

For each variant, in order: memory (it must see the load, so it runs first and empties the model
cache), latency, sparsity, then every task. Each (variant, task-or-measurement) is a unit whose
rows are appended to the run folder's log and fsynced as soon as the unit finishes, so a killed
run loses nothing finished, and running again with the same folder skips finished units (see
`evals.results`). Models come from a g3n_core `ModelCache`, so a variant loads once per run.
Generation is greedy and seeded: two runs give the same accuracy numbers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from g3n_core import ModelCache, Variant, load_model
from g3n_core.errors import EvalError

from .measure import MEASURES, MeasureSettings, measure_latency, measure_memory, measure_sparsity
from .model import EvalModel
from .results import ResultLog, export, now, tidy, unit_id, write_samples
from .scoring import ScoringSettings
from .tasks import Task, resolve_tasks

Progress = Callable[[float, str], None]  # (fraction of the whole run, message)

LOWER_IS_BETTER = {"wer", "cer", "ttft_s_median", "ttft_s_p95"}
MEASURE_KIND = {"latency": "latency", "memory": "memory", "sparsity": "sparsity"}


@dataclass
class Unit:
    """One cell of the matrix: a variant with a task or a measurement."""

    variant: Variant
    name: str  # task name, or "measure:<measurement>"
    task: Task | None = None
    limit: int | None = None

    @property
    def id(self) -> str:
        """The unit id rows are logged under."""
        return unit_id(self.variant.to_json(), self.name, self.limit)


def _higher_is_better(metric: str, unit: str) -> bool | None:
    if unit == "fraction":
        return None
    if metric.startswith(("weight_bytes", "peak_", "kv_cache")):
        return False
    return metric not in LOWER_IS_BETTER


def _row(unit: Unit, metric: str, value, *, n=None, stderr=None, kind="", measure_unit="", note="", wall_s=0.0, status="ok", size=1) -> dict:
    return {
        "variant": unit.variant.name,
        "variant_json": unit.variant.to_json(),
        "task": unit.name,
        "metric": metric,
        "value": None if value is None else float(value),
        "n": n,
        "stderr": stderr,
        "unit": measure_unit,
        "kind": kind,
        "higher_is_better": _higher_is_better(metric, measure_unit),
        "wall_s": round(wall_s, 3),
        "status": status,
        "note": note,
        "warning": "; ".join(unit.variant.warnings),  # float16: real weights overflow; on every row of the variant
        "limit": unit.limit,
        "unit_id": unit.id,
        "unit_size": size,
        "finished_at": now(),
    }


class Runner:
    """Runs units into a ResultLog; `run()` is the one-call entry point."""

    def __init__(
        self,
        out_dir: str | Path,
        cache: ModelCache | None = None,
        measure_settings: MeasureSettings | None = None,
        scoring: ScoringSettings | None = None,
        seed: int = 0,
        progress: Progress | None = None,
    ):
        self.out_dir = Path(out_dir)
        self.log = ResultLog(self.out_dir)
        self.cache = cache or ModelCache()
        self.measure_settings = measure_settings or MeasureSettings()
        self.scoring = scoring
        self.seed = seed
        self.progress = progress or (lambda fraction, message: None)
        self._load_errors: dict[Variant, Exception] = {}
        self._primed = False

    def _model(self, variant: Variant) -> EvalModel:
        if variant in self._load_errors:
            raise self._load_errors[variant]
        try:
            return EvalModel(self.cache.get(variant), self.scoring, self.seed)
        except Exception as err:  # noqa: BLE001 - recorded per unit; other variants still run
            self._load_errors[variant] = err
            raise

    def _prime_process(self, device: str) -> None:
        """Pay the process's one-time allocations (library set-up, first model build) before any memory window.

        Without this the first variant measured in a process shows tens of MiB more peak memory
        than the same variant measured second. A throwaway tiny model is loaded and run once.
        """
        if self._primed:
            return
        warm = load_model(Variant(device=device))
        with torch.inference_mode():
            warm.model(input_ids=torch.tensor([[warm.tokenizer.bos_token_id, 100, 200]], device=warm.device))
        del warm
        self._primed = True

    def _measure_rows(self, unit: Unit, report: Callable[[float], None]) -> list[dict]:
        what = unit.name.split(":", 1)[1]
        start = time.perf_counter()
        if what == "memory":
            self._prime_process(unit.variant.device)
            found = measure_memory(unit.variant, self.cache, self.measure_settings)
        else:
            loaded = self._model(unit.variant).loaded
            found = (measure_latency if what == "latency" else measure_sparsity)(loaded, self.measure_settings)
        wall = time.perf_counter() - start
        kind = MEASURE_KIND[what]
        return [
            _row(unit, m.name, m.value, n=m.n, kind=kind, measure_unit=m.unit, note=m.note, wall_s=wall, size=len(found))
            for m in found
        ]

    def _task_rows(self, unit: Unit, report: Callable[[float], None]) -> list[dict]:
        task = unit.task
        model = self._model(unit.variant)
        missing = task.missing_towers(model)
        if missing:
            note = f"skipped: needs the {' and '.join(missing)} tower, which this variant does not load"
            names = task.metric_names
            return [_row(unit, name, None, kind=task.kind, note=note, status="skipped", size=len(names)) for name in names]
        torch.manual_seed(self.seed)
        start = time.perf_counter()
        result = task.evaluate(model, unit.limit, lambda done, total: report(done / max(1, total)))
        wall = time.perf_counter() - start
        write_samples(self.out_dir, unit.variant.to_json(), unit.name, result.samples)
        note = "; ".join(result.notes)
        size = len(result.metrics)
        return [
            _row(unit, m.name, m.value, n=m.n, stderr=m.stderr, kind=task.kind, note=note, wall_s=wall, size=size)
            for m in result.metrics
        ]

    def run_unit(self, unit: Unit, report: Callable[[float], None]) -> None:
        """Compute a unit and log its rows; a failure is logged as an error row and does not stop the run."""
        try:
            rows = self._measure_rows(unit, report) if unit.task is None else self._task_rows(unit, report)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:  # noqa: BLE001 - any failure of one cell is reported in the table
            message = f"{type(err).__name__}: {err}"
            self.log.append(_row(unit, "error", None, status="error", note=message, kind=unit.task.kind if unit.task else ""))
            return
        self.log.write_unit(rows)

    def run(self, variants: Sequence[Variant], tasks: Sequence[Task], measures: Sequence[str] = (), limit: int | None = None) -> pd.DataFrame:
        """Every unit of the matrix not finished yet; returns the tidy table of the whole folder."""
        unknown = [m for m in measures if m not in MEASURES]
        if unknown:
            raise EvalError(f"unknown measurement(s) {unknown}; choose from {', '.join(MEASURES)}")
        order = [m for m in ("memory", "latency", "sparsity") if m in measures]
        units = [
            *(Unit(v, f"measure:{m}") for v in variants for m in order),
            *(Unit(v, t.name, t, limit) for v in variants for t in tasks),
        ]
        units.sort(key=lambda u: list(variants).index(u.variant))  # variant by variant: one model resident at a time
        finished = self.log.finished_units()
        for index, unit in enumerate(units):
            label = f"{unit.variant.name} · {unit.name}"

            def report(fraction: float, index=index, label=label) -> None:
                self.progress((index + min(1.0, fraction)) / len(units), label)

            if unit.id in finished:
                report(1.0)
                continue
            report(0.0)
            self.run_unit(unit, report)
            report(1.0)
        frame = tidy(self.log.rows())
        export(frame, self.out_dir)
        return frame


def run(
    variants: Sequence[Variant],
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
) -> pd.DataFrame:
    """Run variants x tasks x measurements into `out_dir` (resuming what is there); the tidy table."""
    resolved = [t for t in tasks if isinstance(t, Task)] + resolve_tasks([t for t in tasks if isinstance(t, str)], data_dir)
    runner = Runner(out_dir, cache, measure_settings, seed=seed, progress=progress)
    request = {
        "variants": [json.loads(v.to_json()) for v in variants],
        "tasks": [t.name for t in resolved],
        "measures": list(measures),
        "limit": limit,
        "seed": seed,
        "measure_settings": runner.measure_settings.to_dict(),
        "updated_at": now(),
    }
    (Path(out_dir) / "run.json").write_text(json.dumps(request, indent=1))
    return runner.run(variants, resolved, measures, limit)
