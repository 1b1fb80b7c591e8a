"""manifest.json: everything needed to know how a run was made and to repeat it.

Written into every run folder by `evals.runner.run` (atomically): the project's git commit and
whether the tree was dirty, versions of Python, torch, transformers and every pinned dependency,
the CPU model and its vector features, GPUs and their driver when a variant used one, torch
threads, seeds, each Variant's JSON, each task's data (a sha256 over its examples' content ids,
file hashes for the built-in suites, dataset id / config / revision for hub datasets), the
command line, and the request itself, from which `python -m evals rerun` repeats the run.
A resumed run keeps the earlier invocations under "invocations".
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from g3n_core.errors import EvalError

from .results import atomic_write_text, now
from .stats import RESAMPLES
from .stats import SEED as STATISTICS_SEED

MANIFEST = "manifest.json"
ROOT = Path(__file__).resolve().parent.parent  # the project checkout
FORMAT = 1
# The vector features that decide which kernels run (bf16 / int8 paths); the full flag list is kept too.
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "neon", "asimd", "sve")  # fmt: skip


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def project_state() -> dict[str, Any]:
    """The checkout's commit and whether it has uncommitted changes (None outside a git checkout, e.g. on Spaces)."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None, "branch": _git("rev-parse", "--abbrev-ref", "HEAD")}


def pinned_requirements(path: Path = ROOT / "requirements.txt") -> dict[str, str]:
    """name -> pinned version of every `name==version` line of requirements.txt."""
    if not path.is_file():
        return {}
    pins = {}
    for line in path.read_text().splitlines():
        found = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line)
        if found:
            pins[found.group(1)] = found.group(2)
    return pins


def versions() -> dict[str, Any]:
    """Python, the platform, and each pinned dependency's pinned and installed versions."""
    packages = {}
    for name, pinned in pinned_requirements().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        packages[name] = {"pinned": pinned, "installed": installed}
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": packages}


def cpu_info(cpuinfo: str | None = None) -> dict[str, Any]:
    """CPU model and vector features from /proc/cpuinfo (Linux; elsewhere what `platform` knows)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    model = re.search(r"^(?:model name|Model|Hardware)\s*:\s*(.+)$", cpuinfo, re.M)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", cpuinfo, re.M)
    all_flags = sorted(set(flags.group(1).split())) if flags else []
    return {
        "model": model.group(1).strip() if model else platform.processor() or platform.machine(),
        "machine": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "vector_features": [f for f in VECTOR_FLAGS if f in all_flags],
        "flags": all_flags,
    }


def gpu_info() -> list[dict[str, Any]]:
    """Name, memory and driver of each visible CUDA GPU (empty without one)."""
    import torch

    if not torch.cuda.is_available():
        return []
    driver = None
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=10)
        driver = done.stdout.split("\n")[0].strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return [
        {"name": torch.cuda.get_device_name(i), "memory_bytes": torch.cuda.get_device_properties(i).total_memory, "driver": driver, "cuda": torch.version.cuda}
        for i in range(torch.cuda.device_count())
    ]


def machine(uses_gpu: bool) -> dict[str, Any]:
    """The CPU, memory, torch threads and (when a variant used one) the GPUs."""
    import psutil
    import torch

    found = {"cpu": cpu_info(), "memory_bytes": psutil.virtual_memory().total, "torch_threads": torch.get_num_threads(),
             "torch_interop_threads": torch.get_num_interop_threads()}  # fmt: skip
    if uses_gpu:
        found["gpus"] = gpu_info()
    return found


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _hub_revision(source: dict) -> str | None:
    """The commit a hub dataset's revision points to now (None offline or on any hub error)."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False") or source.get("data_dir"):
        return None
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(source["dataset"], revision=source.get("revision"), timeout=10).sha
    except Exception:  # noqa: BLE001 - the manifest records what it can; the run itself reports data errors
        return None


def task_data(task, limit: int | None) -> dict[str, Any]:
    """A task's data: examples used, a sha256 over their content ids (and the few-shot pool's), files or hub revision."""
    from .tasks.base import MEDIA_KEYS, example_ids
    from .tasks.builtin import DATA

    found: dict[str, Any] = {"suite": task.suite, "source": dict(task.source), "limit": limit}
    try:
        docs = task.docs(limit)
        pool = task.fewshot() if getattr(task, "fewshot", None) and getattr(task, "num_fewshot", 0) else []
    except Exception as err:  # noqa: BLE001 - e.g. a hub dataset that cannot be read: the run records the error
        return found | {"error": f"{type(err).__name__}: {err}"}
    ids = example_ids(docs)
    found |= {"examples": len(docs), "data_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest()}
    if pool:
        found["fewshot_sha256"] = hashlib.sha256("\n".join(example_ids(pool)).encode()).hexdigest()
    if task.suite in ("builtin", "media"):  # files in the repository
        media = sorted({Path(d[k]) for d in docs for k in MEDIA_KEYS if isinstance(d.get(k), str)})
        files = [DATA / f for f in task.source.get("files", [])] + media
        found["files"] = {str(p.relative_to(DATA)) if p.is_relative_to(DATA) else p.name: _sha256_file(p) for p in files if p.is_file()}
    elif task.source.get("dataset"):
        found["resolved_revision"] = _hub_revision(task.source)
    return found


def build_manifest(
    variants: list, tasks: list, *, measures: list[str], limit: int | None, seed: int, measure_settings: dict,
    data_dir: str | Path | None = None, command: list[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The manifest of a run about to start (variants are g3n_core Variants, tasks evals Tasks)."""
    import torch

    from .tasks.fewshot import LM_EVAL_FEWSHOT_SEED

    argv = list(command if command is not None else sys.orig_argv)  # as typed: `python -m evals run ...`
    return {
        "format": FORMAT,
        "created_at": now(),
        "command": shlex.join(argv),
        "request": {
            "variants": [json.loads(v.to_json()) for v in variants],
            "tasks": [t.name for t in tasks],
            "measures": list(measures),
            "limit": limit,
            "seed": seed,
            "measure_settings": measure_settings,
            "data_dir": str(data_dir) if data_dir is not None else None,
            "threads": torch.get_num_threads(),
        },
        "project": project_state(),
        "versions": versions(),
        "machine": machine(any(str(v.device).startswith("cuda") for v in variants)),
        "seeds": {"run": seed, "fewshot": LM_EVAL_FEWSHOT_SEED, "statistics": STATISTICS_SEED, "statistics_resamples": RESAMPLES},
        "variants": [{"name": v.name, "json": v.to_json()} for v in variants],
        "tasks": {t.name: task_data(t, limit) for t in tasks},
    }


def write_manifest(out_dir: str | Path, manifest: dict[str, Any]) -> Path:
    """Write manifest.json (atomically), keeping the earlier invocations of a resumed run."""
    path = Path(out_dir) / MANIFEST
    invocations = []
    if path.is_file():
        try:
            earlier = json.loads(path.read_text())
            invocations = earlier.get("invocations", [])
        except (OSError, ValueError):
            pass
    manifest = manifest | {"invocations": [*invocations, {"at": manifest["created_at"], "command": manifest["command"], **manifest["project"]}]}
    return atomic_write_text(path, json.dumps(manifest, indent=1, sort_keys=False) + "\n")


def read_manifest(run: str | Path) -> dict[str, Any]:
    """The manifest of a run folder; EvalError when it has none or it is unreadable."""
    path = Path(run) / MANIFEST
    if not path.is_file():
        raise EvalError(f"{run} has no {MANIFEST}: it was made before manifests existed, or is not a run folder; run it again with `python -m evals run`")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as err:
        raise EvalError(f"{path} is not valid JSON ({err}); it cannot be repeated from it") from err
    if not isinstance(manifest, dict) or "request" not in manifest:
        raise EvalError(f"{path} has no 'request'; it cannot be repeated from it")
    return manifest


def summary_lines(manifest: dict[str, Any]) -> list[str]:
    """A few readable lines: commit, versions, machine, seeds, command (for verdict.md and the app)."""
    project, machine_ = manifest.get("project", {}), manifest.get("machine", {})
    packages = manifest.get("versions", {}).get("packages", {})
    cpu = machine_.get("cpu", {})
    commit = project.get("commit") or "not a git checkout"
    lines = [
        f"commit {commit[:12]}{' (dirty: uncommitted changes)' if project.get('dirty') else ''}",
        "python {} · torch {} · transformers {}".format(
            manifest.get("versions", {}).get("python"), packages.get("torch", {}).get("installed"), packages.get("transformers", {}).get("installed")
        ),
        f"CPU {cpu.get('model')} ({cpu.get('logical_cpus')} logical; {' '.join(cpu.get('vector_features', [])) or 'no vector features listed'}), "
        f"torch threads {machine_.get('torch_threads')}",
    ]
    for gpu in machine_.get("gpus", []):
        lines.append(f"GPU {gpu['name']} (driver {gpu.get('driver')}, CUDA {gpu.get('cuda')})")
    seeds = manifest.get("seeds", {})
    lines.append(f"seeds: run {seeds.get('run')}, few-shot {seeds.get('fewshot')}, statistics {seeds.get('statistics')}")
    lines.append(f"command: {manifest.get('command')}")
    return lines


def rerun_arguments(manifest: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of `evals.runner.run` (and the torch threads) that repeat the manifest's run."""
    from g3n_core import Variant

    from .measure import MeasureSettings

    request = manifest["request"]
    try:
        variants = [Variant.from_dict(v) for v in request["variants"]]
        settings = MeasureSettings(**request.get("measure_settings") or {})
    except (TypeError, ValueError) as err:
        raise EvalError(f"the manifest's request cannot be repeated here: {err}") from err
    return {
        "variants": variants, "tasks": list(request["tasks"]), "measures": list(request.get("measures") or []), "limit": request.get("limit"),
        "seed": int(request.get("seed", 0)), "measure_settings": settings, "data_dir": request.get("data_dir"), "threads": request.get("threads"),
    }  # fmt: skip
