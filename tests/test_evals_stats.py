"""evals.stats against computations written out independently here: binomial sums with math.comb,
a hand-rolled numpy BCa bootstrap on the same random draws, an exact enumeration of the
randomisation test, a simulation of the interval's coverage, Holm on a worked example."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.special import ndtr, ndtri

from evals import stats
from evals.metrics import load_metric
from evals.metrics.corpus import CORPUS_SCORES


def direct_mcnemar_p(a_only: int, b_only: int) -> float:
    """Two-sided exact binomial test of the discordant pairs at 1/2, summed by hand."""
    m = a_only + b_only
    if m == 0:
        return 1.0
    tail = sum(math.comb(m, i) for i in range(min(a_only, b_only) + 1)) / 2**m
    return min(1.0, 2 * tail)


def direct_power(n: int, discordance: float, diff: float, alpha: float = 0.05) -> float:
    """Power of the exact McNemar test by enumerating every (discordant count, candidate wins) with math.comb."""
    share = (1 + diff / discordance) / 2
    total = 0.0
    for m in range(n + 1):
        p_m = math.comb(n, m) * discordance**m * (1 - discordance) ** (n - m)
        if p_m < 1e-15:
            continue
        reject = sum(math.comb(m, c) * share**c * (1 - share) ** (m - c) for c in range(m + 1) if direct_mcnemar_p(m - c, c) <= alpha)
        total += p_m * reject
    return total


@pytest.mark.parametrize("a_only,b_only", [(0, 0), (0, 6), (3, 3), (2, 9), (10, 4), (1, 20), (25, 31)])
def test_mcnemar_p_is_the_binomial_sum(a_only, b_only):
    assert stats.mcnemar_p(a_only, b_only) == pytest.approx(direct_mcnemar_p(a_only, b_only), rel=1e-12, abs=1e-15)
    both = 7  # concordant pairs do not change the test
    a = [1] * a_only + [0] * b_only + [1] * both + [0] * both
    b = [0] * a_only + [1] * b_only + [1] * both + [0] * both
    if a:
        test = stats.paired_binary(a, b)
        assert test.p == pytest.approx(direct_mcnemar_p(a_only, b_only), rel=1e-12, abs=1e-15)
        assert test.discordant == (a_only, b_only) and test.diff == pytest.approx((b_only - a_only) / len(a))


def test_rejection_bound_matches_binomtest():
    for m in range(0, 61):
        k = int(stats.rejection_bound(np.array([m]))[0])
        rejected = [c for c in range(m + 1) if direct_mcnemar_p(m - c, c) <= 0.05]
        assert rejected == [c for c in range(m + 1) if min(c, m - c) <= k], m


@pytest.mark.parametrize("n,discordance,diff", [(48, 0.3, 0.1), (48, 0.2, 0.2), (30, 0.5, -0.2), (100, 0.1, 0.05)])
def test_power_is_the_enumerated_sum(n, discordance, diff):
    assert stats.mcnemar_power(n, discordance, diff) == pytest.approx(direct_power(n, discordance, diff), abs=1e-9)


@pytest.mark.parametrize("n,discordance", [(48, 0.0), (48, 0.25), (200, 0.1)])
def test_detectable_difference_is_where_power_reaches_80_percent(n, discordance):
    found = stats.detectable_binary(n, discordance)
    assert 0 < found < 1

    def power(delta):
        return direct_power(n, max(discordance, delta), delta)

    assert power(found + 1e-6) >= 0.8 - 1e-6 and power(found - 0.003) < 0.8
    # the normal approximation (Connor 1987) agrees roughly: n d^2 = (z_a sqrt(psi) + z_b sqrt(psi - d^2))^2
    psi = max(discordance, found)
    z_a, z_b = 1.959964, 0.841621
    assert math.sqrt(n) * found == pytest.approx(z_a * math.sqrt(psi) + z_b * math.sqrt(psi - found**2), rel=0.2)


def test_too_few_examples_can_detect_nothing():
    assert stats.detectable_binary(5, 0.0) is None  # 5 discordant pairs one way give p = 0.0625
    assert stats.detectable_binary(6, 0.0) is not None


def test_bonett_price_interval_covers_95_percent():
    rng = np.random.default_rng(7)
    n, p_a_only, p_b_only = 60, 0.10, 0.22
    truth = p_b_only - p_a_only
    counts = rng.multinomial(n, [p_a_only, p_b_only, 1 - p_a_only - p_b_only], size=4000)
    covered = [low <= truth <= high for low, high in (stats.bonett_price_interval(int(a), int(b), n) for a, b, _ in counts)]
    assert 0.93 <= np.mean(covered) <= 0.97
    # the formula, written out
    a, b = 5, 12
    pa, pb = 6 / (n + 2), 13 / (n + 2)
    half = 1.959964 * math.sqrt((pa + pb - (pb - pa) ** 2) / (n + 2))
    assert stats.bonett_price_interval(a, b, n) == pytest.approx((pb - pa - half, pb - pa + half), abs=1e-6)


def hand_bca(diffs: np.ndarray, seed: int, resamples: int, alpha: float = 0.05) -> tuple[float, float, np.ndarray]:
    """BCa interval of the mean difference (Efron & Tibshirani 14.3) on rng.integers(0, n, (B, n)) draws."""
    n = len(diffs)
    index = np.random.default_rng(seed).integers(0, n, (resamples, n))
    boot = diffs[index].mean(axis=1)
    observed = diffs.mean()
    z0 = ndtri(((boot < observed).sum() + (boot <= observed).sum()) / (2 * resamples))
    jack = np.array([np.delete(diffs, i).mean() for i in range(n)])
    u = (n - 1) * (jack.mean() - jack)
    accel = (np.sum(u**3) / n**3) / (6 * (np.sum(u**2) / n**2) ** 1.5)
    z = ndtri(alpha / 2)
    levels = [ndtr(z0 + (z0 + q) / (1 - accel * (z0 + q))) for q in (z, -z)]
    low, high = np.quantile(boot, levels)
    return float(low), float(high), boot


def test_bootstrap_interval_is_the_hand_rolled_bca():
    rng = np.random.default_rng(3)
    base = rng.random(40)
    cand = np.clip(base + rng.normal(0.06, 0.15, 40), 0, 1)
    test = stats.paired_resampled(base, cand)
    low, high, boot = hand_bca(cand - base, stats.SEED, stats.RESAMPLES)
    assert (test.low, test.high) == pytest.approx((low, high), abs=1e-12)
    assert test.diff == pytest.approx((cand - base).mean())
    # and near the normal-theory interval for a mean of 40 differences
    se = (cand - base).std(ddof=1) / math.sqrt(40)
    assert test.low == pytest.approx(test.diff - 1.96 * se, abs=0.4 * se) and test.high == pytest.approx(test.diff + 1.96 * se, abs=0.4 * se)
    assert test.detectable == pytest.approx((1.959964 + 0.841621) * boot.std(ddof=1), rel=1e-6)


def test_randomisation_p_is_exact_for_small_samples():
    rng = np.random.default_rng(11)
    base = rng.random(10)
    cand = base + rng.normal(0.1, 0.2, 10)
    test = stats.paired_resampled(base, cand)
    diffs = cand - base
    observed = diffs.mean()
    null = np.array([np.mean(np.array(signs) * diffs) for signs in itertools.product((1, -1), repeat=10)])
    tol = 100 * np.finfo(float).eps * abs(observed)
    expected = min(1.0, 2 * min(np.mean(null <= observed + tol), np.mean(null >= observed - tol)))
    assert test.p == pytest.approx(expected, abs=1e-12)


def test_identical_scores_give_no_interval_width_and_p_1():
    scores = [0.2, 0.5, 1.0, 0.0]
    test = stats.paired_resampled(scores, scores)
    assert test.identical and (test.low, test.high, test.p) == (0.0, 0.0, 1.0) and test.detectable is None
    binary = stats.paired_binary([1, 0, 1, 1, 0, 1, 0, 0], [1, 0, 1, 1, 0, 1, 0, 0])
    assert binary.identical and binary.p == 1.0 and binary.low < 0 < binary.high


def test_corpus_scores_from_summed_statistics_equal_the_metric_modules():
    refs = ["the cat sat on the mat", "hello world", "a b c d e", "rain will fall tomorrow"]
    hyps = ["the cat sat mat", "hello there world", "", "rain will fall tomorrow"]
    rates = load_metric("error_rate").compute(predictions=hyps, references=refs)
    for name in ("wer", "cer"):
        summed = np.sum(rates[f"{name}_stats"], axis=0)
        assert float(CORPUS_SCORES[name](np.asarray(summed, float))) == pytest.approx(rates[name], abs=1e-12)
    french = load_metric("translation").compute(predictions=hyps, references=[[r] for r in refs])
    for name in ("bleu", "chrf"):
        summed = np.sum(french[f"{name}_stats"], axis=0)
        assert float(CORPUS_SCORES[name](np.asarray(summed, float))) == pytest.approx(french[name], abs=1e-9)
    # a corpus test resamples whole examples: B better on every sentence gives a positive interval
    better = load_metric("error_rate").compute(predictions=refs, references=refs)
    test = stats.paired_resampled(np.asarray(rates["wer_stats"], float), np.asarray(better["wer_stats"], float), CORPUS_SCORES["wer"], kind="corpus")
    assert test.diff == pytest.approx(-rates["wer"]) and test.high <= 0


def test_median_ratio_is_the_hand_rolled_percentile_bootstrap():
    base = np.array([10.0, 11.0, 12.0, 10.5, 11.2])
    cand = np.array([7.0, 7.5, 8.0, 7.2, 7.7, 7.4])
    found = stats.median_ratio(base, cand)
    rng = np.random.default_rng(stats.SEED)
    draws_b = cand[rng.integers(0, len(cand), (stats.RESAMPLES, len(cand)))]  # scipy draws its samples in order
    draws_a = base[rng.integers(0, len(base), (stats.RESAMPLES, len(base)))]
    low, high = np.quantile(np.median(draws_b, axis=1) / np.median(draws_a, axis=1), [0.025, 0.975])
    assert found.ratio == pytest.approx(np.median(cand) / np.median(base))
    assert (found.low, found.high) == pytest.approx((low, high), abs=1e-12)
    assert stats.median_ratio([10.0], [7.0]).low is None  # one repeat: no interval


def test_holm_on_a_worked_example():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5]) == [0.5] and stats.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])
