import math

import pytest
import torch

from harness.data import mixture_modes, sample_mixture
from harness.evaluate import make_evaluator

N = 2500


def _sampler(fn):
    calls = []

    def sample(n):
        calls.append(n)
        return fn(n)

    return sample, calls


@pytest.mark.parametrize("name,k", [("ring8", 8), ("grid25", 25)])
def test_exact_mixture_samples(name, k):
    ev = make_evaluator("toy2d", name, N)
    g = torch.Generator().manual_seed(0)
    sample, calls = _sampler(lambda n: sample_mixture(name, n, g))
    m = ev.evaluate(sample)
    assert ev.headline == "modes_covered"
    assert m["n_modes"] == k and m["modes_covered"] == k
    assert m["hq_share"] > 0.97  # P(chi2_2 <= 9) = 1 - exp(-4.5) = 0.989
    assert m["reverse_kl"] < 0.02
    assert not ev.collapsed(m)
    assert sum(calls) == N and max(calls) <= 500


@pytest.mark.parametrize("name,k", [("ring8", 8), ("grid25", 25)])
def test_single_mode_is_collapsed(name, k):
    ev = make_evaluator("toy2d", name, N)
    centers, std = mixture_modes(name)
    g = torch.Generator().manual_seed(0)
    m = ev.evaluate(lambda n: centers[3] + std * torch.randn(n, 2, generator=g))
    assert m["modes_covered"] == 1
    assert m["hq_share"] > 0.97
    assert m["reverse_kl"] == pytest.approx(math.log(k), rel=1e-6)
    assert ev.collapsed(m)


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_noise_is_not_high_quality(name):
    ev = make_evaluator("toy2d", name, N)
    g = torch.Generator().manual_seed(0)
    m = ev.evaluate(lambda n: 4 * torch.rand(n, 2, generator=g) * 2 - 4)
    assert m["hq_share"] < 0.05


def test_half_the_modes_is_the_collapse_boundary():
    ev = make_evaluator("toy2d", "ring8", 800)
    centers, std = mixture_modes("ring8")
    g = torch.Generator().manual_seed(0)
    four = lambda n: centers[torch.arange(n) % 4] + std * torch.randn(n, 2, generator=g)  # noqa: E731
    three = lambda n: centers[torch.arange(n) % 3] + std * torch.randn(n, 2, generator=g)  # noqa: E731
    m4, m3 = ev.evaluate(four), ev.evaluate(three)
    assert (m4["modes_covered"], m3["modes_covered"]) == (4, 3)
    assert not ev.collapsed(m4) and ev.collapsed(m3)
    assert m4["reverse_kl"] == pytest.approx(math.log(2), abs=1e-6)


def test_non_finite_samples_are_not_counted():
    ev = make_evaluator("toy2d", "ring8", 100)
    centers, _ = mixture_modes("ring8")
    x = centers[torch.arange(100) % 8].clone()
    x[:50] = float("nan")
    m = ev.evaluate(lambda n: x[:n])
    assert m["hq_share"] == 0.5 and m["modes_covered"] == 8
