"""Computing one unit of the matrix: a variant with a task or a measurement -> its result rows.

A `UnitWorker` holds what a unit needs to run (a model cache, the measurement and scoring
settings, the seed) and nothing about where results go: it returns a `UnitResult` (the rows and,
for tasks, the per-example samples). Engines (`evals.engines`) decide where workers run, in this
process or in Ray actors; the runner alone writes results. Every row names the host and the
hardware that computed it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from g3n_core import ModelCache, RemoteVariant, Variant, load_model
from g3n_core.errors import UnsupportedError
from g3n_core.host import hardware, host_name

from .measure import MeasureSettings, Measurement, measure_latency, measure_memory, measure_sparsity
from .model import EvalModel
from .results import now, unit_id
from .scoring import ScoringSettings
from .tasks import Task

Report = Callable[[float], None]  # fraction of the unit done
AnyVariant = Variant | RemoteVariant

LOWER_IS_BETTER = {"wer", "cer", "ttft_s_median", "ttft_s_p95"}
MEASURE_KIND = {"latency": "latency", "memory": "memory", "sparsity": "sparsity"}


@dataclass
class Unit:
    """One cell of the matrix: a variant with a task or a measurement."""

    variant: AnyVariant
    name: str  # task name, or "measure:<measurement>"
    task: Task | None = None
    limit: int | None = None

    @property
    def id(self) -> str:
        """The unit id rows are logged under."""
        return unit_id(self.variant.to_json(), self.name, self.limit)

    @property
    def label(self) -> str:
        """'<variant> · <task>' for progress messages."""
        return f"{self.variant.name} · {self.name}"


@dataclass
class UnitResult:
    """What a unit produced: its rows (one `error` row when it failed) and its samples (per example, or per timed repeat)."""

    unit: Unit
    rows: list[dict]
    samples: list[dict] | None = None
    where: dict = field(default_factory=dict)  # host and hardware of the worker

    @property
    def failed(self) -> bool:
        """True when the unit ended in an error row."""
        return any(row["status"] == "error" for row in self.rows)


def higher_is_better(metric: str, unit: str) -> bool | None:
    """The direction of a metric (None for fractions such as realised sparsity)."""
    if unit == "fraction":
        return None
    if metric.startswith(("weight_bytes", "peak_", "kv_cache")):
        return False
    return metric not in LOWER_IS_BETTER


def make_row(unit: Unit, metric: str, value, *, where: dict, n=None, stderr=None, kind="", measure_unit="", note="", wall_s=0.0, status="ok", size=1) -> dict:
    """One result row of a unit."""
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
        "higher_is_better": higher_is_better(metric, measure_unit),
        "wall_s": round(wall_s, 3),
        "status": status,
        "note": note,
        "warning": "; ".join(getattr(unit.variant, "warnings", ())),  # float16: real weights overflow; on every row of the variant
        "limit": unit.limit,
        "unit_id": unit.id,
        "unit_size": size,
        "host": where.get("host"),
        "hardware": where.get("hardware"),
        "finished_at": now(),
    }


def error_result(unit: Unit, message: str, where: dict) -> UnitResult:
    """The one `error` row of a unit that failed (the next run retries it)."""
    kind = unit.task.kind if unit.task else ""
    return UnitResult(unit, [make_row(unit, "error", None, where=where, status="error", note=message, kind=kind)], where=where)


def where(variant: AnyVariant) -> dict:
    """Host and hardware a variant's numbers come from (a remote endpoint's hardware is not known here)."""
    if isinstance(variant, RemoteVariant):
        return {"host": host_name(), "hardware": f"remote endpoint {variant.base_url} (hardware unknown)"}
    return {"host": host_name(), "hardware": hardware(variant.device)}


class UnitWorker:
    """Computes units; models come from its ModelCache (a variant loads once per worker)."""

    def __init__(
        self,
        cache: ModelCache | None = None,
        measure_settings: MeasureSettings | None = None,
        scoring: ScoringSettings | None = None,
        seed: int = 0,
    ):
        self.cache = cache or ModelCache()
        self.measure_settings = measure_settings or MeasureSettings()
        self.scoring = scoring
        self.seed = seed
        self._load_errors: dict[AnyVariant, Exception] = {}
        self._remote: dict[RemoteVariant, object] = {}
        self._primed = False

    def model(self, variant: AnyVariant):
        """The EvalModel of a variant (a RemoteEvalModel for an endpoint); a failed load is remembered."""
        if isinstance(variant, RemoteVariant):
            from .remote import RemoteEvalModel

            if variant not in self._remote:
                self._remote[variant] = RemoteEvalModel(variant, self.seed)
            return self._remote[variant]
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

    def _measurements(self, unit: Unit, what: str) -> list[Measurement]:
        variant = unit.variant
        if isinstance(variant, RemoteVariant):
            return self.model(variant).measure(what, self.measure_settings)
        if what == "memory":
            self._prime_process(variant.device)
            return measure_memory(variant, self.cache, self.measure_settings)
        loaded = self.model(variant).loaded
        return (measure_latency if what == "latency" else measure_sparsity)(loaded, self.measure_settings)

    def _measure_rows(self, unit: Unit, at: dict) -> tuple[list[dict], list[dict] | None]:
        what = unit.name.split(":", 1)[1]
        start = time.perf_counter()
        found = self._measurements(unit, what)
        wall = time.perf_counter() - start
        kind = MEASURE_KIND[what]
        rows = [
            make_row(unit, m.name, m.value, where=at, n=m.n, kind=kind, measure_unit=m.unit, note=m.note, wall_s=wall, status=m.status, size=len(found))
            for m in found
        ]
        per_repeat = [m for m in found if m.repeats]
        # One record per timed repeat, so comparisons can bootstrap the medians.
        repeats = [{"repeat": i} | {m.name: m.repeats[i] for m in per_repeat} for i in range(len(per_repeat[0].repeats))] if per_repeat else None
        return rows, repeats

    def _task_rows(self, unit: Unit, report: Report, at: dict) -> tuple[list[dict], list[dict] | None]:
        task = unit.task
        model = self.model(unit.variant)
        names = task.metric_names
        missing = task.missing_towers(model)
        if missing:
            note = f"skipped: needs the {' and '.join(missing)} tower, which this variant does not load"
            return [make_row(unit, name, None, where=at, kind=task.kind, note=note, status="skipped", size=len(names)) for name in names], None
        torch.manual_seed(self.seed)
        start = time.perf_counter()
        try:
            result = task.evaluate(model, unit.limit, lambda done, total: report(done / max(1, total)))
        except UnsupportedError as err:
            note = f"unsupported: {err}"
            return [make_row(unit, name, None, where=at, kind=task.kind, note=note, status="unsupported", size=len(names)) for name in names], None
        wall = time.perf_counter() - start
        note = "; ".join(result.notes)
        size = len(result.metrics)
        rows = [
            make_row(unit, m.name, m.value, where=at, n=m.n, stderr=m.stderr, kind=task.kind, note=note, wall_s=wall, size=size)
            for m in result.metrics
        ]
        return rows, result.samples

    def compute(self, unit: Unit, report: Report | None = None) -> UnitResult:
        """A unit's rows; any failure becomes one error row (KeyboardInterrupt and SystemExit propagate)."""
        report = report or (lambda fraction: None)
        at = where(unit.variant)
        try:
            if unit.task is None:
                rows, samples = self._measure_rows(unit, at)
            else:
                rows, samples = self._task_rows(unit, report, at)
            return UnitResult(unit, rows, samples, where=at)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:  # noqa: BLE001 - any failure of one cell is reported in the table
            return error_result(unit, f"{type(err).__name__}: {err}", at)
