"""How long building the tiny checkpoint and one forward pass with an image take (targets: 60 s, 2 s).

    python -m benchmarks.tiny_build
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time

import numpy as np
import torch

from g3n_core import Variant, load_model
from g3n_core.builtin.checkpoint import write_tiny
from g3n_core.prompt import prepare_prompt

BUILD_TARGET_S = 60.0
FORWARD_TARGET_S = 2.0


def main() -> None:
    """Build tiny into a fresh folder, load it, time image forward passes; print figures against targets."""
    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        write_tiny(folder)
        build_s = time.perf_counter() - start
        loaded = load_model(Variant(model=folder))
        image = (np.random.default_rng(0).random((480, 640, 3)) * 255).astype(np.uint8)
        messages = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "Describe it."}]}]
        inputs = prepare_prompt(loaded, messages, 1).inputs
        times = []
        with torch.inference_mode():
            for _ in range(6):
                start = time.perf_counter()
                loaded.model(**inputs)
                times.append(time.perf_counter() - start)
    forward_s = statistics.median(times[1:])
    result = {"build_s": build_s, "forward_with_image_s": forward_s, "threads": torch.get_num_threads()}
    print(f"tiny build: {build_s:.1f} s (target < {BUILD_TARGET_S:.0f} s, {build_s / BUILD_TARGET_S:.2f} of it)")
    print(f"forward with one image: {forward_s:.3f} s median of 5 after warm-up (target < {FORWARD_TARGET_S:.0f} s, "
          f"{forward_s / FORWARD_TARGET_S:.2f} of it)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
