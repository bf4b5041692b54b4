"""prosv.stats: bootstrap intervals, paired comparisons, three-valued verdicts, power."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from prosv import stats as S


def test_bootstrap_ci_contains_mean_and_is_seeded():
    rng = np.random.default_rng(1)
    values = rng.uniform(0, 2, size=200)
    a = S.bootstrap_ci(values, seed=3)
    b = S.bootstrap_ci(values, seed=3)
    c = S.bootstrap_ci(values, seed=4)
    assert a == b and a != c
    assert a["mean"] == pytest.approx(values.mean()) and a["n"] == 200
    assert a["ci_low"] < a["mean"] < a["ci_high"]
    # width close to the normal approximation 2 * 1.96 * sd / sqrt(n)
    width = 2 * 1.96 * values.std(ddof=1) / math.sqrt(len(values))
    assert a["ci_high"] - a["ci_low"] == pytest.approx(width, rel=0.15)
    # higher confidence gives a wider interval; a constant sample gives a point
    wide = S.bootstrap_ci(values, seed=3, confidence=0.99)
    assert wide["ci_low"] <= a["ci_low"] and wide["ci_high"] >= a["ci_high"]
    assert S.bootstrap_ci([1.0, 1.0, 1.0]) == {"mean": 1.0, "ci_low": 1.0, "ci_high": 1.0, "n": 3}
    assert S.bootstrap_ci([])["n"] == 0


def concepts(n: int, seed: int = 0) -> pd.Index:
    return pd.Index(range(n), name="concept_id")


def test_clear_difference_gives_the_right_verdict_and_sign():
    rng = np.random.default_rng(0)
    idx = concepts(30)
    base = pd.Series(rng.normal(1.0, 0.3, 30), index=idx)
    better = base + 0.4 + pd.Series(rng.normal(0, 0.05, 30), index=idx)
    comp = S.paired_comparison(better, base, seed=1)
    assert comp.difference == pytest.approx((better - base).mean())
    assert comp.ci_low > 0 and comp.n == 30
    assert comp.verdict(paper_sign=+1) == S.HELD  # the paper says a > b
    assert comp.verdict(paper_sign=-1) == S.CONTRADICTED  # the paper says a < b
    flipped = S.paired_comparison(base, better, seed=1)
    assert flipped.ci_high < 0 and flipped.verdict(+1) == S.CONTRADICTED and flipped.verdict(-1) == S.HELD


def test_overlapping_data_is_inconclusive():
    rng = np.random.default_rng(2)
    idx = concepts(12)
    a = pd.Series(rng.normal(1.0, 0.5, 12), index=idx)
    b = pd.Series(rng.normal(1.0, 0.5, 12), index=idx)
    comp = S.paired_comparison(a, b, seed=0)
    assert comp.ci_low < 0 < comp.ci_high
    assert comp.verdict(+1) == comp.verdict(-1) == S.INCONCLUSIVE
    # the design's sensitivity: what 80% power detects, and the concepts the observed difference needs
    assert comp.detectable == pytest.approx((norm.ppf(0.975) + norm.ppf(0.8)) * comp.sd / math.sqrt(12))
    assert comp.concepts_needed > 12


def test_pairing_uses_only_concepts_on_both_sides_and_constants():
    a = pd.Series([1.0, 2.0, 3.0, 4.0], index=[0, 1, 2, 3])
    b = pd.Series([0.5, 1.5, np.nan], index=[1, 2, 9])
    comp = S.paired_comparison(a, b, n_boot=200)
    assert comp.n == 2 and comp.difference == pytest.approx(1.5)  # concepts 1 and 2: 2 - 0.5, 3 - 1.5
    against = S.paired_comparison(a, 0.96, n_boot=200)  # a threshold on the other side
    assert against.difference == pytest.approx(a.mean() - 0.96) and against.n == 4
    with pytest.raises(ValueError, match="one row per concept"):
        S.paired_comparison(pd.Series([1.0, 2.0], index=[0, 0]), b)
    empty = S.paired_comparison(a, pd.Series([1.0], index=[7]))
    assert empty.n == 0 and empty.verdict(+1) == S.NOT_MEASURED


def unpaired_interval(a: pd.Series, b: pd.Series, n_boot: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """The interval one gets by ignoring the pairing: each side resampled on its own."""
    rng = np.random.default_rng(seed)
    x, y = np.asarray(a, float), np.asarray(b, float)
    diffs = x[rng.integers(0, len(x), (n_boot, len(x)))].mean(1) - y[rng.integers(0, len(y), (n_boot, len(y)))].mean(1)
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    return float(lo), float(hi)


def test_paired_interval_is_narrower_than_unpaired_under_a_shared_effect():
    rng = np.random.default_rng(3)
    idx = concepts(20)
    shared = pd.Series(rng.normal(0, 1.0, 20), index=idx)  # how easy each concept is, for both methods
    a = shared + 0.3 + pd.Series(rng.normal(0, 0.1, 20), index=idx)
    b = shared + pd.Series(rng.normal(0, 0.1, 20), index=idx)
    paired = S.paired_comparison(a, b, seed=0)
    lo, hi = unpaired_interval(a, b, seed=0)
    assert (paired.ci_high - paired.ci_low) < (hi - lo) / 3
    assert paired.verdict(+1) == S.HELD and lo < 0 < hi  # ignoring the pairing would call it inconclusive


def test_detectable_difference_has_80_percent_power_on_normal_data():
    """Simulate the paired z-test the formula describes: at a true mean equal to the detectable
    difference, a two-sided 5% test rejects in about 80% of repeated experiments."""
    rng = np.random.default_rng(4)
    n, sd = 25, 0.6
    mde = S.detectable_difference(sd, n)
    samples = rng.normal(mde, sd, size=(20_000, n))
    z = samples.mean(axis=1) / (sd / math.sqrt(n))
    power = float((np.abs(z) > norm.ppf(0.975)).mean())
    assert power == pytest.approx(0.80, abs=0.015)
    # and the concepts needed for a difference invert it: n concepts detect exactly the mde
    assert S.units_needed(mde, sd) == n
    assert S.units_needed(mde / 2, sd) == math.ceil(4 * n * (1 - 1e-12))
    assert S.units_needed(0.0, sd) == math.inf


@pytest.mark.parametrize("correct, n", [(0, 10), (3, 10), (10, 10), (57, 300), (1, 1)])
def test_wilson_interval_is_the_score_test_inversion(correct, n):
    lo, hi = S.wilson_interval(correct, n)
    z = norm.ppf(0.975)
    p_hat = correct / n
    assert 0 <= lo <= p_hat <= hi <= 1
    # both ends solve (p_hat - p)^2 = z^2 p (1 - p) / n (where the interval does not stop at 0 or 1)
    for b in (lo, hi):
        if 0 < b < 1:
            assert (p_hat - b) ** 2 == pytest.approx(z * z * b * (1 - b) / n, rel=1e-9)
    if correct == 0:
        assert lo == 0 and hi == pytest.approx(z * z / (n + z * z))  # the closed form at zero successes
    # coverage by simulation: about 95% of draws at p = 0.2 hold p in their interval
    if (correct, n) == (57, 300):
        draws = np.random.default_rng(0).binomial(n, 0.2, size=4000)
        covered = np.mean([lo_ <= 0.2 <= hi_ for lo_, hi_ in (S.wilson_interval(k, n) for k in draws)])
        assert 0.93 <= covered <= 0.97


def test_wilson_interval_rejects_what_is_not_a_proportion():
    with pytest.raises(ValueError, match="11 correct out of 10"):
        S.wilson_interval(11, 10)
    assert all(math.isnan(x) for x in S.wilson_interval(0, 0))


def test_few_concepts_get_at_least_the_t_interval_and_its_coverage():
    """At 4 concepts the percentile bootstrap alone covers the true mean of normal differences far
    less than 95% of the time; the reported interval (never narrower than the paired t interval,
    a closed form) covers it at the nominal rate."""
    from scipy.stats import t as student_t

    rng = np.random.default_rng(11)
    boot_hits = hits = 0
    reps = 400
    for r in range(reps):
        d = pd.Series(rng.normal(0.3, 1.0, 4))
        comp = S.paired_comparison(d, 0.0, n_boot=1000, seed=r)
        half = student_t.ppf(0.975, 3) * d.std(ddof=1) / 2
        assert comp.ci_low <= d.mean() - half + 1e-12 and comp.ci_high >= d.mean() + half - 1e-12
        boot = S.bootstrap_ci(d.to_numpy(), n_boot=1000, seed=r)
        boot_hits += boot["ci_low"] <= 0.3 <= boot["ci_high"]
        hits += comp.ci_low <= 0.3 <= comp.ci_high
    assert boot_hits / reps < 0.88 and hits / reps > 0.92
    many = pd.Series(rng.normal(0.3, 1.0, 200))
    wide = S.paired_comparison(many, 0.0, n_boot=4000)
    plain = S.bootstrap_ci(many.to_numpy(), n_boot=4000)
    assert wide.ci_high - wide.ci_low == pytest.approx(plain["ci_high"] - plain["ci_low"], rel=0.1)
