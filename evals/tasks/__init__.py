"""Task registry: built-in offline suites and standard benchmarks, by name or by suite.

`resolve_tasks(["builtin", "arc_easy"])` expands suite names ("builtin", "media", "standard", "all") into
their tasks. `media` holds the built-in long-speech and video tasks (minutes per variant on 2 cores). Standard benchmarks read the hub, or local copies under `data_dir`.
"""

from __future__ import annotations

from pathlib import Path

from g3n_core.errors import EvalError

from .base import MetricValue, Task, TaskResult
from .builtin import builtin_tasks
from .generation import GenerationTask
from .multiple_choice import MultipleChoiceTask
from .standard import standard_tasks

SUITES = ("builtin", "media", "standard", "all")


def all_tasks(data_dir: str | Path | None = None) -> dict[str, Task]:
    """Every task by name, built-in first."""
    return {task.name: task for task in [*builtin_tasks(), *standard_tasks(data_dir)]}


def resolve_tasks(names: list[str], data_dir: str | Path | None = None) -> list[Task]:
    """Tasks for task and suite names, in the order given, each once."""
    known = all_tasks(data_dir)
    chosen: dict[str, Task] = {}
    for name in names:
        if name == "all":
            chosen.update(known)
        elif name in SUITES:
            chosen.update({n: t for n, t in known.items() if t.suite == name})
        elif name in known:
            chosen[name] = known[name]
        else:
            raise EvalError(f"unknown task {name!r}; tasks are {', '.join(known)}; suites are {', '.join(SUITES)}")
    return list(chosen.values())


__all__ = [
    "SUITES",
    "GenerationTask",
    "MetricValue",
    "MultipleChoiceTask",
    "Task",
    "TaskResult",
    "all_tasks",
    "resolve_tasks",
]
