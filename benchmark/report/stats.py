"""The report's statistics: small pure functions, unit-agnostic (callers pick fractions or points).

* :func:`mean_interval` -- mean and two-sided 95% Student-t interval (n - 1 df) of one
  sample, with the one-sample t test of "mean = 0";
* :func:`paired_difference` -- the same on ``a[seed] - b[seed]`` over the seeds both have;
* :func:`mark_tied` -- every entry's paired difference to the entry with the best mean, and
  whether it is statistically tied with it (its interval contains 0);
* :func:`slope_interval` -- least-squares slope of ``y`` on ``x`` with the 95% interval
  ``slope +/- t(0.975, n - 2) * stderr`` (scipy.stats.linregress);
* :func:`bootstrap_interval` -- 95% percentile bootstrap of a statistic over seeds;
* :func:`trend_verdict` -- reproduced / not reproduced / inconclusive from an interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95
ALPHA = 1 - LEVEL
EQUIVALENCE_BAND = 0.5  # points: |effect| this small counts as "no effect" (trend verdicts)
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval (NaN when undefined) and the test of 0."""

    mean: float
    low: float
    high: float
    n: int
    p_value: float = math.nan

    @property
    def defined(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


NAN_ESTIMATE = Estimate(math.nan, math.nan, math.nan, 0)


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    return a[np.isfinite(a)]


def t_quantile(df: int) -> float:
    """The two-sided 95% Student-t quantile t(0.975, df)."""
    return float(stats.t.ppf(1 - ALPHA / 2, df))


def ci95_halfwidth(values: Sequence[float] | np.ndarray) -> float:
    """Half-width of the two-sided 95% t-interval of the mean; 0 for fewer than two values."""
    a = _finite(values)
    if len(a) < 2:
        return 0.0
    return t_quantile(len(a) - 1) * float(a.std(ddof=1)) / math.sqrt(len(a))


def seeds_for_halfwidth(sd: float, target: float, *, most: int = 1000) -> int | None:
    """The fewest seeds n >= 2 whose t interval t(0.975, n - 1) * sd / sqrt(n) is at most
    ``target``, for a spread ``sd`` between seeds; None beyond ``most``."""
    if not math.isfinite(sd):
        return None
    for n in range(2, most + 1):
        if t_quantile(n - 1) * sd / math.sqrt(n) <= target:
            return n
    return None


def t_interval(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(low, high) of the 95% t-interval (a point for one value); seaborn's ``errorbar=``."""
    a = _finite(values)
    if len(a) == 0:
        return (math.nan, math.nan)
    m, h = float(a.mean()), ci95_halfwidth(a)
    return (m - h, m + h)


def mean_interval(values: Sequence[float] | np.ndarray) -> Estimate:
    """Mean, 95% t interval and two-sided one-sample t test p-value of "mean = 0".

    Fewer than two values: interval and p undefined (NaN). No spread: the interval is the
    point, p = 1 for a mean of exactly 0 and 0 otherwise.
    """
    a = _finite(values)
    n = len(a)
    if n == 0:
        return NAN_ESTIMATE
    m = float(a.mean())
    if n < 2:
        return Estimate(m, math.nan, math.nan, n)
    se = float(a.std(ddof=1)) / math.sqrt(n)
    if se == 0.0:
        return Estimate(m, m, m, n, 1.0 if m == 0.0 else 0.0)
    h = t_quantile(n - 1) * se
    p = float(2 * stats.t.sf(abs(m / se), n - 1))
    return Estimate(m, m - h, m + h, n, p)


def paired_difference(a: Mapping[int, float], b: Mapping[int, float]) -> Estimate:
    """``a - b`` paired by seed: the seeds present (and finite) in both, nothing else."""
    seeds = sorted(s for s in a if s in b and math.isfinite(a[s]) and math.isfinite(b[s]))
    return mean_interval([a[s] - b[s] for s in seeds])


@dataclass(frozen=True)
class Comparison:
    """One entry against the best entry of its group."""

    entry: object
    mean: float
    diff: Estimate
    is_best: bool
    tied: bool


def mark_tied(entries: Mapping[object, Mapping[int, float]]) -> list[Comparison]:
    """Compare every entry (``name -> {seed: value}``) with the one of highest mean.

    ``tied`` holds when the paired 95% interval of ``entry - best`` contains 0, which for
    the t interval is the paired t test at 0.05 not rejecting; with fewer than two shared
    seeds no test is possible and the entry is not separated from the best (tied). Ties
    for the best mean go to the first entry given. Sorted by mean, best first.
    """
    means = {k: float(np.mean(_finite(list(v.values())))) for k, v in entries.items() if v}
    means = {k: m for k, m in means.items() if math.isfinite(m)}
    if not means:
        return []
    best = max(means, key=lambda k: means[k])  # first of equal maxima: dicts keep order
    out = []
    for k in sorted(means, key=lambda k: -means[k]):
        if k == best:
            out.append(
                Comparison(k, means[k], Estimate(0.0, 0.0, 0.0, len(entries[k])), True, True)
            )
            continue
        d = paired_difference(entries[k], entries[best])
        out.append(Comparison(k, means[k], d, False, not d.defined or d.contains(0.0)))
    return out


def slope_interval(x: Sequence[float], y: Sequence[float]) -> Estimate:
    """Slope of the least-squares line of ``y`` on ``x`` with ``slope +/- t(n-2) * stderr``.

    Needs two distinct x values; the interval needs n >= 3 points (NaN otherwise).
    """
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[ok], ya[ok]
    if len(np.unique(xa)) < 2:
        return Estimate(math.nan, math.nan, math.nan, len(xa))
    fit = stats.linregress(xa, ya)
    n = len(xa)
    if n < 3:
        return Estimate(float(fit.slope), math.nan, math.nan, n)
    h = t_quantile(n - 2) * float(fit.stderr)
    return Estimate(float(fit.slope), fit.slope - h, fit.slope + h, n, float(fit.pvalue))


def bootstrap_interval(
    data: np.ndarray,
    statistic: Callable[[np.ndarray], float],
    n_boot: int = 4000,
    seed: int = 0,
) -> Estimate:
    """95% percentile bootstrap: resample the rows (seeds) of ``data`` with replacement.

    ``statistic(data)`` is the point estimate; the generator is seeded so the report is
    reproducible. Fewer than two rows: interval undefined.
    """
    data = np.asarray(data, dtype=float)
    n = len(data)
    point = float(statistic(data)) if n else math.nan
    if n < 2:
        return Estimate(point, math.nan, math.nan, n)
    rng = np.random.default_rng(seed)
    draws = np.array([statistic(data[rng.integers(0, n, n)]) for _ in range(n_boot)])
    low, high = np.quantile(draws, [ALPHA / 2, 1 - ALPHA / 2])
    return Estimate(point, float(low), float(high), n)


def trend_verdict(
    low: float, high: float, direction: int = 1, band: float = EQUIVALENCE_BAND
) -> str:
    """The verdict on a published trend from the 95% interval of its effect.

    ``direction`` is the sign the paper claims (+1: the effect is positive). Reproduced: the
    interval excludes 0 on the claimed side. Not reproduced: it excludes 0 on the other
    side, or lies entirely inside the practical-equivalence band [-band, +band]. Otherwise
    (or with no interval): inconclusive.
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        return INCONCLUSIVE
    lo, hi = (low, high) if direction > 0 else (-high, -low)
    if lo > 0:
        return REPRODUCED
    if hi < 0 or (lo >= -band and hi <= band):
        return NOT_REPRODUCED
    return INCONCLUSIVE
