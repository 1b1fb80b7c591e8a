"""Which examples two variants answer differently: per-example records joined by their stable id.

A `Side` is one variant's results in one run folder (two sides may come from two runs). `joined`
pairs the samples both sides finished (`example_id`, else the doc index of older runs), and
`disagreements` lists the examples whose answers differ, with the prompt, its media file, each
side's answer and score and the reference, optionally only those where one side does better.
Used by `python -m evals diff`, the paired statistics (`evals.paired`) and the app's Compare tab.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .results import ResultLog, load_results, read_samples

FILTERS = ("all", "a_better", "b_better")  # every differing example; A right / B wrong; B right / A wrong


@dataclass(frozen=True)
class Side:
    """One variant's results in one run folder."""

    run: Path
    variant: str  # its display name in the results table
    variant_json: str
    tag: str = ""  # where two runs are compared: which run

    @property
    def label(self) -> str:
        """The variant name, with its run's tag where two runs are compared."""
        return f"{self.variant} ({self.tag})" if self.tag else self.variant

    def samples(self, task: str) -> list[dict] | None:
        """Its per-example records of `task`, or None when the run has none (skipped, failed, or not run)."""
        if not task or any(part in task for part in ("/", "\\", "..")):
            raise ValueError(f"not a task name: {task!r}")
        try:
            return read_samples(self.run, self.variant_json, task)
        except FileNotFoundError:
            return None


def sides(run: str | Path, frame: pd.DataFrame | None = None) -> dict[str, Side]:
    """The variants of a run folder, by name, in the order they ran (the order of their first rows in the log)."""
    frame = load_results(run) if frame is None else frame
    order = {r["variant_json"]: i for i, r in reversed(list(enumerate(ResultLog(run).rows())))}
    rows = frame.drop_duplicates("variant_json")
    rows = rows.assign(order=rows["variant_json"].map(order).fillna(len(order))).sort_values("order", kind="stable")
    return {r["variant"]: Side(Path(run), r["variant"], r["variant_json"]) for _, r in rows.iterrows()}


def find_side(found: dict[str, Side], name: str) -> Side:
    """The side called `name` (exact, else the one whose name contains it); EvalError listing the names otherwise."""
    from g3n_core.errors import EvalError

    if name in found:
        return found[name]
    matches = [side for key, side in found.items() if name in key]
    if len(matches) == 1:
        return matches[0]
    raise EvalError(f"no single variant called {name!r} in this run; variants are: {', '.join(found)}")


def sample_key(sample: dict) -> str:
    """The join key of a per-example record: its content id, or the doc index in runs made before ids existed."""
    return str(sample.get("example_id", f"doc:{sample.get('doc_id')}"))


def joined(a: Side, b: Side, task: str) -> list[tuple[str, dict, dict]] | None:
    """(id, A's record, B's record) for every example both sides finished, in A's order; None when either has no records."""
    records_a, records_b = a.samples(task), b.samples(task)
    if records_a is None or records_b is None:
        return None
    by_id = {sample_key(s): s for s in records_b}
    return [(sample_key(s), s, by_id[sample_key(s)]) for s in records_a if sample_key(s) in by_id]


def answer(sample: dict) -> str:
    """The answer a record gives: the chosen option of multiple choice, else the generated text."""
    if "choices" in sample and "pred" in sample:
        return str(sample["choices"][sample["pred"]])
    return str(sample.get("prediction", ""))


def reference(sample: dict) -> str:
    """The reference answer(s) of a record, as text."""
    if "choices" in sample and "gold" in sample:
        return str(sample["choices"][sample["gold"]])
    ref = sample.get("reference", "")
    return " | ".join(map(str, ref)) if isinstance(ref, list) else str(ref)


def score_metric(sample: dict, metrics: list[str]) -> str | None:
    """The first of `metrics` (primary first) that the record scores per example."""
    return next((m for m in metrics if isinstance(sample.get(m), (int, float))), None)


@dataclass
class Disagreement:
    """One example where two variants answer differently."""

    task: str
    example_id: str
    prompt: str
    media: dict[str, str] = field(default_factory=dict)  # {"image": path} / {"audio": path}
    reference: str = ""
    answer_a: str = ""
    answer_b: str = ""
    metric: str | None = None  # the per-example score shown
    score_a: float | None = None
    score_b: float | None = None
    better: str = ""  # "a", "b" or "" (same score)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON, tables)."""
        return dict(self.__dict__)


def disagreements(a: Side, b: Side, task: str, metrics: list[str], higher_is_better: dict[str, bool] | None = None, only: str = "all") -> list[Disagreement]:
    """Examples of `task` where A's and B's answers differ; `only` 'a_better' / 'b_better' keeps those one side scores better on."""
    if only not in FILTERS:
        raise ValueError(f"only must be one of {FILTERS}")
    higher = higher_is_better or {}
    found = []
    for key, sa, sb in joined(a, b, task) or []:
        if answer(sa) == answer(sb):
            continue
        metric = score_metric(sa, metrics)
        score_a, score_b = (float(sa[metric]), float(sb[metric])) if metric and metric in sb else (None, None)
        better = ""
        if score_a is not None and score_a != score_b:
            a_wins = (score_a > score_b) == higher.get(metric, True)
            better = "a" if a_wins else "b"
        if only != "all" and better != only[0]:
            continue
        found.append(Disagreement(task, key, str(sa.get("prompt", "")), dict(sa.get("media") or {}), reference(sa), answer(sa), answer(sb), metric, score_a, score_b, better))
    return found
