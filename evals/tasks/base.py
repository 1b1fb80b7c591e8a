"""What every task is: a name, where its examples come from, and how a model's answers become metrics.

A task turns examples ("docs") into requests (`evals.requests`), an `EvalModel` answers them, and
the task's metric module aggregates the answers into `MetricValue`s plus one sample record per
example (prediction, target, per-example scores) for inspection and parity checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..metrics import mean_stderr

if TYPE_CHECKING:
    from ..model import EvalModel

Progress = Callable[[int, int], None]  # (examples done, examples in the task)
Docs = Callable[[], list[dict]]


@dataclass
class MetricValue:
    """One aggregated number: value, examples it covers, and its standard error where defined."""

    name: str
    value: float
    n: int
    stderr: float | None = None


@dataclass
class TaskResult:
    """A task's metrics and its per-example records."""

    metrics: list[MetricValue]
    samples: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def metric(self, name: str) -> MetricValue:
        """The metric called `name`."""
        for value in self.metrics:
            if value.name == name:
                return value
        raise KeyError(f"no metric {name!r}; have {[m.name for m in self.metrics]}")


def per_example_metrics(names: list[str], computed: dict[str, Any], n: int) -> list[MetricValue]:
    """Means of per-example scores (`<name>_scores` in `computed`) with their standard errors."""
    return [MetricValue(name, computed[name], n, mean_stderr(computed[f"{name}_scores"])) for name in names]


@dataclass
class Task:
    """Base of every task. Subclasses define `metric_names`, `requests_for` and `evaluate`."""

    name: str
    description: str
    load: Docs  # returns the evaluation examples in this task's own doc schema
    suite: str = "builtin"  # "builtin" (offline, in the repository) or "standard" (downloaded benchmarks)
    licence: str = ""
    towers: tuple[str, ...] = ()  # towers the model must have loaded ("vision", "audio")
    kind: str = ""
    metric_names: tuple[str, ...] = ()

    def docs(self, limit: int | None = None) -> list[dict]:
        """The evaluation examples, the first `limit` of them when given."""
        docs = self.load()
        return docs[:limit] if limit is not None else docs

    def missing_towers(self, model: EvalModel) -> list[str]:
        """Towers this task needs that the model was loaded without."""
        have = {"vision": model.has_vision, "audio": model.has_audio}
        return [t for t in self.towers if not have[t]]

    def evaluate(self, model: EvalModel, limit: int | None = None, progress: Progress | None = None) -> TaskResult:
        """Run the task on a model."""
        raise NotImplementedError


def chunked(items: list, size: int):
    """Consecutive slices of `items` of at most `size` (progress is reported between them)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
