"""95 % intervals over architectures whose coverage a simulation measures (tests/study/test_intervals.py).

A study holds 6-8 architectures with 3-5 seeds each, and its seeds mostly agree: the
architectures, not the trials, are the independent units, and there are few of them. The
percentile cluster bootstrap used before ignores that a handful of units under-states the
spread: in the simulation of tests/study/test_intervals.py its coverage of a success rate at
nominal 95 % had a median of 83 % (27 % where successes are rare), and it read 0/24 as
`0.00 [0.00, 0.00]`. Here, every function works along the last axis, so the coverage test can
pass thousands of simulated studies in one call (docs/statistics.md gives the figures):

- `mean_interval`: a continuous quantity (a score, a paired difference of scores, a gain over
  training): the t-interval over the units' means (Student, k - 1 degrees of freedom), as
  scipy.stats.ttest_1samp's confidence_interval computes it.
- `rate_interval`: a success rate: Clopper-Pearson at the cluster-effective sample size with the
  degrees-of-freedom correction of Korn & Graubard (1998, "Confidence intervals for proportions
  with small expected number of positive counts estimated from survey data", Survey
  Methodology 24(2)): n_eff = p(1 - p) / var(p), var(p) from the spread of the architectures'
  shares, kept between the number of architectures (every seed of an architecture agreeing, the
  largest design effect there can be) and the number of trials (seeds independent), then scaled
  by (z / t_{k-1})^2. At 0/n or n/n the spread says nothing about how much the seeds agree, so the
  architectures count as the sample: 0 successes in 8 architectures x 3 seeds reads [0, 0.49],
  never a zero-width interval. With a single architecture the seeds are the units and the interval is
  the exact Clopper-Pearson one on them.
- `rate_difference_interval`: the difference of two paired success rates (a primary comparison at
  a threshold): Zou & Donner's MOVER (2008, "Construction of confidence limits about effect
  measures: a general approach", Stat Med 27) from the two `rate_interval`s and the correlation
  of the architectures' shares.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def mean_interval(units, confidence: float = CONFIDENCE):
    """(mean, low, high) along the last axis: the t-interval of the mean of independent units;
    NaN bounds under two units, and the mean itself where the units do not vary."""
    u = np.asarray(units, dtype=float)
    k = u.shape[-1]
    mean = u.mean(axis=-1) if k else np.full(u.shape[:-1], np.nan)
    if k < 2:
        nan = np.full(np.shape(mean), np.nan)
        return mean, nan, nan
    half = stats.t.ppf(0.5 + confidence / 2, k - 1) * u.std(axis=-1, ddof=1) / np.sqrt(k)
    return mean, mean - half, mean + half


def _clopper_pearson(x, n, confidence: float):
    """Exact binomial bounds for x successes in n trials, x and n real (an effective count)."""
    alpha = 1 - confidence
    x, n = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(n, dtype=float))
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(x > 0, stats.beta.ppf(alpha / 2, np.maximum(x, 1e-300), n - x + 1), 0.0)
        high = np.where(x < n, stats.beta.ppf(1 - alpha / 2, x + 1, np.maximum(n - x, 1e-300)), 1.0)
    return low, high


def effective_trials(shares, trials, confidence: float = CONFIDENCE):
    """The Korn-Graubard effective sample size behind `rate_interval` (see the module text)."""
    s = np.asarray(shares, dtype=float)
    k = s.shape[-1]
    p = s.mean(axis=-1)
    var = s.var(axis=-1, ddof=1) / k
    trials = np.asarray(trials, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = np.where((p <= 0) | (p >= 1), k, np.where(var > 0, p * (1 - p) / var, trials))
    n_eff = np.clip(n_eff, k, np.maximum(trials, k))
    z, t = stats.norm.ppf(0.5 + confidence / 2), stats.t.ppf(0.5 + confidence / 2, k - 1)
    return p, n_eff * (z / t) ** 2


def rate_interval(shares, trials, confidence: float = CONFIDENCE):
    """(rate, low, high) along the last axis. shares: each unit's success share (an
    architecture's successes over its seeds, or one seed's 0 / 1); trials: how many trials
    those units hold together (equal to the number of units when each unit is one trial)."""
    s = np.asarray(shares, dtype=float)
    k = s.shape[-1]
    if k == 0:
        nan = np.full(s.shape[:-1], np.nan)
        return nan, nan, nan
    trials = np.asarray(trials, dtype=float)
    if k < 2 or np.all(trials <= k):     # each unit one trial (or a single unit): the exact interval
        p, n = s.mean(axis=-1), np.broadcast_to(np.maximum(trials, k), s.shape[:-1]).astype(float)
        return (p, *_clopper_pearson(p * n, n, confidence))
    p, n_eff = effective_trials(s, trials, confidence)
    return (p, *_clopper_pearson(p * n_eff, n_eff, confidence))


def rate_difference_interval(shares_a, shares_b, trials, confidence: float = CONFIDENCE):
    """(a - b, low, high) for paired success rates: shares_a[..., i] and shares_b[..., i] are
    the same unit's (architecture's) shares under the two objectives; MOVER combines each rate's
    own interval with the correlation of the units' shares (0 where either does not vary)."""
    a, b = np.asarray(shares_a, dtype=float), np.asarray(shares_b, dtype=float)
    pa, la, ua = rate_interval(a, trials, confidence)
    pb, lb, ub = rate_interval(b, trials, confidence)
    ca, cb = a - a.mean(axis=-1, keepdims=True), b - b.mean(axis=-1, keepdims=True)
    scale = np.sqrt((ca ** 2).sum(axis=-1) * (cb ** 2).sum(axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(scale > 0, (ca * cb).sum(axis=-1) / scale, 0.0)
    d = pa - pb
    low = d - np.sqrt(np.maximum((pa - la) ** 2 + (ub - pb) ** 2 - 2 * r * (pa - la) * (ub - pb), 0.0))
    high = d + np.sqrt(np.maximum((ua - pa) ** 2 + (pb - lb) ** 2 - 2 * r * (ua - pa) * (pb - lb), 0.0))
    return d, low, high
