"""What machine a figure came from, and writing results as JSON (under results/, which git ignores)."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch
import transformers

from g3n_core.host import cpu_model
from evals.results import atomic_write_text
from g3n_core import hardware

RESULTS = Path("results")


def machine() -> dict:
    """CPU count, load, model names and library versions: every result carries these."""
    info = {
        "nproc": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "loadavg_1m": os.getloadavg()[0],
        "cpu": cpu_model(),
        "cpu_features": hardware.cpu_info().describe(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def result_path(name: str, out_dir: str | Path | None = None) -> Path:
    """OUT_DIR/NAME-TIMESTAMP.json (default folder: results/), its folder created."""
    folder = Path(out_dir) if out_dir else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"


def write_result(name: str, data: dict, out_dir: str | Path | None = None, path: Path | None = None) -> Path:
    """Write `data` with the machine description as JSON (to `path`, else a new result_path); returns the path."""
    path = path or result_path(name, out_dir)
    atomic_write_text(path, json.dumps({"machine": machine(), **data}, indent=2, default=str) + "\n")
    return path


def available_memory_gb() -> float:
    """MemAvailable from /proc/meminfo in GB (inf where unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1e6
    except OSError:
        pass
    return float("inf")
