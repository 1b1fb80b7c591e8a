"""The results log: one JSON row per (variant, task, metric), appended and fsynced as soon as it is known.

Rows are grouped in units: everything one (variant, task-or-measurement, limit) produces. Every row
carries its unit id and the unit's row count, so a run killed in the middle of writing a unit is
detected on the next start: the unit runs again and only its missing rows are appended. A unit
that failed leaves one `error` row, which does not count as finished; a later success supersedes it.
Rows also name the host and hardware that computed them (several machines can feed one log).

Files in a run folder: results.jsonl (the log), results.csv / results.json (the tidy table, written
at the end of a run), run.json (what was asked for), manifest.json (how to repeat it: evals.manifest),
samples/<variant>/<task>.jsonl (per-example records, joinable across variants by `example_id`;
per-repeat timings for measure_latency), verdict.md (written by `report`). Every file other than the append-only log is written whole through `atomic_write_bytes` /
`atomic_write_text` (a temporary file beside it, fsynced, then renamed over it), so a kill at any
moment leaves the old version or the new one, never a torn or empty file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from g3n_core.errors import EvalError

LOG = "results.jsonl"
COLUMNS = [
    "variant", "task", "metric", "value", "n", "stderr", "unit", "kind", "higher_is_better",
    "wall_s", "status", "note", "warning", "limit", "variant_json", "unit_id", "unit_size", "host", "hardware", "finished_at",
]  # fmt: skip


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Replace `path` with `data` all at once: a reader (or a kill) sees the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results are ordinary files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)  # the rename itself survives a power cut
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """`atomic_write_bytes` of UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot open or sync a directory
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def variant_key(variant_json: str) -> str:
    """Short stable id of a variant's JSON (folder names, unit ids)."""
    return hashlib.sha1(variant_json.encode()).hexdigest()[:10]


def unit_id(variant_json: str, task: str, limit: int | None) -> str:
    """Id of the work unit that produces a (variant, task or measurement, limit)'s rows."""
    return f"{variant_key(variant_json)}|{task}|limit={limit}"


def _clean(value):
    """JSON-safe numbers: NaN and infinities become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def now() -> str:
    """UTC timestamp for rows."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ResultLog:
    """Append-only JSONL of result rows in a run folder, safe against being killed at any point."""

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / LOG
        self._repair_tail()

    def _repair_tail(self) -> None:
        """Drop a half-written last line left by a kill during a write."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as file:
                file.truncate(keep)
                file.flush()
                os.fsync(file.fileno())

    def rows(self) -> list[dict]:
        """Every row written so far, in order."""
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as file:
            return [json.loads(line) for line in file if line.strip()]

    def append(self, row: dict) -> None:
        """Write one row and make it durable before returning."""
        line = json.dumps({k: _clean(v) for k, v in row.items()}, sort_keys=True) + "\n"
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(line)
            file.flush()
            os.fsync(file.fileno())

    def finished_rows(self) -> dict[str, dict[str, dict]]:
        """Rows of non-error status by unit id, then by metric."""
        found: dict[str, dict[str, dict]] = defaultdict(dict)
        for row in self.rows():
            if row.get("status") != "error":
                found[row["unit_id"]][row["metric"]] = row
        return found

    def finished_units(self) -> set[str]:
        """Units all of whose rows are in the log."""
        return {unit for unit, rows in self.finished_rows().items() if len(rows) == next(iter(rows.values()))["unit_size"]}

    def write_unit(self, rows: list[dict]) -> int:
        """Append the rows of one unit that are not in the log yet; returns how many were written."""
        present = self.finished_rows()
        written = 0
        for row in rows:
            if row["metric"] not in present.get(row["unit_id"], {}):
                self.append(row)
                written += 1
        return written


def tidy(rows: list[dict]) -> pd.DataFrame:
    """Rows -> one DataFrame: per unit, its finished rows, else its latest error; one row per metric."""
    finished: dict[tuple, dict] = {}
    errors: dict[str, dict] = {}
    for row in rows:
        if row.get("status") == "error":
            errors[row["unit_id"]] = row
        else:
            finished[(row["unit_id"], row["metric"])] = row
    done_units = {unit for unit, _ in finished}
    kept = list(finished.values()) + [r for unit, r in errors.items() if unit not in done_units]
    frame = pd.DataFrame(kept, columns=COLUMNS)
    return frame.sort_values(["variant", "task", "metric"], kind="stable").reset_index(drop=True)


def load_results(out_dir: str | Path) -> pd.DataFrame:
    """The tidy table of a run folder (from its log, so it works on a run that is still going or was killed)."""
    path = Path(out_dir) / LOG
    if not path.exists():
        raise EvalError(f"{out_dir} holds no {LOG}; run `python -m evals run --out {out_dir}` first")
    return tidy(ResultLog(out_dir).rows())


def export(frame: pd.DataFrame, out_dir: str | Path) -> tuple[Path, Path]:
    """Write results.csv and results.json (records) next to the log, each atomically."""
    out = Path(out_dir)
    csv, js = out / "results.csv", out / "results.json"
    atomic_write_text(csv, frame.to_csv(index=False))
    atomic_write_text(js, frame.to_json(orient="records", indent=1))
    return csv, js


def list_runs(root: str | Path) -> list[dict]:
    """Run folders under `root` (any depth 1), newest first: path, name, rows, variants, tasks, modified."""
    runs = []
    for log in sorted(Path(root).glob(f"*/{LOG}")):
        rows = ResultLog(log.parent).rows()
        runs.append(
            {
                "path": str(log.parent),
                "name": log.parent.name,
                "rows": len(rows),
                "variants": sorted({r["variant"] for r in rows}),
                "tasks": sorted({r["task"] for r in rows}),
                "modified": log.stat().st_mtime,
            }
        )
    return sorted(runs, key=lambda r: r["modified"], reverse=True)


def write_samples(out_dir: str | Path, variant_json: str, task: str, samples: list[dict]) -> Path:
    """Per-example records of one (variant, task), replacing any earlier file."""
    folder = Path(out_dir) / "samples" / variant_key(variant_json)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{task.replace(':', '_')}.jsonl"
    return atomic_write_text(path, "".join(json.dumps(s, default=str) + "\n" for s in samples))


def read_samples(out_dir: str | Path, variant_json: str, task: str) -> list[dict]:
    """The per-example records written by `write_samples`."""
    path = Path(out_dir) / "samples" / variant_key(variant_json) / f"{task.replace(':', '_')}.jsonl"
    with open(path, encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]
