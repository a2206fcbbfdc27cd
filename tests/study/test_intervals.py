"""Coverage of the report's 95 % intervals, measured by simulation on clustered data shaped like
the studies: 6 or 8 architectures, 3 or 5 seeds each, an architecture effect shared by its seeds
(from none to one that decides nearly every seed), binary outcomes (success at a threshold) and
continuous ones (a score). Every simulated study is drawn with a fixed seed, so the figures are
the same on every run; the full grid is `slow`, a small twin of it runs in the fast tier.

The figures docs/statistics.md quotes come from
    .venv/bin/python tests/study/test_intervals.py
which prints the full grid (and, for comparison, the percentile cluster bootstrap used before).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

from harness.study.intervals import mean_interval, rate_difference_interval, rate_interval

NOMINAL, REQUIRED = 0.95, 0.93
SIZES = [(6, 3), (6, 5), (8, 3), (8, 5)]          # (architectures, seeds): the committed studies' shapes
SIGMAS = (0.0, 1.0, 3.0)                          # sd of the architecture effect on the logit scale
MUS = (-4.0, -2.5, -1.0, 0.0, 2.5)                # logit of a typical architecture's rate: 2 % .. 92 %
TAUS = (0.3, 1.0, 3.0)                            # sd of the architecture effect against a seed sd of 1
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(80)


def population_rate(mu: float, sigma: float) -> float:
    """E[expit(mu + sigma Z)]: the rate over the space of architectures, what the interval is for."""
    return float((expit(mu + sigma * _NODES) * _WEIGHTS).sum() / _WEIGHTS.sum())


def binary_studies(k, m, mu, sigma, reps, rng):
    """(reps x k) architecture success shares over m seeds each."""
    p = expit(mu + sigma * rng.standard_normal((reps, k)))
    return rng.binomial(m, p) / m


def coverage_binary(k, m, mu, sigma, reps, seed=0) -> float:
    rng = np.random.default_rng(seed)
    shares = binary_studies(k, m, mu, sigma, reps, rng)
    _, low, high = rate_interval(shares, k * m)
    truth = population_rate(mu, sigma)
    return float(np.mean((low <= truth) & (truth <= high)))


def coverage_continuous(k, m, tau, reps, seed=0, shape="normal") -> float:
    """Scores: an architecture effect (normal, or a skewed / two-cluster one for the record)
    plus seed noise of sd 1; the interval is for the mean over the space of architectures."""
    rng = np.random.default_rng(seed)
    effect, truth = {"normal": lambda: (rng.standard_normal((reps, k)), 0.0),
                     "gamma2": lambda: (rng.gamma(2.0, 1.0, (reps, k)), 2.0),
                     "two clusters 50/50": lambda: (np.where(rng.random((reps, k)) < 0.5, 0.0, 3.0), 1.5),
                     "two clusters 25/75": lambda: (np.where(rng.random((reps, k)) < 0.25, 0.0, 3.0), 2.25)}[shape]()
    scores = tau * effect[..., None] + rng.standard_normal((reps, k, m))
    _, low, high = mean_interval(scores.mean(axis=-1))
    return float(np.mean((low <= tau * truth) & (tau * truth <= high)))


def coverage_difference(k, m, mu_a, mu_b, sigma, rho, reps, seed=0) -> float:
    """Paired success rates: objective b's architecture effect correlates rho with a's."""
    rng = np.random.default_rng(seed)
    z, z2 = rng.standard_normal((reps, k)), rng.standard_normal((reps, k))
    sa = rng.binomial(m, expit(mu_a + sigma * z)) / m
    sb = rng.binomial(m, expit(mu_b + sigma * (rho * z + np.sqrt(1 - rho ** 2) * z2))) / m
    xa, xb = _NODES[:, None], _NODES[None, :]
    w = _WEIGHTS[:, None] * _WEIGHTS[None, :]
    truth = float(((expit(mu_a + sigma * xa) - expit(mu_b + sigma * (rho * xa + np.sqrt(1 - rho ** 2) * xb)))
                   * w).sum() / w.sum())
    _, low, high = rate_difference_interval(sa, sb, k * m)
    return float(np.mean((low <= truth + 1e-12) & (truth - 1e-12 <= high)))


def coverage_percentile_bootstrap(k, m, mu, sigma, reps, seed=0) -> float:
    """The interval used before: scipy's percentile bootstrap over the architectures' shares."""
    rng = np.random.default_rng(seed)
    shares = binary_studies(k, m, mu, sigma, reps, rng)
    ci = stats.bootstrap((shares,), np.mean, axis=-1, vectorized=True, n_resamples=999, method="percentile",
                         rng=np.random.default_rng(0)).confidence_interval
    low, high = np.nan_to_num(ci.low, nan=shares.mean(-1)), np.nan_to_num(ci.high, nan=shares.mean(-1))
    truth = population_rate(mu, sigma)
    return float(np.mean((low <= truth) & (truth <= high)))


DIFFERENCES = [(-3, -3), (-1, 0), (0, 0), (1, 3), (-3, 0)]


def full_grid(reps: int = 2000):
    """Every scenario's coverage: (outcome, scenario text, coverage)."""
    out = []
    for (k, m), sigma, mu in itertools.product(SIZES, SIGMAS, MUS):
        out.append(("success rate", f"k={k} m={m} sigma={sigma:g} rate={population_rate(mu, sigma):.3f}",
                    coverage_binary(k, m, mu, sigma, reps)))
    for (k, m), tau in itertools.product(SIZES, TAUS):
        out.append(("score (normal architecture effects)", f"k={k} m={m} tau={tau:g}",
                    coverage_continuous(k, m, tau, reps)))
    for (k, m), sigma, rho, (mu_a, mu_b) in itertools.product(SIZES, SIGMAS, (0.0, 0.7), DIFFERENCES):
        out.append(("difference of paired rates", f"k={k} m={m} sigma={sigma:g} rho={rho:g} logits {mu_a:g}/{mu_b:g}",
                    coverage_difference(k, m, mu_a, mu_b, sigma, rho, reps)))
    return out


def test_the_intervals_cover_on_a_small_grid():
    """The fast twin: a few of the full grid's hardest scenarios, 400 studies each."""
    for k, m, mu, sigma in [(6, 3, -4.0, 3.0), (8, 5, -2.5, 3.0), (8, 5, 0.0, 1.0), (6, 5, 2.5, 0.0)]:
        assert coverage_binary(k, m, mu, sigma, 400) >= REQUIRED, (k, m, mu, sigma)
    for k, m, tau in [(6, 3, 3.0), (8, 5, 0.3)]:
        assert coverage_continuous(k, m, tau, 400) >= REQUIRED, (k, m, tau)
    assert coverage_difference(8, 3, -1, 0, 3.0, 0.7, 400) >= REQUIRED


def test_the_simulation_can_see_an_interval_that_does_not_cover():
    """The same simulation on the t-interval over architecture shares at a low rate (zero-width
    at 0/n), the failure this module replaced: it must read well below 93 %."""
    rng = np.random.default_rng(0)
    shares = binary_studies(8, 3, -4.0, 0.0, 400, rng)
    _, low, high = mean_interval(shares)
    truth = population_rate(-4.0, 0.0)
    assert np.mean((low <= truth) & (truth <= high)) < 0.6


def test_a_rate_interval_is_never_zero_width_and_the_architectures_bound_it():
    for k, m in SIZES:
        _, low, high = rate_interval(np.zeros(k), k * m)
        assert low == 0.0 and high > 0.2                     # at most k independent units behind 0/n
        _, low1, high1 = rate_interval(np.ones(k), k * m)
        assert high1 == 1.0 and low1 == pytest.approx(1 - high)
    # seeds that disagree within every architecture carry more information than all-or-nothing ones
    _, lo_mixed, hi_mixed = rate_interval(np.full(8, 0.5), 40)
    _, lo_clustered, hi_clustered = rate_interval(np.array([1.0, 0.0] * 4), 40)
    assert hi_mixed - lo_mixed < hi_clustered - lo_clustered


@pytest.mark.slow
def test_the_intervals_cover_on_the_full_grid():
    """Every scenario of the grid, 2,000 simulated studies each: at least 93 % at nominal 95 %."""
    low = [(what, scenario, c) for what, scenario, c in full_grid() if c < REQUIRED]
    assert not low, low


if __name__ == "__main__":
    rows = full_grid()
    for what in dict.fromkeys(r[0] for r in rows):
        cov = [c for w, _, c in rows if w == what]
        worst = min((c, s) for w, s, c in rows if w == what)
        print(f"{what}: {len(cov)} scenarios x 2,000 studies; coverage min {min(cov):.3f} ({worst[1]}), "
              f"median {np.median(cov):.3f}, max {max(cov):.3f}")
    for shape in ("gamma2", "two clusters 50/50", "two clusters 25/75"):
        cov = [coverage_continuous(k, m, tau, 2000, shape=shape) for (k, m), tau in itertools.product(SIZES, TAUS)]
        print(f"score ({shape} architecture effects, not asserted): min {min(cov):.3f}, median {np.median(cov):.3f}")
    old = [coverage_percentile_bootstrap(k, m, mu, sigma, 500)
           for (k, m), sigma, mu in itertools.product(SIZES, SIGMAS, MUS)]
    print(f"success rate, the percentile cluster bootstrap used before (500 studies each): min {min(old):.3f}, "
          f"median {np.median(old):.3f}")
