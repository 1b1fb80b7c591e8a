"""Small files that decode into a lot: does each request stay within its memory and time budget?

    python -m benchmarks.heavy_media                 # through g3n_core's chat path (a subprocess)
    python -m benchmarks.heavy_media --through app   # through `python app.py`'s /chat API

Writes the heavy files (a 3000-frame static 640x480 MP4, an hour of silent FLAC, a 12000x12000
1-bit PNG, a 600 s low-resolution video), then sends each with a one-token request and prints,
per file, its size, whether it was answered or refused (and why), the seconds it took and how
much the serving process's resident memory rose at its peak. The peak is exact on Linux (the
kernel's high-water mark, reset before each request through /proc/PID/clear_refs), else sampled
every 2 ms. Targets (issue 17): every file answered or refused within 10 s, RSS rise < 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

MB = 1024 * 1024
TARGET_SECONDS = 10.0
TARGET_RISE_MB = 300.0
QUESTION = "What is in this file?"


# -- the heavy files -------------------------------------------------------------------------------


def _encode_video(path: Path, frames, size: tuple[int, int], fps: int, keyframe_every: int = 12) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = keyframe_every
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _one_bit_png(path: Path, side: int) -> Path:
    """A blank side x side 1-bit PNG written directly (a few KB; 144 MB once decoded at 12000)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    rows = (b"\x00" * (1 + (side + 7) // 8)) * side
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))
    return path


def _silent_flac(path: Path, seconds: int, rate: int = 44_100) -> Path:
    import soundfile as sf

    block = np.zeros(rate * 60, np.float32)
    with sf.SoundFile(path, "w", rate, 1, format="FLAC") as out:
        for _ in range(seconds // 60):
            out.write(block)
    return path


def write_heavy_files(folder: Path) -> dict[str, tuple[str, Path]]:
    """The heavy files, keyed by name: (media kind, path)."""
    folder.mkdir(parents=True, exist_ok=True)
    still = np.zeros((480, 640, 3), np.uint8)
    shades = [np.full((48, 64, 3), (i * 7) % 256, np.uint8) for i in range(256)]
    return {
        "static_3000_frames.mp4": ("video", _encode_video(folder / "static_3000_frames.mp4", (still for _ in range(3000)), (640, 480), 25)),
        "silence_1h.flac": ("audio", _silent_flac(folder / "silence_1h.flac", 3600)),
        "bitmap_12000x12000.png": ("image", _one_bit_png(folder / "bitmap_12000x12000.png", 12_000)),
        "long_600s_64x48.mp4": ("video", _encode_video(folder / "long_600s_64x48.mp4", (shades[i % 256] for i in range(6000)), (64, 48), 10)),
    }


# -- peak resident memory --------------------------------------------------------------------------


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


@contextmanager
def peak_rss_rise(pid: int | None = None):
    """Yields a dict that holds, on exit, `rise_mb`: the process's peak RSS during the block minus its RSS at the start."""
    import psutil

    pid = pid or os.getpid()
    result: dict[str, float] = {}
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the kernel's peak-RSS mark (VmHWM)
        exact = True
    except OSError:
        exact = False
    process = psutil.Process(pid)
    start = process.memory_info().rss
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.002):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = None if exact else threading.Thread(target=sample, daemon=True)
    if sampler:
        sampler.start()
    try:
        yield result
    finally:
        done.set()
        if sampler:
            sampler.join()
        high = _status_kb(pid, "VmHWM") * 1024 if exact else peak[0]
        result.update(rise_mb=max(0, high - start) / MB, exact=exact)


def _row(name: str, path: Path, outcome: str, detail: str, seconds: float, rise: dict) -> dict:
    return {"file": name, "bytes": path.stat().st_size, "outcome": outcome, "detail": detail, "seconds": round(seconds, 2),
            "rss_rise_mb": round(rise["rise_mb"], 1), "peak_exact": rise["exact"]}


# -- through g3n_core ------------------------------------------------------------------------------


def _part(kind: str, path: Path) -> dict:
    return {"type": kind, kind: str(path)}


def run_core(files: dict[str, tuple[str, Path]], model: str = "tiny") -> list[dict]:
    """In this process: load `model`, warm up with small media, then one 1-token chat per heavy file."""
    import torch

    from g3n_core import G3nError, GenerationSettings, Variant, chat, load_model

    torch.set_num_threads(1)
    loaded = load_model(Variant(model=model))
    one = GenerationSettings(max_new_tokens=1)
    with tempfile.TemporaryDirectory() as tmp:
        for kind, path in write_warmup_files(Path(tmp)).values():  # imports, codecs and allocator pools warmed up
            chat(loaded, [{"role": "user", "content": [_part(kind, path), {"type": "text", "text": QUESTION}]}], one)
    rows = []
    for name, (kind, path) in files.items():
        started = time.perf_counter()
        with peak_rss_rise() as rise:
            try:
                reply = chat(loaded, [{"role": "user", "content": [_part(kind, path), {"type": "text", "text": QUESTION}]}], one)
                outcome, detail = "answered", "; ".join(reply.warnings)
            except G3nError as err:
                outcome, detail = "refused", str(err)
        rows.append(_row(name, path, outcome, detail, time.perf_counter() - started, rise))
    return rows


def write_warmup_files(folder: Path) -> dict[str, tuple[str, Path]]:
    """One small file per kind, sent before measuring."""
    import soundfile as sf
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64), "red").save(folder / "warm.png")
    sf.write(folder / "warm.flac", np.zeros(16_000, np.float32), 16_000)
    frames = (np.full((48, 64, 3), 40 * i, np.uint8) for i in range(5))
    return {
        "warm.png": ("image", folder / "warm.png"),
        "warm.flac": ("audio", folder / "warm.flac"),
        "warm.mp4": ("video", _encode_video(folder / "warm.mp4", frames, (64, 48), 5)),
    }


# -- through the app's /chat API -------------------------------------------------------------------


def run_app(files: dict[str, tuple[str, Path]], model: str = "tiny") -> list[dict]:
    """Serve `python app.py --model MODEL` on a free port and send each file through /chat; the server's RSS is measured."""
    import socket

    from gradio_client import Client, handle_file

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(
        [sys.executable, "app.py", "--model", model, "--host", "127.0.0.1", "--port", str(port)],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(iter(server.stdout.readline, "")), daemon=True).start()
    try:
        deadline = time.time() + 300
        while not any("Running on local URL" in line for line in log):
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit("app.py did not start:\n" + "".join(log))
            time.sleep(0.5)
        client = Client(f"http://127.0.0.1:{port}", verbose=False)
        with tempfile.TemporaryDirectory() as tmp:
            for _, path in write_warmup_files(Path(tmp)).values():
                client.predict({"text": QUESTION, "files": [handle_file(str(path))]}, max_new_tokens=1, api_name="/chat")
        rows = []
        for name, (_, path) in files.items():
            started = time.perf_counter()
            with peak_rss_rise(server.pid) as rise:
                try:
                    client.predict({"text": QUESTION, "files": [handle_file(str(path))]}, max_new_tokens=1, api_name="/chat")
                    outcome, detail = "answered", ""
                except Exception as err:  # noqa: BLE001 - gradio_client raises AppError (or ValueError) with the message
                    outcome, detail = "refused", str(err).splitlines()[0] if str(err) else type(err).__name__
            rows.append(_row(name, path, outcome, detail, time.perf_counter() - started, rise))
        return rows
    finally:
        server.terminate()
        server.wait(timeout=30)


def print_table(rows: list[dict]) -> None:
    """One line per file, with the targets."""
    print(f"{'file':<26} {'size':>9} {'outcome':<9} {'seconds':>8} {'RSS rise':>9}  detail")
    for row in rows:
        size = f"{row['bytes'] / 1024:.0f} KiB"
        print(f"{row['file']:<26} {size:>9} {row['outcome']:<9} {row['seconds']:>8.2f} {row['rss_rise_mb']:>6.0f} MB  {row['detail'][:90]}")
    ok = all(r["seconds"] < TARGET_SECONDS and r["rss_rise_mb"] < TARGET_RISE_MB for r in rows)
    print(f"targets: each < {TARGET_SECONDS:.0f} s and RSS rise < {TARGET_RISE_MB:.0f} MB: {'met' if ok else 'NOT met'}"
          f" ({'exact peaks' if all(r['peak_exact'] for r in rows) else 'sampled peaks'})")


def main(argv: list[str] | None = None) -> None:
    """Write the heavy files, send each through core or app, print the table (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--through", choices=("core", "app"), default="core", help="g3n_core's chat (default) or app.py's /chat API")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--dir", default=None, help="where to write the heavy files (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON list instead of a table")
    parser.add_argument("--out", default=None, help="also write the result JSON into this folder (default results/)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        files = write_heavy_files(Path(args.dir or tmp))
        rows = (run_core if args.through == "core" else run_app)(files, args.model)
    if args.json:
        print(json.dumps(rows))
        return
    print_table(rows)
    from benchmarks.report import write_result

    print("wrote", write_result("heavy_media", {"through": args.through, "model": args.model, "rows": rows}, args.out))


if __name__ == "__main__":
    main()
