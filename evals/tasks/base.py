"""What every task is: a name, where its examples come from, and how a model's answers become metrics.

A task turns examples ("docs") into requests (`evals.requests`), an `EvalModel` answers them, and
the task's metric module aggregates the answers into `MetricValue`s plus one sample record per
example (its stable `example_id`, the prompt shown to people, prediction, target, per-example
scores) for inspection, paired comparisons between variants (`evals.paired`) and parity checks.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
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


MEDIA_KEYS = ("image", "audio", "video")  # doc fields that hold a media file path or its bytes


def _file_digest(path: str) -> str:
    stat = os.stat(path)
    return _cached_file_digest(path, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4096)
def _cached_file_digest(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _canonical(value: Any, key: str = "") -> Any:
    """A doc as plain JSON where media stand for the sha256 of their bytes (paths differ between machines)."""
    if isinstance(value, dict):
        return {k: _canonical(v, k) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_canonical(v, key) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    if key in MEDIA_KEYS and isinstance(value, str) and os.path.isfile(value):
        return "sha256:" + _file_digest(value)
    if hasattr(value, "tobytes"):  # numpy arrays (decoded audio)
        return "sha256:" + hashlib.sha256(value.tobytes()).hexdigest()
    return value


def example_ids(docs: list[dict]) -> list[str]:
    """Stable ids of examples from their content (media by their bytes): the same in every run, variant and machine.

    Samples of two variants, or of two runs, join on these ids; a repeated example gets `~2`, `~3`.
    """
    ids, seen = [], {}
    for doc in docs:
        digest = hashlib.sha256(json.dumps(_canonical(doc), sort_keys=True, default=str).encode()).hexdigest()[:12]
        seen[digest] = seen.get(digest, 0) + 1
        ids.append(digest if seen[digest] == 1 else f"{digest}~{seen[digest]}")
    return ids


def per_example_metrics(names: list[str], computed: dict[str, Any], n: int) -> list[MetricValue]:
    """Means of per-example scores (`<name>_scores` in `computed`) with their standard errors."""
    return [MetricValue(name, computed[name], n, mean_stderr(computed[f"{name}_scores"])) for name in names]


@dataclass
class Task:
    """Base of every task. Subclasses define `metric_names`, `requests_for` and `evaluate`."""

    name: str
    description: str
    load: Docs  # returns the evaluation examples in this task's own doc schema
    suite: str = "builtin"  # "builtin" / "media" (offline, in the repository) or "standard" (downloaded benchmarks)
    licence: str = ""
    towers: tuple[str, ...] = ()  # towers the model must have loaded ("vision", "audio")
    kind: str = ""
    metric_names: tuple[str, ...] = ()
    # where the examples come from, for run manifests: {"files": [...]} (built-in) or {"dataset", "config", "revision"}
    source: dict = field(default_factory=dict)

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
