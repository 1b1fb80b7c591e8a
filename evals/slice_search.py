"""`matformer search`: the best MatFormer slice under a budget, measured on a task's dev split.

The search itself (space, strategy, budget) is `g3n_core.matformer.search`; this module gives it
objectives measured the evals way and saves the run like an evals run:

- a task objective: the task's first metric on its `dev` half (`evals.tasks.splits`; the search
  never sees `test`), with a finer tie-break (multiple choice: the mean log-likelihood margin of the
  gold answer; generation: the task's second metric), and a short decode for tokens/s. Every slice
  comes from one ModelCache, so the parent loads once and each candidate is an elastic view;
- `agreement`, a synthetic objective for any weights (random `tiny` included): how close the slice's
  next-token distributions stay to the parent's, teacher-forced over the dev prompts of `builtin_mc`:
  score minus the mean KL divergence from the parent (smooth, unlike top-1 agreement on random
  weights, which collapses at the first cut), tie-break the top-1 agreement.

Results: results.jsonl / results.csv (one unit per candidate and task, plus its size and decode
speed, readable by `python -m evals report`), search.json (budget, path, every point, the Pareto
front, the best slice and the commands to use it) and charts/search.html (accuracy against effective
parameters, the presets beside the searched slices, the front and the best slice marked).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import torch
import torch.nn.functional as F

from g3n_core import ModelCache, Variant
from g3n_core.errors import EvalError
from g3n_core.matformer.search import Budget, Measured, Point, SearchResult, SliceSpace, front_by_size, pareto, search
from g3n_core.matformer.spec import MatformerSlice, runs_text

from .measure import MeasureSettings, measure_latency
from .model import EvalModel
from .results import ResultLog, atomic_write_text, export, now, tidy
from .worker import LOWER_IS_BETTER, Unit, make_row, where
from .scoring import tok_encode
from .tasks import resolve_tasks

AGREEMENT = "agreement"
SPEED = MeasureSettings(prompt_tokens=32, new_tokens=16, warmup=1, repeats=1)
Progress = Callable[[int, int, str], None]


def _decode_speed(loaded, settings: MeasureSettings) -> float:
    rows = {m.name: m.value for m in measure_latency(loaded, settings)}
    return float(rows["decode_tokens_per_s_median"])


def _mc_margin(samples: list[dict]) -> float:
    """Mean of (gold log-likelihood - best other choice's): a continuous refinement of accuracy."""
    margins = []
    for s in samples:
        lls = list(s["loglikelihoods"])
        gold = lls.pop(s["gold"])
        margins.append(gold - max(lls) if lls else gold)
    return float(np.mean(margins)) if margins else 0.0


@dataclass
class Evaluated:
    """One objective call, kept for the results log."""

    variant: Variant
    task: str
    kind: str
    metrics: list[tuple[str, float, int | None, float | None]]  # name, value, n, stderr
    note: str
    wall_s: float
    samples: list[dict] = field(default_factory=list)  # per-example records (paired comparisons of two slices)


class TaskObjective:
    """A task's first metric on its dev split (higher is better; error rates negated), on slices from one cache."""

    def __init__(self, task: str, cache: ModelCache, limit: int | None = None, speed: MeasureSettings | None = SPEED, seed: int = 0, split: str = "dev"):
        self.task = resolve_tasks([f"{task}:{split}"])[0]  # the search uses dev; only checks afterwards use test
        self.cache, self.limit, self.speed, self.seed = cache, limit, speed, seed
        self.metric = self.task.metric_names[0]
        self.sign = -1.0 if self.metric in LOWER_IS_BETTER else 1.0
        self.log: list[Evaluated] = []

    @property
    def description(self) -> str:
        """What the score is."""
        return f"{self.task.name} {self.metric}" + (" (negated: lower is better)" if self.sign < 0 else "")

    def __call__(self, variant: Variant) -> Measured:
        start = time.perf_counter()
        loaded = self.cache.get(variant)
        model = EvalModel(loaded, seed=self.seed)
        missing = self.task.missing_towers(model)
        if missing:
            raise EvalError(f"{self.task.name} needs the {' and '.join(missing)} tower; search a variant that loads it")
        torch.manual_seed(self.seed)
        result = self.task.evaluate(model, self.limit)
        values = {m.name: m.value for m in result.metrics}
        if result.samples and "loglikelihoods" in result.samples[0]:
            tiebreak = _mc_margin(result.samples)
        else:
            second = self.task.metric_names[1] if len(self.task.metric_names) > 1 else self.metric
            tiebreak = (-1.0 if second in LOWER_IS_BETTER else 1.0) * values[second]
        speed = _decode_speed(loaded, self.speed) if self.speed else None
        metrics = [(m.name, m.value, m.n, m.stderr) for m in result.metrics]
        self.log.append(Evaluated(variant, self.task.name, self.task.kind, metrics, "; ".join(result.notes), time.perf_counter() - start, result.samples))
        return Measured(self.sign * values[self.metric], tiebreak, values, speed)


class AgreementObjective:
    """Synthetic: minus the KL divergence of the slice's next-token distributions from the parent's
    (teacher-forced, every position of the dev prompts of builtin_mc); meaningful on random weights too."""

    task_name = AGREEMENT

    def __init__(self, parent: Variant, cache: ModelCache, limit: int | None = None, speed: MeasureSettings | None = SPEED, split: str = "dev"):
        self.cache, self.speed, self.split = cache, speed, split
        task = resolve_tasks([f"builtin_mc:{split}"])[0]
        docs = task.docs(limit)
        loaded = cache.get(parent)
        self.prompts = [torch.tensor([tok_encode(loaded.tokenizer, doc["query"] + " " + doc["choices"][doc["gold"]])], device=loaded.device) for doc in docs]
        self.reference = [self._log_probs(loaded, ids) for ids in self.prompts]
        self.metric = "kl_from_parent"
        self.log: list[Evaluated] = []

    @property
    def description(self) -> str:
        """What the score is."""
        return f"-KL from the parent (synthetic), builtin_mc:{self.split} prompts"

    @staticmethod
    def _log_probs(loaded, ids: torch.Tensor) -> torch.Tensor:
        with loaded.lock, torch.inference_mode():
            return F.log_softmax(loaded.model(input_ids=ids).logits[0].float(), dim=-1)

    def __call__(self, variant: Variant) -> Measured:
        start = time.perf_counter()
        loaded = self.cache.get(variant)
        same = total = 0
        kl = []
        for ids, ref in zip(self.prompts, self.reference):
            mine = self._log_probs(loaded, ids)
            same += int((mine.argmax(-1) == ref.argmax(-1)).sum())
            total += ids.shape[1]
            kl.append(float(F.kl_div(mine, ref, log_target=True, reduction="batchmean")))
        agreement, mean_kl = same / max(1, total), float(np.mean(kl))
        speed = _decode_speed(loaded, self.speed) if self.speed else None
        metrics = [("agreement", agreement, total, None), ("kl_from_parent", mean_kl, total, None)]
        self.log.append(Evaluated(variant, f"{AGREEMENT}:{self.split}", "synthetic", metrics, "teacher-forced against the parent", time.perf_counter() - start))
        return Measured(-mean_kl, agreement, {"agreement": agreement, "kl_from_parent": mean_kl}, speed)


def make_objective(task: str, parent: Variant, cache: ModelCache, limit: int | None = None, speed: MeasureSettings | None = SPEED):
    """The objective a task name asks for (`agreement` is the synthetic one)."""
    if task == AGREEMENT:
        return AgreementObjective(parent, cache, limit, speed)
    return TaskObjective(task, cache, limit, speed)


# -- saving --------------------------------------------------------------------------------------------


def _variant_of(parent: Variant, point: Point) -> Variant:
    return parent if point.origin == "parent" else parent.replace(matformer=point.slice)


def _rows(parent: Variant, point: Point, evaluated: Evaluated) -> list[list[dict]]:
    """The evals rows of one candidate: its task unit, its size unit, its decode-speed unit."""
    variant = _variant_of(parent, point)
    at = where(variant)
    task_unit = Unit(variant, evaluated.task)
    units = [[make_row(task_unit, name, value, where=at, n=n, stderr=stderr, kind=evaluated.kind, note=evaluated.note, wall_s=evaluated.wall_s, size=len(evaluated.metrics))
              for name, value, n, stderr in evaluated.metrics]]  # fmt: skip
    size = Unit(variant, "measure:size")
    units.append([
        make_row(size, "effective_params", point.effective_params, where=at, kind="size", measure_unit="params", note=f"origin: {point.origin}", size=2),
        make_row(size, "weight_bytes_total", point.memory_bytes, where=at, kind="size", measure_unit="bytes", note="the slice on its own at the variant's dtype", size=2),
    ])  # fmt: skip
    if point.tokens_per_s is not None:
        speed = Unit(variant, "measure:latency")
        units.append([make_row(speed, "decode_tokens_per_s_median", point.tokens_per_s, where=at, kind="latency", measure_unit="tokens/s", note="elastic, short decode", size=1)])
    return units


def ffn_text(ffn: tuple[int, ...]) -> str:
    """(8192, 8192, 16384) -> '8192*2,16384' (the --ffn form)."""
    return runs_text(ffn, "*")


def use_commands(parent: Variant, slc: MatformerSlice) -> dict[str, str]:
    """How to run and export a found slice."""
    ffn = ffn_text(slc.ffn or ())
    skip = ",".join(map(str, slc.skip))
    flags = f"--ffn {ffn}" + (f" --skip {skip}" if skip else "")
    spec = f"ffn={ffn}" + (f" skip={skip}" if skip else "")  # spec tokens (a ';' would split matformer=... in two)
    return {
        "export": f"python -m g3n_core matformer slice --model {parent.model} {flags} --out ./{Path(parent.model).name}-slice",
        "variant": f"{parent.model} {spec}",
    }


def search_chart(result: SearchResult, description: str) -> go.Figure:
    """Score against effective parameters: the parent and presets beside the searched slices, the front, the best."""
    fig = go.Figure()
    styles = {"parent": ("square", 13), "preset": ("diamond", 12), "seed": ("diamond-open", 12), "search": ("circle", 8)}
    for origin, (symbol, size) in styles.items():
        points = [p for p in result.points if p.origin == origin]
        if points:
            fig.add_trace(go.Scatter(
                x=[p.effective_params for p in points], y=[p.score for p in points], mode="markers+text" if origin != "search" else "markers",
                text=[p.slice.label for p in points], textposition="top center", name={"preset": "presets", "search": "searched"}.get(origin, origin),
                marker={"symbol": symbol, "size": size}, hovertext=[f"{p.slice.label}: {p.score:.4f}" for p in points], cliponaxis=False,
            ))  # fmt: skip
    front = front_by_size(result.points)
    fig.add_trace(go.Scatter(x=[p.effective_params for p in front], y=[p.score for p in front], mode="lines", name="Pareto front", line={"dash": "dash"}))
    if result.best is not None:
        fig.add_trace(go.Scatter(x=[result.best.effective_params], y=[result.best.score], mode="markers", name=f"best under budget: {result.best.slice.label}",
                                 marker={"symbol": "star", "size": 20}))  # fmt: skip
    if result.budget.max_effective_params is not None:
        fig.add_vline(x=result.budget.max_effective_params, line_dash="dot", annotation_text="budget")
    fig.update_layout(title=f"MatFormer slice search: {description}", xaxis_title="effective parameters", yaxis_title=description, template="plotly_white")
    return fig


def save_search(out: Path, parent: Variant, objective, result: SearchResult, request: dict) -> dict:
    """Write the run folder; returns search.json's content."""
    out.mkdir(parents=True, exist_ok=True)
    log = ResultLog(out)
    by_variant = {e.variant: e for e in objective.log}
    for point in result.points:
        evaluated = by_variant.get(_variant_of(parent, point))
        if evaluated is not None:
            for unit in _rows(parent, point, evaluated):
                log.write_unit(unit)
    export(tidy(log.rows()), out)
    summary = {
        **request,
        "objective": objective.description,
        **result.to_dict(),
        "pareto": [p.slice.label for p in pareto(result.points)],
        "front_by_size": [p.slice.label for p in front_by_size(result.points)],
        "use": use_commands(parent, result.best.slice) if result.best and result.best.origin != "parent" else None,
        "finished_at": now(),
    }
    atomic_write_text(out / "search.json", json.dumps(summary, indent=1, default=str))
    atomic_write_text(out / "run.json", json.dumps({"variants": [json.loads(_variant_of(parent, p).to_json()) for p in result.points], "tasks": [objective.log[0].task] if objective.log else [], "search": True, "updated_at": now()}, indent=1))
    charts = out / "charts"
    charts.mkdir(exist_ok=True)
    search_chart(result, objective.description).write_html(charts / "search.html", include_plotlyjs="directory", full_html=True)
    return summary


def run_search(
    parent: Variant,
    task: str,
    budget: Budget,
    out: str | Path,
    *,
    max_evals: int = 40,
    limit: int | None = None,
    widths: tuple[int, ...] | None = None,
    block_size: int | None = None,
    seeds: list[MatformerSlice] | None = None,
    cache: ModelCache | None = None,
    measure_speed: bool = True,
    progress: Progress | None = None,
) -> tuple[SearchResult, dict]:
    """Search `parent`'s slices under `budget` on `task`'s dev split; save the run in `out`."""
    if parent.matformer is not None:
        raise EvalError(f"search from the parent, not a slice: drop matformer from {parent.name}")
    cache = cache or ModelCache()
    space = SliceSpace(parent, widths, block_size)
    objective = make_objective(task, parent, cache, limit, SPEED if measure_speed else None)
    result = search(space, objective, budget, max_evals, seeds, progress)
    request = {"parent": json.loads(parent.to_json()), "task": task, "limits": budget.__dict__, "max_evals": max_evals, "limit": limit,
               "allowed_widths": list(space.allowed), "block_size": space.block_size}  # fmt: skip
    return result, save_search(Path(out), parent, objective, result, request)


def front_table(result: SearchResult) -> list[dict]:
    """Rows of every evaluated slice for printing: the size front first, budget and Pareto flags."""
    front = {id(p) for p in front_by_size(result.points)}
    full = {id(p) for p in pareto(result.points)}
    rows = []
    for p in sorted(result.points, key=lambda p: p.effective_params):
        rows.append({
            "slice": p.slice.label, "origin": p.origin, "score": p.score, "effective_params": p.effective_params, "memory_bytes": p.memory_bytes,
            "tokens_per_s": p.tokens_per_s, "under_budget": result.budget.admits(p), "front": id(p) in front, "pareto": id(p) in full,
            "best": p is result.best,
        })  # fmt: skip
    return rows
