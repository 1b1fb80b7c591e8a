"""The Ray engine: one actor per variant (it loads the variant once), units scheduled across actors, results back to the driver.

Each variant gets a `VariantActor` declaring its resources (`gpus_per_variant` GPUs on a GPU
cluster, else `cpus_per_variant` CPUs); Ray places it on a node with room and queues the rest, so
a cluster runs as many variants at once as it has room for. An actor runs its variant's units one
after another and is released when they are done, making room for the next variant. Results come
back to the driver as they finish and only the driver writes them (the runner's log), so resume
works as with the local engine. An actor that dies in the middle of a unit (a crashed or
preempted node, an out-of-memory kill) yields no rows: its unit runs again on a fresh actor, up to
`max_retries` times, then becomes one error row. Requires `ray` (requirements-scale.txt).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from g3n_core.errors import EvalError

from ..worker import Unit, UnitResult, UnitWorker, error_result, where
from .base import OnResult, UnitProgress, WorkerSettings

log = logging.getLogger(__name__)
PACKAGES = ("g3n_core", "evals")  # shipped to a remote cluster's workers (their Python environment must match)


@dataclass(frozen=True)
class RaySettings:
    """Where and how big the Ray actors are."""

    address: str | None = field(default=None, metadata={"help": "Ray cluster: auto (the running one), ray://HOST:10001, or unset for a local cluster on this machine"})
    gpus_per_variant: float = field(default=0.0, metadata={"help": "GPUs each variant's actor reserves (give variants device=cuda)"})
    cpus_per_variant: float = field(default=1.0, metadata={"help": "CPUs each variant's actor reserves (its torch threads)"})
    max_retries: int = field(default=2, metadata={"help": "times a unit whose actor died is run again on a fresh actor"})

    def __post_init__(self) -> None:
        if self.gpus_per_variant < 0 or self.cpus_per_variant <= 0 or self.max_retries < 0:
            raise EvalError("Ray settings: gpus_per_variant >= 0, cpus_per_variant > 0 and max_retries >= 0 are required")


class VariantActor:
    """Holds one UnitWorker (and so one loaded variant) in a Ray worker process."""

    def __init__(self, settings: WorkerSettings):
        self.worker = UnitWorker(None, settings.measure_settings, settings.scoring, settings.seed)

    def compute(self, unit: Unit) -> UnitResult:
        """The unit's result, computed in this actor."""
        return self.worker.compute(unit)


def _ray():
    try:
        import ray
    except ImportError as err:
        raise EvalError("--engine ray needs Ray: pip install -r requirements-scale.txt") from err
    return ray


class RayEngine:
    """Runs units on Ray actors, one per variant; joins `settings.address` or starts a local cluster."""

    name = "ray"

    def __init__(self, settings: RaySettings | None = None, init_kwargs: dict | None = None):
        self.settings = settings or RaySettings()
        self.init_kwargs = dict(init_kwargs or {})  # extra ray.init arguments (e.g. num_cpus, _temp_dir for a local cluster)

    def _connect(self) -> bool:
        """Connect to (or start) the cluster; True when this call started the connection (and must end it)."""
        ray = _ray()
        if ray.is_initialized():
            return False
        kwargs = {"include_dashboard": False, "log_to_driver": False, **self.init_kwargs}
        if self.settings.address:
            root = Path(__file__).resolve().parents[2]
            kwargs.setdefault("runtime_env", {"py_modules": [str(root / p) for p in PACKAGES]})
        try:
            ray.init(address=self.settings.address, **kwargs)
        except ConnectionError as err:
            raise EvalError(f"cannot reach the Ray cluster at {self.settings.address!r} ({err}); start it with `ray start --head` or fix --address") from err
        return True

    def _actor_class(self, variant):
        ray = _ray()
        gpus = 0.0 if variant.device in ("cpu", "remote") else self.settings.gpus_per_variant
        if variant.device.startswith("cuda") and gpus == 0:
            raise EvalError(f"{variant.name} runs on {variant.device}: give its actor a GPU with --gpus-per-variant 1")
        return ray.remote(num_cpus=self.settings.cpus_per_variant, num_gpus=gpus, max_restarts=0)(VariantActor)

    def run(self, units: Sequence[Unit], settings: WorkerSettings, on_result: OnResult, progress: UnitProgress) -> None:
        """Schedule every unit on its variant's actor and hand results back as they arrive."""
        if not units:
            return
        ray = _ray()
        started = self._connect()
        queues: dict[object, deque[Unit]] = {}
        for unit in units:  # variant order kept; within a variant, the order the runner gave (memory first)
            queues.setdefault(unit.variant, deque()).append(unit)
        actors: dict[object, object] = {}
        inflight: dict[object, tuple[object, Unit]] = {}
        attempts: dict[str, int] = {}

        def submit(variant) -> None:
            if not queues[variant]:
                actor = actors.pop(variant, None)
                if actor is not None:
                    ray.kill(actor)  # the variant is done: free its resources for a waiting one
                return
            if variant not in actors:
                actors[variant] = self._actor_class(variant).remote(settings)
            unit = queues[variant].popleft()
            progress(unit, 0.0)
            inflight[actors[variant].compute.remote(unit)] = (variant, unit)

        try:
            for variant in queues:
                submit(variant)
            while inflight:
                ready, _ = ray.wait(list(inflight), num_returns=1)
                variant, unit = inflight.pop(ready[0])
                try:
                    result = ray.get(ready[0])
                except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as err:
                    lost = actors.pop(variant, None)  # dead or unreachable: the next unit of this variant starts a fresh actor
                    if lost is not None:
                        ray.kill(lost)  # an unreachable one must not come back and hold resources
                    attempts[unit.id] = attempts.get(unit.id, 0) + 1
                    if attempts[unit.id] <= self.settings.max_retries:
                        log.warning("the actor running %s died (%s); running the unit again on a fresh actor", unit.label, type(err).__name__)
                        queues[variant].appendleft(unit)
                        submit(variant)
                        continue
                    result = error_result(unit, f"the worker running this unit died {attempts[unit.id]} times: {type(err).__name__}: {str(err)[:300]}", where(variant))
                except ray.exceptions.RayTaskError as err:
                    result = error_result(unit, f"{type(err.cause).__name__ if err.cause else 'RayTaskError'}: {err.cause or err}", where(variant))
                result.unit = unit
                on_result(result)
                progress(unit, 1.0)
                submit(variant)
        finally:
            for actor in actors.values():
                ray.kill(actor)
            if started:
                ray.shutdown()
