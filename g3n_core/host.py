"""What machine a number came from: the host name and a one-line hardware description (rows of evals results)."""

from __future__ import annotations

import os
import platform
import socket
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_name() -> str:
    """This machine's host name."""
    return socket.gethostname()


def hardware(device: str = "cpu") -> str:
    """One line naming what `device` runs on: the GPU's name, or the CPU model with its visible core count."""
    if str(device).startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.get_device_name(torch.device(device))} (CUDA)"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu_model()} ({cores} CPUs)"
