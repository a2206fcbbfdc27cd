"""KL, reverse KL and JS between a 2D mixture and a generator, and the optimal D, by a KDE.

p_data is known exactly (data.mixture_modes: K equal Gaussians, isotropic std); p_g is a
Gaussian kernel density estimate (scipy.stats.gaussian_kde) of the generated points. The
expectations are Monte Carlo averages: over exact data points for E_p_data, over generated
points *not used to fit the KDE* for E_p_g (a point's own kernel would inflate log p_g there).

Bandwidth rule: gaussian_kde's kernel is the sample covariance times factor^2. Scott's rule
(factor n^(-1/6), 0.30 for 1,250 points) is far too wide for well-separated modes: on ring8
it gives a kernel std of about 0.4 against a mode std of 0.02, and a held-out log-likelihood
of -2.2 nats against 2.85 at the best factor. So the factor is chosen from
BANDWIDTH_FACTORS by the held-out log-likelihood of the generated points (likelihood
cross-validation), which needs no knowledge of p_data and adapts to a collapsed G (whose
covariance is tiny) as well as to a spread one.

All values in nats. JS uses the mixture M = (p_data + p_g) / 2 from both sets; pointwise
each of its terms is at most log 2, and the estimate is clipped to [0, log 2] (it can dip
below 0 only by sampling noise). The KLs are not clipped: with the exact p_data's thin
Gaussian tails (std 0.02 on ring8) a generated point 1 away from every mode costs over
1,000 nats, so KL(p_g || p_data) reads in the thousands until G finds the modes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

# Candidate kernel factors, a factor 2 apart: 0.5 (above Scott's rule, for a single blob) down to 0.002
# (a kernel 0.1x the mode std of a ring8 G spread like the data).
BANDWIDTH_FACTORS = tuple(2.0 ** -k for k in range(1, 10))
KDE_POINTS = 2000   # generated points fitting the KDE, and held out, at most each
BANDWIDTH_POINTS = 500   # held-out points that choose the factor: a third of the cost at 2,500 samples
LOG2 = math.log(2.0)


def mixture_logpdf(x: np.ndarray, centers: np.ndarray, std: float) -> np.ndarray:
    """log p_data(x) of the equal-weight isotropic Gaussian mixture, exactly (log-sum-exp)."""
    sq = ((x[:, None, :] - centers[None, :, :]) ** 2).sum(-1)         # n x K
    log_comp = -sq / (2 * std ** 2) - math.log(2 * math.pi * std ** 2)
    m = log_comp.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(log_comp - m).sum(axis=1, keepdims=True)))[:, 0] - math.log(len(centers))


def fit_kde(fit: np.ndarray, held: np.ndarray):
    """The KDE of `fit` (n x 2) with the factor that maximizes the mean log-likelihood of the
    first BANDWIDTH_POINTS of `held`."""
    from scipy.stats import gaussian_kde
    best, best_ll = None, -math.inf
    for factor in BANDWIDTH_FACTORS:
        kde = gaussian_kde(fit.T, bw_method=factor)
        ll = float(kde.logpdf(held[:BANDWIDTH_POINTS].T).mean())
        if ll > best_ll:
            best, best_ll = kde, ll
    return best


@dataclass
class Densities:
    """log p_data and log p_g at data points (`*_data`) and at held-out generated points (`*_gen`)."""
    log_p_data: np.ndarray
    log_g_data: np.ndarray
    log_p_gen: np.ndarray
    log_g_gen: np.ndarray
    factor: float
    data: np.ndarray
    gen: np.ndarray
    kde: object = None     # the fitted scipy.stats.gaussian_kde (p_g)

    def divergences(self) -> dict[str, float]:
        lm_data = np.logaddexp(self.log_p_data, self.log_g_data)     # log(2 M) at data points
        lm_gen = np.logaddexp(self.log_p_gen, self.log_g_gen)
        js = 0.5 * (LOG2 + self.log_p_data - lm_data).mean() + 0.5 * (LOG2 + self.log_g_gen - lm_gen).mean()
        return {"kl_data_gen_kde": float((self.log_p_data - self.log_g_data).mean()),
                "kl_gen_data_kde": float((self.log_g_gen - self.log_p_gen).mean()),
                "js_kde": float(min(max(js, 0.0), LOG2)),
                "kde_factor": float(self.factor)}

    def optimal_d(self) -> tuple[np.ndarray, np.ndarray]:
        """D*(x) = p_data / (p_data + p_g) (Goodfellow et al. 2014, Prop. 1) at data and generated points."""
        sig = lambda t: 1.0 / (1.0 + np.exp(-t))   # noqa: E731 - exp overflow gives 0, as it should
        with np.errstate(over="ignore"):
            return sig(self.log_p_data - self.log_g_data), sig(self.log_p_gen - self.log_g_gen)


def densities(gen: torch.Tensor, data: torch.Tensor, centers: torch.Tensor, std: float) -> Densities | None:
    """Fit p_g on the first half of the finite generated points (at most KDE_POINTS), hold out
    the rest; None when there are too few points or they span no area (a KDE needs a
    non-singular covariance: a G that outputs one point or one line)."""
    gen = gen[torch.isfinite(gen).all(dim=1)].double().numpy()
    half = min(len(gen) // 2, KDE_POINTS)
    if half < 3:
        return None
    fit, held = gen[:half], gen[half: 2 * half]
    try:
        kde = fit_kde(fit, held)
    except (np.linalg.LinAlgError, ValueError):
        return None
    if kde is None:
        return None
    x = data.double().numpy()
    c = centers.double().numpy()
    return Densities(mixture_logpdf(x, c, std), kde.logpdf(x.T), mixture_logpdf(held, c, std), kde.logpdf(held.T),
                     kde.factor, x, held, kde)


def d_gap(dens: Densities, critic) -> float:
    """Mean |D(x) - D*(x)|, the data points and the generated points weighted equally.
    critic: float tensor n x 2 -> D's probability that each point is real, shape (n,) or (n, 1)."""
    opt_data, opt_gen = dens.optimal_d()
    d_data = critic(torch.from_numpy(dens.data).float()).reshape(-1).double().numpy()
    d_gen = critic(torch.from_numpy(dens.gen).float()).reshape(-1).double().numpy()
    return float(0.5 * np.abs(d_data - opt_data).mean() + 0.5 * np.abs(d_gen - opt_gen).mean())
