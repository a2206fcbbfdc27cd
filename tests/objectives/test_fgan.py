"""f-GAN objectives: losses by hand, and the variational bound at the optimal critic equals the
true f-divergence between two 1D Gaussians (numerical integration with scipy)."""
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from harness.objectives import get_objective

P, Q = stats.norm(0.0, 1.0), stats.norm(0.7, 1.3)

# f(u) of each divergence and the optimal variational function T*(x) = f'(p(x)/q(x)), with
# g_f's inverse to turn T* into the D output v* the losses take.
CASES = {
    "fgan-kl": (lambda u: u * np.log(u), lambda u: 1 + np.log(u), lambda t: t),
    "fgan-reverse-kl": (lambda u: -np.log(u), lambda u: -1 / u, lambda t: -np.log(-t)),
    "fgan-pearson": (lambda u: (u - 1) ** 2, lambda u: 2 * (u - 1), lambda t: t),
    "fgan-hellinger": (lambda u: (np.sqrt(u) - 1) ** 2, lambda u: 1 - 1 / np.sqrt(u), lambda t: -np.log(1 - t)),
    "fgan-js": (lambda u: u * np.log(u) - (u + 1) * np.log((u + 1) / 2), lambda u: np.log(2 * u / (u + 1)),
                lambda t: -np.log(2 * np.exp(-t) - 1)),
}


def true_divergence(f) -> float:
    return integrate.quad(lambda x: Q.pdf(x) * f(P.pdf(x) / Q.pdf(x)), -12, 12, limit=200)[0]


def stratified(dist, n=200_000) -> np.ndarray:
    """n samples of dist by its inverse CDF on an even grid: Monte Carlo without the noise."""
    return dist.ppf((np.arange(n) + 0.5) / n)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bound_at_the_optimal_critic_is_the_divergence(name):
    f, f_prime, g_inverse = CASES[name]
    v_star = lambda x: torch.tensor(g_inverse(f_prime(P.pdf(x) / Q.pdf(x))))   # noqa: E731
    bound = -get_objective(name).d_loss(v_star(stratified(P)), v_star(stratified(Q))).item()
    assert bound == pytest.approx(true_divergence(f), rel=2e-3, abs=1e-4)
    # any other critic gives less: the bound is a lower bound
    worse = -get_objective(name).d_loss(0.5 * v_star(stratified(P)), 0.5 * v_star(stratified(Q))).item()
    assert worse < bound


def test_kl_and_hellinger_against_closed_forms():
    (m1, s1), (m2, s2) = (0.0, 1.0), (0.7, 1.3)
    kl = math.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5
    assert true_divergence(CASES["fgan-kl"][0]) == pytest.approx(kl, rel=1e-6)
    bc = math.sqrt(2 * s1 * s2 / (s1 ** 2 + s2 ** 2)) * math.exp(-(m1 - m2) ** 2 / (4 * (s1 ** 2 + s2 ** 2)))
    assert true_divergence(CASES["fgan-hellinger"][0]) == pytest.approx(2 * (1 - bc), rel=1e-6)


def test_losses_by_hand():
    r, f = torch.tensor([[0.5], [-1.0]]), torch.tensor([[2.0], [0.0]])
    mean = lambda xs: sum(xs) / len(xs)   # noqa: E731
    sp = lambda x: math.log1p(math.exp(x))   # noqa: E731
    expect = {
        "fgan-kl": (-(mean([0.5, -1.0]) - mean([math.exp(1.0), math.exp(-1.0)])), -1.0),
        "fgan-reverse-kl": (-(mean([-math.exp(-0.5), -math.exp(1.0)]) - mean([1.0, -1.0])),
                            mean([math.exp(-2.0), 1.0])),
        "fgan-pearson": (-(mean([0.5, -1.0]) - mean([1 + 2, 0.0])), -1.0),
        "fgan-hellinger": (-(mean([1 - math.exp(-0.5), 1 - math.exp(1.0)]) - mean([math.exp(2) - 1, 0.0])),
                           -mean([1 - math.exp(-2.0), 0.0])),
        "fgan-js": (-(mean([math.log(2) - sp(-0.5), math.log(2) - sp(1.0)]) - mean([sp(2.0) - math.log(2), sp(0.0) - math.log(2)])),
                    -mean([math.log(2) - sp(-2.0), math.log(2) - sp(0.0)])),
    }
    for name, (d, g) in expect.items():
        obj = get_objective(name)
        assert obj.d_loss(r, f).item() == pytest.approx(d, rel=1e-6), name
        assert obj.g_loss(f).item() == pytest.approx(g, rel=1e-6), name


def test_js_at_equilibrium_is_minus_2_log_2():
    """P = Q: the optimal D outputs v = 0 and the bound is 2 JSD = 0, so D's loss is 0; the
    GAN-style losses sit at log 2 per term (seed 000's equilibrium)."""
    zero = torch.zeros(8, 1)
    assert get_objective("fgan-js").d_loss(zero, zero).item() == pytest.approx(0.0, abs=1e-7)
    assert get_objective("gan").d_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
