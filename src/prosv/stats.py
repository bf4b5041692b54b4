"""Uncertainty: bootstrap intervals, paired comparisons over concepts, verdicts and power.

A comparison of two methods is paired: both are rated on the same concepts (and the same
instructions and sample seeds inside each concept), so the statistic is the per-concept difference
and its interval a **paired percentile bootstrap over concepts** (concepts resampled with
replacement, the mean difference recomputed each time), widened to the paired Student-t interval
where that is wider. With few concepts the percentile bootstrap is too narrow (at 4 concepts it
covered the true mean difference of normal data about 80% of the time, not 95%: tested), and the
default run's 4 evaluation concepts had one comparison "contradicted" in bf16 and "held" in fp32;
the t interval restores the coverage there, and the two agree once n is large. A claim then gets
one of three verdicts:
``held`` (the interval lies on the paper's side of zero), ``contradicted`` (on the other side) or
``inconclusive`` (it spans zero). For an inconclusive claim the design's sensitivity is reported too:
the smallest difference it could detect with 80% power in a two-sided 5% test, and the number of
concepts the observed difference would need, both from the normal approximation with the observed
spread of the per-concept differences.

Accuracies (k correct answers out of n) get a **Wilson score interval** instead: it stays inside
[0, 1] and is not empty at 0 or n correct, where the normal approximation collapses to a point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm
from scipy.stats import t as student_t

HELD, CONTRADICTED, INCONCLUSIVE, NOT_MEASURED = "held", "contradicted", "inconclusive", "not measured"
INTERVAL_KIND = "paired percentile bootstrap over concepts, widened to Student's t where that is wider"
DEFAULT_BOOT = 10_000


def _boot_means(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    n = len(x)
    means = np.empty(n_boot)
    chunk = max(1, 2_000_000 // n)  # bound memory for large n
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        means[start:stop] = x[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return means


def bootstrap_ci(
    values: Sequence[float] | np.ndarray | pd.Series,
    *,
    n_boot: int = DEFAULT_BOOT,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Mean with a percentile bootstrap confidence interval (values resampled with replacement,
    ``n_boot`` times, generator seeded with ``seed``). NaNs are dropped.

    Returns ``{'mean', 'ci_low', 'ci_high', 'n'}``.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": 0}
    means = _boot_means(x, n_boot, np.random.default_rng(seed))
    tail = (1 - confidence) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return {"mean": float(x.mean()), "ci_low": float(lo), "ci_high": float(hi), "n": len(x)}


def wilson_interval(correct, n, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion: every p for which a score test of ``correct``
    successes in ``n`` trials does not reject p at level 1 - ``confidence``. NaNs when n is 0."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    k, n = float(correct), float(n)
    if not n > 0 or not 0 <= k <= n:
        if n > 0:
            raise ValueError(f"wilson_interval: {k:g} correct out of {n:g} is not a proportion")
        return float("nan"), float("nan")
    z = norm.ppf(1 - (1 - confidence) / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # clipped, and never excluding p itself (at 0 or n correct rounding can leave it a hair outside)
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def detectable_difference(sd: float, n: int, power: float = 0.8, alpha: float = 0.05) -> float:
    """Smallest true mean difference a two-sided level-``alpha`` test over ``n`` paired units with
    per-unit spread ``sd`` detects with probability ``power`` (normal approximation)."""
    if n < 1 or not math.isfinite(sd):
        return float("nan")
    return (norm.ppf(1 - alpha / 2) + norm.ppf(power)) * sd / math.sqrt(n)


def units_needed(difference: float, sd: float, power: float = 0.8, alpha: float = 0.05) -> float:
    """Paired units (concepts) needed to detect ``difference`` with that power (normal approximation)."""
    if difference == 0 or not math.isfinite(difference) or not math.isfinite(sd):
        return float("inf")
    return float(max(1, math.ceil(((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * sd / abs(difference)) ** 2)))


@dataclass(frozen=True)
class Comparison:
    """A paired comparison over concepts: ``difference`` = mean of (a - b) per concept."""

    difference: float
    ci_low: float
    ci_high: float
    n: int
    sd: float  # spread of the per-concept differences
    detectable: float  # smallest difference this design detects with 80% power
    concepts_needed: float  # concepts the observed difference would need
    interval: str = INTERVAL_KIND
    confidence: float = 0.95

    def verdict(self, paper_sign: int = 1) -> str:
        """`held` when the interval lies on the paper's side of 0 (``paper_sign`` +1: a > b), `contradicted`
        when on the other side, `inconclusive` when it spans 0 (or nothing was measured)."""
        if self.n == 0 or math.isnan(self.ci_low):
            return NOT_MEASURED
        lo, hi = sorted((paper_sign * self.ci_low, paper_sign * self.ci_high))
        if lo > 0:
            return HELD
        if hi < 0:
            return CONTRADICTED
        return INCONCLUSIVE

    def as_dict(self) -> dict:
        return asdict(self)


def paired_comparison(
    a: pd.Series | float, b: pd.Series | float, *, n_boot: int = DEFAULT_BOOT, seed: int = 0, confidence: float = 0.95
) -> Comparison:
    """Compare ``a`` and ``b``, per-concept values indexed by concept (either may be a constant, such
    as a threshold). Only concepts present in both count; NaNs are dropped."""
    if not isinstance(a, pd.Series) and not isinstance(b, pd.Series):
        raise ValueError("paired_comparison needs per-concept values on at least one side")
    index = a.index if isinstance(a, pd.Series) else b.index
    a = a if isinstance(a, pd.Series) else pd.Series(float(a), index=index)
    b = b if isinstance(b, pd.Series) else pd.Series(float(b), index=index)
    if a.index.has_duplicates or b.index.has_duplicates:
        raise ValueError("per-concept values must have one row per concept")
    d = (a.astype(float) - b.reindex(a.index).astype(float)).dropna()
    if d.empty:
        nan = float("nan")
        return Comparison(nan, nan, nan, 0, nan, nan, nan, confidence=confidence)
    ci = bootstrap_ci(d.to_numpy(), n_boot=n_boot, seed=seed, confidence=confidence)
    sd = float(d.std(ddof=1)) if len(d) > 1 else float("nan")
    lo, hi = ci["ci_low"], ci["ci_high"]
    if len(d) > 1:  # few concepts: the percentile bootstrap under-covers; never narrower than t
        half = float(student_t.ppf(1 - (1 - confidence) / 2, len(d) - 1)) * sd / math.sqrt(len(d))
        lo, hi = min(lo, ci["mean"] - half), max(hi, ci["mean"] + half)
    return Comparison(
        ci["mean"],
        lo,
        hi,
        ci["n"],
        sd,
        detectable_difference(sd, len(d)),
        units_needed(ci["mean"], sd),
        confidence=confidence,
    )
