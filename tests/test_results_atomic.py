"""Results files are replaced whole: a SIGKILL in the middle of writing leaves the old or the new file, never a torn one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from evals.results import atomic_write_bytes, atomic_write_text, export

ROOT = Path(__file__).resolve().parents[1]
ROWS = 400_000  # ~30 MB of CSV: writing it takes a good fraction of a second, long enough to be killed inside

# The child writes results.csv versions 1, 2, ... through `export` (or, as the control, pandas' own
# in-place to_csv), saying "start N" before each write and "done N" after it.
WRITER = """
import sys
import pandas as pd
from evals.results import export
out, mode = sys.argv[1], sys.argv[2]
version = 0
while True:
    version += 1
    frame = pd.DataFrame({"version": version, "row": range(%d), "note": "x" * 40})
    print("start", version, flush=True)
    if mode == "atomic":
        export(frame, out)
    else:
        frame.to_csv(out + "/results.csv", index=False)
    print("done", version, flush=True)
""" % ROWS


def _kill_during_second_write(folder: Path, mode: str) -> int:
    """Run the writer until it is inside writing version 2, SIGKILL it there; the last version it finished."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(folder), mode], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    finished = 0
    try:
        for line in proc.stdout:
            word, version = line.split()
            if word == "done":
                finished = int(version)
            elif int(version) == 2:
                time.sleep(0.15)  # well inside the write of version 2 (it takes several times longer)
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return finished


def _versions(path: Path) -> tuple[set[int], int, bool]:
    data = path.read_bytes()
    frame = pd.read_csv(path) if data else pd.DataFrame(columns=["version"])
    return set(frame["version"]), len(frame), data.endswith(b"\n")


def test_a_kill_during_the_results_write_leaves_a_whole_file(tmp_path):
    finished = _kill_during_second_write(tmp_path, "atomic")
    assert finished == 1
    versions, rows, complete = _versions(tmp_path / "results.csv")
    assert versions == {1} and rows == ROWS and complete  # the whole old version, untouched
    assert not (tmp_path / "results.json").exists() or (tmp_path / "results.json").stat().st_size > 0


def test_the_same_kill_tears_an_in_place_write(tmp_path):
    """The control: without the rename the kill above does leave a torn file, so the test can tell the two apart."""
    _kill_during_second_write(tmp_path, "in-place")
    versions, rows, complete = _versions(tmp_path / "results.csv")
    assert rows < ROWS or not complete or versions != {1}


def test_atomic_writes_replace_and_clean_up(tmp_path):
    path = tmp_path / "deep" / "run.json"
    atomic_write_text(path, "old")
    atomic_write_bytes(path, b"new")
    assert path.read_text() == "new" and oct(path.stat().st_mode & 0o777) == "0o644"

    with pytest.raises(TypeError):
        atomic_write_bytes(path, object())  # a failed write leaves the old file and no temporary beside it
    assert path.read_text() == "new"
    assert os.listdir(path.parent) == ["run.json"]


def test_export_writes_both_tables(tmp_path):
    frame = pd.DataFrame({"variant": ["a"], "value": [1.0]})
    csv, js = export(frame, tmp_path)
    assert pd.read_csv(csv).to_dict("records") == [{"variant": "a", "value": 1.0}]
    assert js.read_text().startswith("[")
