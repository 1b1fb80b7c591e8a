"""Peak memory of exporting a MatFormer slice: streamed (ours) vs load + slice + save_pretrained.

Builds a widened tiny checkpoint (random weights, about 0.8 GB in float32 by default) in a
temporary folder, then exports the same slice both ways, each in a fresh process, and prints the
peak anonymous resident memory each needed above an idle process that only imported the libraries.

    python benchmarks/matformer_export_memory.py [--ffn 8192] [--hidden 512]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Peak *anonymous* resident memory, sampled every 2 ms: safetensors memory-maps the shards, and the
# file pages it touches count in plain RSS although the kernel can drop them at any time.
IMPORTS = """
import re, threading, time, torch, transformers, g3n_core.matformer.export, g3n_core.matformer.slicing
peak = [0]
def _sample():
    while True:
        text = open("/proc/self/status").read()
        peak[0] = max(peak[0], int(re.search(r"RssAnon:\\s+(\\d+)", text).group(1)) * 1024)
        time.sleep(0.002)
threading.Thread(target=_sample, daemon=True).start()
time.sleep(0.05)
"""
REPORT = "time.sleep(0.05)\nprint(peak[0])\n"

BUILD = """
import sys
import g3n_core.builtin.checkpoint as checkpoint
from g3n_core.builtin.checkpoint import write_tiny
from g3n_core.builtin.configs import tiny_config
out, hidden, ffn = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config = tiny_config()
config.text_config.hidden_size = hidden
config.text_config.intermediate_size = [ffn] * config.text_config.num_hidden_layers
checkpoint.tiny_config = lambda: config  # write_tiny builds from tiny_config()
write_tiny(out)
"""

STREAMED = IMPORTS + """
import sys
from g3n_core.matformer.export import export_slice
from g3n_core.matformer.presets import parse_slice
export_slice(sys.argv[1], parse_slice(sys.argv[3], 15), sys.argv[2])
""" + REPORT

NAIVE = IMPORTS + """
import sys
from transformers import AutoModelForImageTextToText
from g3n_core.matformer.presets import parse_slice
from g3n_core.matformer.slicing import slice_model
model = AutoModelForImageTextToText.from_pretrained(sys.argv[1])
slice_model(model, parse_slice(sys.argv[3], 15)).save_pretrained(sys.argv[2])
""" + REPORT

IDLE = IMPORTS + REPORT


def _run(code: str, *args: str) -> int:
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Build the checkpoint, export both ways, print peak memory above idle and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--ffn", type=int, default=8192)
    parser.add_argument("--slice", default=None, help="the slice to export, parse_slice form (default: half the FFN, skip 5-9)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        parent = Path(tmp) / "parent"
        subprocess.run([sys.executable, "-c", BUILD, str(parent), str(args.hidden), str(args.ffn)], cwd=ROOT, check=True)
        size = (parent / "model.safetensors").stat().st_size
        slice_text = args.slice or f"ffn={args.ffn // 2};skip=5-9"
        idle = _run(IDLE)
        streamed = _run(STREAMED, str(parent), str(Path(tmp) / "streamed"), slice_text) - idle
        naive = _run(NAIVE, str(parent), str(Path(tmp) / "naive"), slice_text) - idle
        result = {
            "checkpoint_MiB": round(size / 2**20, 1),
            "slice": slice_text,
            "streamed_peak_above_idle_MiB": round(streamed / 2**20, 1),
            "load_slice_save_peak_above_idle_MiB": round(naive / 2**20, 1),
            "ratio_load_slice_save_over_streamed": round(naive / max(streamed, 1), 1),
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
