"""Searching for the best MatFormer slice under a budget: the space the Lab's rules allow, and a
bounded greedy descent seeded by the presets.

The space (`SliceSpace`):
- FFN widths from the parent's allowed set: the widths its presets use (E4B: 8192 and 16384, the
  Lab's), else the Matryoshka fractions 1/4, 1/2, 3/4, 1 of each layer's width; `widths` overrides;
- changed block by block (consecutive layers, one attention period of Gemma 3n: 4 local + 1 global)
  and layer by layer inside the last blocks changed (layer-level), always to the next narrower width;
- skipped layers among those KV sharing allows (never the first or last layer, never a layer that
  stores keys/values for the shared ones), in runs of a block, from the start of the KV-shared range
  as E2B does; every candidate is checked by `plan_slice`.

The strategy (`search`), at most `max_evals` objective calls:
1. evaluate the seeds: the parent, every preset that fits it, any slice given;
2. start from the smallest seed still over the budget (the parent when none is);
3. from the current slice, evaluate every single move (one block one width narrower, one more run of
   layers skipped) and take the one that loses the least score per effective parameter saved;
   within one block move of the budget, moves are per layer, so the slice lands close to the budget;
4. repeat until the current slice is under the budget or evaluations run out.
The answer is the best-scoring slice under the budget among everything evaluated (seeds included),
so the search is never worse on its objective than the best preset under the budget. Each
evaluation is one objective call on the task's dev split; the search never sees the test split.

Why greedy by score-per-parameter: MatFormer's nested FFNs make narrowing monotone in cost and
roughly additive in loss across layers, which is the case where a marginal-cost greedy path is
near the best trade-off; it needs (blocks + skip runs) evaluations per step instead of the
exponential space, and its path is a ladder (each step a Pareto candidate) printed with the front.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import SliceError
from ..sources import classify, read_config
from ..variant import Variant

from .presets import presets_for
from .sizes import variant_size
from .slicing import plan_slice
from .spec import MatformerSlice

FRACTIONS = (0.25, 0.5, 0.75, 1.0)  # Matryoshka widths when the parent has no presets


@dataclass(frozen=True)
class Budget:
    """Limits a slice must meet; None leaves a dimension free."""

    max_effective_params: int | None = None
    max_memory_bytes: int | None = None  # the slice's weights deployed on its own, at the variant's dtype
    min_tokens_per_s: float | None = None  # measured decode speed

    def admits(self, point: Point) -> bool:
        """True when the evaluated slice meets every limit."""
        if self.max_effective_params is not None and point.effective_params > self.max_effective_params:
            return False
        if self.max_memory_bytes is not None and point.memory_bytes > self.max_memory_bytes:
            return False
        if self.min_tokens_per_s is not None and not (point.tokens_per_s or 0.0) >= self.min_tokens_per_s:
            return False
        return True

    def distance(self, point: Point) -> float:
        """How far over the budget, in effective parameters (the descent's cost axis); 0 when within."""
        if self.admits(point):
            return 0.0
        if self.max_effective_params is not None and point.effective_params > self.max_effective_params:
            return float(point.effective_params - self.max_effective_params)
        return math.inf  # over on memory or speed: keep cutting

    def describe(self) -> str:
        """Human-readable limits."""
        parts = []
        if self.max_effective_params is not None:
            parts.append(f"effective params <= {self.max_effective_params:,}")
        if self.max_memory_bytes is not None:
            parts.append(f"memory <= {self.max_memory_bytes:,} bytes")
        if self.min_tokens_per_s is not None:
            parts.append(f"decode >= {self.min_tokens_per_s:g} tokens/s")
        return ", ".join(parts) or "no limit"


_UNITS = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "kib": 2**10, "mib": 2**20, "gib": 2**30, "kb": 1e3, "mb": 1e6, "gb": 1e9}


def parse_amount(text: str | float | None) -> float | None:
    """'1.9e9', '1.9B', '300M', '4GiB', '4 GB' -> a number (None and '' stay None)."""
    if text is None or str(text).strip() == "":
        return None
    raw = str(text).strip().lower().replace(" ", "").replace("_", "")
    scale = 1.0
    for unit in sorted(_UNITS, key=len, reverse=True):
        if raw.endswith(unit) and raw[: -len(unit)]:
            raw, scale = raw[: -len(unit)], _UNITS[unit]
            break
    try:
        value = float(raw) * scale
    except ValueError as err:
        raise SliceError(f"cannot read {text!r} as an amount; write e.g. 1.9e9, 1.9B, 300M or 4GiB") from err
    if not value > 0 or math.isinf(value):
        raise SliceError(f"{text!r}: a budget must be a positive number")
    return value


def budget_from_texts(model: str, max_effective_params=None, max_memory=None, min_tokens_per_s=None, like: str | None = None) -> Budget:
    """A Budget from what a person typed; `like` (a preset or slice of `model`) sets the effective-parameter limit."""
    from ..variant import parse_variant_spec
    from .sizes import slice_report

    params = parse_amount(max_effective_params)
    if like:
        params = slice_report(model, parse_variant_spec(f"{model} matformer={like}").matformer)["effective_params"]
    speed = parse_amount(min_tokens_per_s)
    budget = Budget(int(params) if params else None, int(parse_amount(max_memory)) if parse_amount(max_memory) else None, speed)
    if budget == Budget():
        raise SliceError("give a budget: a maximum of effective parameters or memory, a minimum decode speed, or a preset to match")
    return budget


@dataclass(frozen=True)
class Measured:
    """What the objective returns for one slice: its score (higher is better), a finer tie-break, all metrics."""

    score: float
    tiebreak: float = 0.0
    metrics: dict = field(default_factory=dict)
    tokens_per_s: float | None = None


@dataclass
class Point:
    """One evaluated slice."""

    slice: MatformerSlice
    origin: str  # "parent", "preset", "seed" or "search"
    score: float
    tiebreak: float
    metrics: dict
    effective_params: int
    memory_bytes: int
    tokens_per_s: float | None
    step: int = 0

    @property
    def key(self) -> tuple[float, float]:
        """Ranking: score, then tie-break."""
        return (self.score, self.tiebreak)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "label": self.slice.label, "slice": self.slice.to_dict(), "origin": self.origin, "score": self.score,
            "tiebreak": self.tiebreak, "metrics": self.metrics, "effective_params": self.effective_params,
            "memory_bytes": self.memory_bytes, "tokens_per_s": self.tokens_per_s, "step": self.step,
        }  # fmt: skip


@dataclass(frozen=True)
class State:
    """A slice as the search edits it: one width per parent layer, and the skipped layers."""

    widths: tuple[int, ...]
    skip: frozenset[int] = frozenset()

    def to_slice(self, label: str | None = None) -> MatformerSlice:
        """The MatformerSlice (Lab convention: widths of kept layers only)."""
        kept = [w for i, w in enumerate(self.widths) if i not in self.skip]
        return MatformerSlice(ffn=tuple(kept), skip=tuple(sorted(self.skip)), preset=label)

    @classmethod
    def of(cls, slc: MatformerSlice, parent_widths: tuple[int, ...]) -> State:
        """The state of a slice of a parent with these widths."""
        kept = [i for i in range(len(parent_widths)) if i not in set(slc.skip)]
        widths = list(parent_widths)
        for layer, width in zip(kept, slc.ffn or [parent_widths[i] for i in kept]):
            widths[layer] = width
        return cls(tuple(widths), frozenset(slc.skip))


class SliceSpace:
    """The slices of one parent the search may visit, and their sizes."""

    def __init__(self, variant: Variant, widths: tuple[int, ...] | None = None, block_size: int | None = None):
        self.variant = variant.replace(matformer=None)
        self.text = read_config(classify(variant.model)).text_config
        self.parent_widths = tuple(int(w) for w in self.text.intermediate_size)
        self.layers = len(self.parent_widths)
        self.allowed = tuple(sorted(set(widths or self._default_widths())))
        period = next((i + 1 for i, t in enumerate(self.text.layer_types) if t == "full_attention"), 5)
        self.block_size = block_size or period
        self.blocks = [tuple(range(a, min(a + self.block_size, self.layers))) for a in range(0, self.layers, self.block_size)]
        self._sizes: dict[MatformerSlice, tuple[int, int]] = {}
        bad = [w for w in self.allowed if w <= 0 or w > max(self.parent_widths)]
        if bad:
            raise SliceError(f"allowed widths {bad} are not between 1 and the parent's {max(self.parent_widths)}")

    def _default_widths(self) -> set[int]:
        used = {w for preset in presets_for(self.variant.model) for w in preset.ffn}
        if used:
            return used | set(self.parent_widths)
        return {max(1, round(w * f)) for w in self.parent_widths for f in FRACTIONS}

    def fits(self, state: State) -> bool:
        """True when the state is a legal slice (Lab rules, KV sharing)."""
        try:
            plan_slice(self.text, state.to_slice())
        except SliceError:
            return False
        return True

    def size(self, slc: MatformerSlice) -> tuple[int, int]:
        """(effective parameters, bytes of the weights at the variant's dtype) of the slice deployed on its own."""
        key = MatformerSlice(slc.ffn, slc.skip)
        if key not in self._sizes:
            v = self.variant
            self._sizes[key] = variant_size(v.model, None if key.is_empty else key, v.dtype, v.towers)
        return self._sizes[key]

    def _narrower(self, width: int) -> int | None:
        lower = [w for w in self.allowed if w < width]
        return lower[-1] if lower else None

    def _narrow(self, state: State, layers: tuple[int, ...]) -> State | None:
        widths = list(state.widths)
        changed = False
        for i in layers:
            if i in state.skip:
                continue
            lower = self._narrower(widths[i])
            if lower is not None:
                widths[i], changed = lower, True
        return State(tuple(widths), state.skip) if changed else None

    def skip_runs(self) -> list[tuple[int, ...]]:
        """Runs of consecutive KV-shared layers (a block long) that may be skipped, from the start of the shared range."""
        modes = self.text.kv_sharing_modes
        shared = [i for i, m in enumerate(modes) if m == "reuse" and i != self.layers - 1]
        return [tuple(shared[a : a + self.block_size]) for a in range(0, len(shared), self.block_size)]

    def moves(self, state: State, layers: tuple[int, ...] | None = None) -> list[tuple[str, tuple[int, ...], State]]:
        """Every single step from `state`: (name, layers changed, new state).

        Without `layers`: each block one width narrower, and the next run of shared layers skipped.
        With `layers` (layer-level, near the budget): each of those layers one width narrower.
        """
        found: list[tuple[str, tuple[int, ...], State]] = []
        groups = [(f"layer {i}", (i,)) for i in layers] if layers else [(f"block {b[0]}-{b[-1]}", b) for b in self.blocks]
        for name, group in groups:
            new = self._narrow(state, group)
            if new is not None and self.fits(new):
                found.append((f"narrow {name}", group, new))
        if layers:
            return found
        for run in self.skip_runs():
            if set(run) & state.skip:
                continue
            new = State(state.widths, state.skip | set(run))
            if self.fits(new):
                found.append((f"skip {run[0]}-{run[-1]}", (), new))
            break  # runs are skipped in order from the start of the shared range, as E2B does
        return found


@dataclass
class SearchResult:
    """Everything the search evaluated, its path, and the answer."""

    budget: Budget
    points: list[Point]
    best: Point | None  # best under the budget (None when nothing evaluated fits it)
    path: list[str]
    evaluations: int

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "budget": self.budget.describe(), "evaluations": self.evaluations, "path": self.path,
            "best": self.best.to_dict() if self.best else None, "points": [p.to_dict() for p in self.points],
        }  # fmt: skip


Objective = Callable[[Variant], Measured]
Progress = Callable[[int, int, str], None]  # (evaluations done, at most, what)


def preset_seeds(space: SliceSpace) -> list[MatformerSlice]:
    """The presets that fit the parent, but the full model (the parent itself)."""
    slices = [preset.to_slice() for preset in presets_for(space.variant.model)]
    return [slc for slc in slices if State.of(slc, space.parent_widths) != State(space.parent_widths)]


class _Evaluator:
    """Objective calls with sizes, memoised per slice and counted against the bound."""

    def __init__(self, space: SliceSpace, objective: Objective, max_evals: int, progress: Progress):
        self.space, self.objective, self.max_evals, self.progress = space, objective, max_evals, progress
        self.points: dict[State, Point] = {}
        self.order: list[Point] = []

    @property
    def left(self) -> int:
        return self.max_evals - len(self.order)

    def __call__(self, state: State, origin: str, label: str | None = None, step: int = 0) -> Point | None:
        if state in self.points:
            return self.points[state]
        if self.left <= 0:
            return None
        full = state == State(self.space.parent_widths)
        slc = state.to_slice(label or ("parent" if full else None))
        variant = self.space.variant if full else self.space.variant.replace(matformer=slc)
        self.progress(len(self.order), self.max_evals, f"{origin}: {slc.label}")
        measured = self.objective(variant)
        effective, memory = self.space.size(slc if not full else MatformerSlice())
        point = Point(slc, origin, measured.score, measured.tiebreak, dict(measured.metrics), effective, memory, measured.tokens_per_s, step)
        self.points[state] = point
        self.order.append(point)
        self.progress(len(self.order), self.max_evals, f"{origin}: {slc.label} -> {measured.score:.4f}")
        return point


def _best_move(current: Point, candidates: list[Point], distance: float) -> Point:
    """The candidate losing the least score per effective parameter saved (ties: the one saving more).

    Savings beyond what the budget asks for (`distance`) earn nothing: a big move that overshoots
    the budget must be worth its whole loss against the small moves that just reach it.
    """

    def cost(p: Point) -> tuple[float, float]:
        saved = max(1.0, min(float(current.effective_params - p.effective_params), distance))
        return ((current.score - p.score) / saved, -saved)

    return min(candidates, key=cost)


def search(
    space: SliceSpace,
    objective: Objective,
    budget: Budget,
    max_evals: int = 40,
    seeds: list[MatformerSlice] | None = None,
    progress: Progress | None = None,
) -> SearchResult:
    """The best slice of `space`'s parent under `budget` by `objective`, within `max_evals` evaluations."""
    if max_evals < 1:
        raise SliceError(f"max_evals must be at least 1, got {max_evals}")
    evaluate = _Evaluator(space, objective, max_evals, progress or (lambda done, total, what: None))
    parent = evaluate(State(space.parent_widths), "parent", "parent")
    for slc in preset_seeds(space):
        evaluate(State.of(slc, space.parent_widths), "preset", slc.preset)
    for slc in seeds or []:
        evaluate(State.of(slc, space.parent_widths), "seed", slc.preset)
    over = [p for p in evaluate.order if not budget.admits(p)]
    current = min(over, key=lambda p: (p.effective_params, -p.score)) if over else parent
    state = State.of(current.slice, space.parent_widths)
    path = [f"start: {current.slice.label} ({current.origin})"]
    focus: tuple[int, ...] | None = None  # near the budget: the block being narrowed layer by layer
    step = 0
    while current is not None and not budget.admits(current) and evaluate.left > 0:
        step += 1
        moves = space.moves(state, focus)
        if not moves:
            if focus is None:
                path.append("no move left")
                break
            focus = None  # that block is as narrow as it goes: back to whole blocks
            continue
        tried = [(name, layers, new, evaluate(new, "search", step=step)) for name, layers, new in moves]
        tried = [t for t in tried if t[3] is not None]
        if not tried:
            break
        best = _best_move(current, [t[3] for t in tried], budget.distance(current))
        name, layers, new, point = next(t for t in tried if t[3] is best)
        if focus is None and len(layers) > 1 and budget.admits(point):
            # this block move crosses the budget: cut its layers one at a time instead, to land just under it
            focus = layers
            path.append(f"step {step}: {name} would cross the budget; narrowing its layers one at a time")
            continue
        state, current = new, point
        path.append(f"step {step}: {name} -> score {current.score:.4f}, {current.effective_params:,} effective params")
    admitted = [p for p in evaluate.order if budget.admits(p)]
    best = max(admitted, key=lambda p: (p.key, -p.effective_params)) if admitted else None
    return SearchResult(budget, evaluate.order, best, path, len(evaluate.order))


def pareto(points: list[Point]) -> list[Point]:
    """Points no other point beats on score, effective parameters, memory and (when measured) tokens/s at once."""

    def beats(q: Point, p: Point) -> bool:
        pairs = [(q.score, p.score), (-q.effective_params, -p.effective_params), (-q.memory_bytes, -p.memory_bytes)]
        if q.tokens_per_s is not None and p.tokens_per_s is not None:
            pairs.append((q.tokens_per_s, p.tokens_per_s))
        return all(a >= b for a, b in pairs) and any(a > b for a, b in pairs)

    return [p for p in points if not any(beats(q, p) for q in points if q is not p)]


def front_by_size(points: list[Point]) -> list[Point]:
    """The accuracy-against-effective-parameters front, smallest first."""
    ordered = sorted(points, key=lambda p: (p.effective_params, -p.score))
    front, best = [], -math.inf
    for p in ordered:
        if p.score > best:
            front.append(p)
            best = p.score
    return front
