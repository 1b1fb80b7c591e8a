"""ZeroGPU on Hugging Face Spaces: run model work under `spaces.GPU` when the `spaces` package is there.

Elsewhere (this machine, a GPU box) `on_gpu` returns the function unchanged, so the app runs the
same without the package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)
GPU_SECONDS = 120  # ZeroGPU's per-call budget for a chat turn or a model load


def spaces_gpu() -> Callable | None:
    """`spaces.GPU` when the package is importable, else None."""
    try:
        import spaces
    except ImportError:
        return None
    return getattr(spaces, "GPU", None)


def on_gpu(fn: F, duration: int = GPU_SECONDS) -> F:
    """`fn` wrapped by spaces.GPU(duration=...) on ZeroGPU; otherwise `fn` itself."""
    gpu = spaces_gpu()
    if gpu is None:
        return fn
    if not hasattr(fn, "__name__"):  # functools.partial: name it (no __wrapped__, so its signature stays the partial's)
        fn.__name__ = fn.func.__name__
    return gpu(duration=duration)(fn)
