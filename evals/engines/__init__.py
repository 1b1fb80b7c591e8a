"""Engines: where the units of an evaluation matrix run. `local` (this process) or `ray` (actors on a Ray cluster).

`make_engine("ray", RaySettings(address="auto"))`; the CLI's `--engine` and the Compare tab's
`G3N_RAY_ADDRESS` both come here. See docs/evals.md ("On a Ray cluster").
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from g3n_core import ModelCache
from g3n_core.errors import EvalError

from .base import Engine, OnResult, UnitProgress, WorkerSettings
from .local import LocalEngine
from .ray_cluster import RayEngine, RaySettings

ENGINES = ("local", "ray")
RAY_ADDRESS_ENV = "G3N_RAY_ADDRESS"  # the app's Compare tab submits to this cluster when set


def make_engine(name: str = "local", ray_settings: RaySettings | None = None, cache: ModelCache | None = None) -> Engine:
    """The engine called `name`; `cache` serves the local engine, `ray_settings` the Ray one."""
    if name == "local":
        return LocalEngine(cache)
    if name == "ray":
        return RayEngine(ray_settings)
    raise EvalError(f"unknown engine {name!r}; choose {' or '.join(ENGINES)}")


def engine_from_env(cache: ModelCache | None = None, environ: Mapping[str, str] = os.environ) -> Engine:
    """The Ray engine on $G3N_RAY_ADDRESS when it is set, else the local engine on `cache`."""
    address = environ.get(RAY_ADDRESS_ENV, "").strip()
    return RayEngine(RaySettings(address=address)) if address else LocalEngine(cache)


__all__ = [
    "ENGINES",
    "RAY_ADDRESS_ENV",
    "Engine",
    "LocalEngine",
    "OnResult",
    "RayEngine",
    "RaySettings",
    "UnitProgress",
    "WorkerSettings",
    "engine_from_env",
    "make_engine",
]
