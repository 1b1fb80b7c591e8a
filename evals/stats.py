"""Paired statistics for two variants scored on the same examples, with scipy.stats.

Every test compares a candidate B with a baseline A; differences are B - A.

- **Binary per-example scores** (acc, acc_norm, exact match): the difference of the two
  accuracies with the Bonett-Price adjusted Wald 95% interval for paired proportions, the exact
  McNemar test (`scipy.stats.binomtest` on the discordant pairs), and the smallest difference the
  exact test would detect with 80% power (an exact binomial power search, below).
- **Continuous per-example scores and corpus metrics** (F1, chrF, WER and BLEU over the corpus):
  every example carries sufficient statistics whose sums give the metric (a mean is the sum of
  scores over the count), so one resampling scheme serves both. The 95% interval is a paired
  BCa bootstrap (`scipy.stats.bootstrap`: resample examples, recompute both variants' metric on
  the same resample); the p-value is a paired randomisation test (`scipy.stats.permutation_test`,
  permutation_type='samples': swap each example's two outputs; exact for 13 examples or fewer);
  the detectable difference is (z_0.975 + z_0.80) times the bootstrap standard error.
- **Timings**: the ratio of the medians with a percentile bootstrap interval, resampling each
  variant's repeats independently (repeat i of A has nothing to do with repeat i of B).
- **Holm**'s step-down adjustment for the tasks of one comparison.

Exact McNemar power. With n pairs, a discordance rate psi (the probability that exactly one
variant is right) and a difference delta, the number of discordant pairs is M ~ Bin(n, psi) and
the candidate wins C | M=m ~ Bin(m, (1 + delta/psi) / 2) of them. The test rejects when
binomtest(C, m, 0.5) gives p <= alpha, i.e. when min(C, m - C) <= k(m), the largest k with
2 * P(Bin(m, 1/2) <= k) <= alpha. So

    power(delta) = sum_m Bin(m; n, psi) * [P(C <= k(m)) + P(C >= m - k(m))]

and the detectable difference is the smallest delta with power >= 0.8, with psi the observed
discordance rate, or delta itself when larger (a difference of delta needs at least that many
discordant pairs). Power increases with delta, so a bisection finds it.

The seed is fixed: the same data always give the same intervals and p-values.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05  # two-sided level of every test and interval (95% intervals)
POWER = 0.80  # power at which the detectable difference is computed
RESAMPLES = 10_000  # bootstrap and randomisation resamples
SEED = 12345  # fixed: a report prints the same intervals every time
BATCH = 500  # resamples computed at once (bounds memory on large tasks)

Score = Callable[[np.ndarray], np.ndarray]  # summed statistics (..., k) -> metric (...)


@dataclass(frozen=True)
class PairedTest:
    """One paired comparison of a metric on the examples both variants finished."""

    kind: str  # "binary", "continuous" or "corpus"
    n: int  # examples compared
    baseline: float  # the metric of A on those examples
    candidate: float  # the metric of B
    diff: float  # candidate - baseline
    low: float  # 95% interval of diff
    high: float
    p: float  # two-sided p-value of "no difference"
    detectable: float | None  # smallest |diff| detectable with 80% power; None: cannot say
    identical: bool  # every example scored the same for both
    discordant: tuple[int, int] | None = None  # binary: (A right and B wrong, A wrong and B right)


@dataclass(frozen=True)
class RatioTest:
    """Ratio of the candidate's median to the baseline's, with a bootstrap interval over repeats."""

    ratio: float
    low: float | None  # None below two repeats on either side
    high: float | None
    n_baseline: int
    n_candidate: int


def _z(p: float) -> float:
    return float(stats.norm.ppf(p))


# -- binary ----------------------------------------------------------------------------------


def bonett_price_interval(a_only: int, b_only: int, n: int, alpha: float = ALPHA) -> tuple[float, float]:
    """Bonett-Price (2012) adjusted Wald interval of a paired difference of proportions (B - A).

    a_only / b_only are the pairs only A / only B got right. Recommended by Fagerland, Lydersen
    and Laake (2014, Stat Med 33:2850) for paired binary data; it stays sensible at 0 discordant pairs.
    """
    pa, pb = (a_only + 1) / (n + 2), (b_only + 1) / (n + 2)
    diff = pb - pa
    half = _z(1 - alpha / 2) * np.sqrt(max(0.0, pa + pb - diff**2) / (n + 2))
    return float(max(-1.0, diff - half)), float(min(1.0, diff + half))


def mcnemar_p(a_only: int, b_only: int) -> float:
    """Exact McNemar p-value: the two-sided binomial test of the discordant pairs against 1/2."""
    m = a_only + b_only
    return 1.0 if m == 0 else float(stats.binomtest(b_only, m, 0.5).pvalue)


def rejection_bound(m: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Per m: the largest k with 2 P(Bin(m, 1/2) <= k) <= alpha (-1 where none): the exact test rejects min(C, m-C) <= k."""
    m = np.asarray(m)
    k = stats.binom.ppf(alpha / 2, m, 0.5)  # smallest k with cdf(k) >= alpha / 2
    k = np.where(2 * stats.binom.cdf(k, m, 0.5) <= alpha * (1 + 1e-9), k, k - 1)
    return np.where(m > 0, k, -1).astype(np.int64)


def mcnemar_power(n: int, discordance: float, diff: float, alpha: float = ALPHA) -> float:
    """Power of the exact two-sided McNemar test for n pairs, discordance rate psi and difference delta (|delta| <= psi)."""
    if discordance <= 0:
        return 0.0
    share = min(1.0, (1 + abs(diff) / discordance) / 2)
    m = np.arange(n + 1)
    weight = stats.binom.pmf(m, n, min(1.0, discordance))
    k = rejection_bound(m, alpha)
    reject = np.where(k >= 0, stats.binom.cdf(k, m, share) + stats.binom.sf(m - k - 1, m, share), 0.0)
    return float(np.sum(weight * reject))


def detectable_binary(n: int, discordance: float, alpha: float = ALPHA, power: float = POWER) -> float | None:
    """Smallest difference of proportions the exact McNemar test detects with `power`; None when n is too small for any."""

    def power_at(delta: float) -> float:
        return mcnemar_power(n, max(discordance, delta), delta, alpha)

    if n <= 0 or power_at(1.0) < power:
        return None
    low, high = 0.0, 1.0
    for _ in range(40):  # |high - low| < 1e-12
        middle = (low + high) / 2
        low, high = (low, middle) if power_at(middle) >= power else (middle, high)
    return high


def paired_binary(baseline: Sequence[float], candidate: Sequence[float]) -> PairedTest:
    """Difference of accuracies, Bonett-Price interval, exact McNemar p and the detectable difference."""
    a, b = _paired_arrays(baseline, candidate)
    if not np.isin(a, (0, 1)).all() or not np.isin(b, (0, 1)).all():
        raise ValueError("binary scores must be 0 or 1")
    n = len(a)
    a_only, b_only = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
    low, high = bonett_price_interval(a_only, b_only, n)
    return PairedTest(
        kind="binary", n=n, baseline=float(a.mean()), candidate=float(b.mean()), diff=(b_only - a_only) / n, low=low, high=high,
        p=mcnemar_p(a_only, b_only), detectable=detectable_binary(n, (a_only + b_only) / n),
        identical=bool((a == b).all()), discordant=(a_only, b_only),
    )  # fmt: skip


# -- continuous and corpus: resampling over examples ------------------------------------------


def mean_score(summed: np.ndarray) -> np.ndarray:
    """The metric of per-example scores given as statistics [score, 1]: their mean."""
    return summed[..., 0] / summed[..., 1]


def as_mean_statistics(scores: Sequence[float]) -> np.ndarray:
    """Per-example scores as sufficient statistics [score, 1] (their sums give the mean)."""
    values = np.asarray(scores, dtype=np.float64)
    return np.stack([values, np.ones_like(values)], axis=-1)


def paired_resampled(baseline: np.ndarray, candidate: np.ndarray, score: Score = mean_score, kind: str = "continuous") -> PairedTest:
    """Paired bootstrap interval, randomisation p-value and detectable difference of score(sum of stats) between variants.

    `baseline` and `candidate` are (n, k) per-example sufficient statistics in the same example
    order; `score` maps summed statistics (..., k) to the metric (vectorised over leading axes).
    """
    a, b = np.asarray(baseline, dtype=np.float64), np.asarray(candidate, dtype=np.float64)
    if a.ndim == 1:
        a, b = as_mean_statistics(a), as_mean_statistics(b)
    if a.shape != b.shape or a.shape[0] == 0:
        raise ValueError(f"paired statistics must have the same non-empty shape, got {a.shape} and {b.shape}")
    n = a.shape[0]
    value_a, value_b = float(score(a.sum(0))), float(score(b.sum(0)))
    diff = value_b - value_a
    common = dict(kind=kind, n=n, baseline=value_a, candidate=value_b, diff=diff)
    if np.array_equal(a, b):
        return PairedTest(**common, low=0.0, high=0.0, p=1.0, detectable=None, identical=True)
    if n < 2:
        return PairedTest(**common, low=float("nan"), high=float("nan"), p=1.0, detectable=None, identical=False)

    def difference(index: np.ndarray, axis: int = -1) -> np.ndarray:
        return score(b[index].sum(-2)) - score(a[index].sum(-2))

    with warnings.catch_warnings():  # a degenerate BCa (NaN) is handled just below
        warnings.simplefilter("ignore", (stats.DegenerateDataWarning, RuntimeWarning))
        boot = stats.bootstrap((np.arange(n),), difference, n_resamples=RESAMPLES, batch=BATCH, method="BCa", vectorized=True, rng=SEED)
    low, high = boot.confidence_interval
    if not (np.isfinite(low) and np.isfinite(high)):  # BCa undefined (e.g. one example differs): percentile instead
        low, high = np.quantile(boot.bootstrap_distribution, [ALPHA / 2, 1 - ALPHA / 2])
    both = np.concatenate([a, b])  # code i < n: A's statistics of example i; n + i: B's

    def swapped(x_codes: np.ndarray, y_codes: np.ndarray, axis: int = -1) -> np.ndarray:
        return score(both[y_codes].sum(-2)) - score(both[x_codes].sum(-2))

    permuted = stats.permutation_test(
        (np.arange(n), np.arange(n, 2 * n)), swapped, permutation_type="samples", vectorized=True,
        n_resamples=RESAMPLES, batch=BATCH, rng=SEED,
    )  # fmt: skip
    detectable = (_z(1 - ALPHA / 2) + _z(POWER)) * float(boot.standard_error)
    return PairedTest(**common, low=float(low), high=float(high), p=float(permuted.pvalue), detectable=detectable, identical=False)


# -- timings --------------------------------------------------------------------------------


def median_ratio(baseline: Sequence[float], candidate: Sequence[float]) -> RatioTest:
    """median(candidate) / median(baseline) with a 95% percentile bootstrap interval (each side resampled on its own)."""
    a = np.asarray([v for v in baseline if np.isfinite(v)], dtype=np.float64)
    b = np.asarray([v for v in candidate if np.isfinite(v)], dtype=np.float64)
    if not len(a) or not len(b):
        raise ValueError("no finite timings to compare")
    ratio = float(np.median(b) / np.median(a))
    if len(a) < 2 or len(b) < 2:
        return RatioTest(ratio, None, None, len(a), len(b))

    def of_medians(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.median(x, axis=axis) / np.median(y, axis=axis)

    boot = stats.bootstrap((b, a), of_medians, n_resamples=RESAMPLES, method="percentile", vectorized=True, rng=SEED)
    return RatioTest(ratio, float(boot.confidence_interval.low), float(boot.confidence_interval.high), len(a), len(b))


# -- multiple comparisons -----------------------------------------------------------------------


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control under any dependence), in the input order."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()


def _paired_arrays(baseline: Sequence[float], candidate: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(baseline, dtype=np.float64), np.asarray(candidate, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"paired scores must be two non-empty lists of the same length, got {a.shape} and {b.shape}")
    return a, b
