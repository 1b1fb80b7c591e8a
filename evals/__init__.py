"""evals: compare Gemma 3n variants for accuracy, latency and memory.

Tasks turn examples into requests (`evals.requests`), `EvalModel` answers them with a g3n_core
LoadedModel, metric modules (`evals.metrics`, evaluate) aggregate; `evals.measure` times and sizes
variants; `evals.runner` runs a variants x tasks x measurements matrix into one tidy table that
`evals.report` turns into charts. See docs/evals.md.
"""

from __future__ import annotations

import g3n_core  # noqa: F401  (quiets torch's pytree warnings before anything else imports torch)

from .model import EvalModel
from .requests import GenerateRequest, Generation, Loglikelihood, LoglikelihoodRequest
from .tasks import all_tasks, resolve_tasks

__all__ = [
    "EvalModel",
    "GenerateRequest",
    "Generation",
    "Loglikelihood",
    "LoglikelihoodRequest",
    "all_tasks",
    "resolve_tasks",
]
