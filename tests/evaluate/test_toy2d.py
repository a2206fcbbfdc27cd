import math

import pytest
import torch

from harness.data import mixture_modes, sample_mixture
from harness.evaluate import make_evaluator
from harness.evaluate.toy2d import toy2d_metrics

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
    assert m["reverse_kl"] < 0.02 and m["reverse_kl_all"] < 0.02
    assert m["modes_covered_strict"] == k
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
    assert m4["modes_covered_strict"] == 4
    assert not ev.collapsed(m4) and ev.collapsed(m3)
    assert m4["reverse_kl"] == pytest.approx(math.log(2), abs=1e-4)   # HQ histogram: ~1 % of samples drop out


def test_non_finite_samples_are_not_counted():
    ev = make_evaluator("toy2d", "ring8", 100)
    centers, _ = mixture_modes("ring8")
    x = centers[torch.arange(100) % 8].clone()
    x[:50] = float("nan")
    m = ev.evaluate(lambda n: x[:n])
    assert m["hq_share"] == 0.5 and m["modes_covered"] == 8


def test_reverse_kl_counts_high_quality_samples_only_and_strict_coverage_needs_a_share():
    """PacGAN's metric: the histogram of HQ samples. 600 HQ samples on mode 0, 200 on mode 1,
    one HQ sample on each of modes 2..7, and 193 far-off samples nearest mode 2."""
    centers, std = mixture_modes("ring8")
    x = torch.cat([centers[0].repeat(600, 1), centers[1].repeat(200, 1), centers[2:8],
                   (centers[2] * 1.5).repeat(193, 1)])
    m = toy2d_metrics(x, centers, std)
    hq = torch.tensor([600.0, 200] + [1] * 6, dtype=torch.float64)
    p = hq / hq.sum()
    assert m["reverse_kl"] == pytest.approx(float((p * (p * 8).log()).sum()), rel=1e-9)
    all_counts = torch.tensor([600.0, 200, 194] + [1] * 5, dtype=torch.float64)
    q = all_counts / all_counts.sum()
    assert m["reverse_kl_all"] == pytest.approx(float((q * (q * 8).log()).sum()), rel=1e-9)
    assert m["modes_covered"] == 8 and m["modes_covered_strict"] == 2   # a mode needs 999 / 32 = 31.2
    assert m["hq_share"] == pytest.approx(806 / 999)
    nothing = toy2d_metrics(centers[:4] * 3, centers, std)
    assert math.isnan(nothing["reverse_kl"]) and nothing["modes_covered"] == 0


def test_too_few_samples_to_tell_modes_apart_is_refused():
    with pytest.raises(ValueError, match="n_samples must be >= 250"):
        make_evaluator("toy2d", "grid25", 100)


def test_exact_w1_by_optimal_assignment():
    from harness.evaluate.toy2d import exact_w1
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 2, generator=g)
    assert exact_w1(x, x[torch.randperm(500, generator=g)]) == pytest.approx(0.0, abs=1e-12)
    assert exact_w1(x, x + torch.tensor([0.3, 0.4])) == pytest.approx(0.5, rel=1e-6)   # a translation by 0.5
    ev = make_evaluator("toy2d", "ring8", 2000)
    exact = ev.evaluate(lambda n: sample_mixture("ring8", n, g))
    collapsed = ev.evaluate(lambda n: mixture_modes("ring8")[0][0].repeat(n, 1))
    assert exact["w1_exact_2k"] < 0.1 < collapsed["w1_exact_2k"]


def _assignment_w1(x, y):
    """The reference value: the mean cost of scipy's optimal one-to-one assignment (the solver
    exact_w1 used before POT; equal for equal-size uniform samples)."""
    from scipy.optimize import linear_sum_assignment
    cost = torch.cdist(x.double(), y.double()).numpy()
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


@pytest.mark.parametrize("case", ["gaussian", "mixture", "collapsed", "mode-and-noise"])
def test_exact_w1_equals_the_optimal_assignment_cost(case):
    from harness.evaluate.toy2d import exact_w1
    from harness.bench.w1_solver import clouds
    g = torch.Generator().manual_seed(3)
    n = 300
    data = sample_mixture("grid25", n, torch.Generator().manual_seed(0))
    x = {"gaussian": lambda: torch.randn(n, 2, generator=g) * 2,
         "mixture": lambda: sample_mixture("grid25", n, g),
         "collapsed": lambda: clouds("grid25", n)["collapsed"].float(),
         "mode-and-noise": lambda: torch.cat([mixture_modes("grid25")[0][3].repeat(n // 2, 1),
                                              torch.rand(n - n // 2, 2, generator=g) * 8 - 4])}[case]()
    assert exact_w1(x, data) == pytest.approx(_assignment_w1(x, data), abs=1e-6)


def test_exact_w1_refuses_a_solve_that_stopped_early(monkeypatch):
    from harness.evaluate import toy2d
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, 2, generator=g), torch.randn(200, 2, generator=g)
    monkeypatch.setattr(toy2d, "W1_MAX_ITER", 5)
    with pytest.warns(UserWarning, match="numItermax"), pytest.raises(RuntimeError, match="optimum"):
        toy2d.exact_w1(x, y)


def test_collapsed_cloud_is_within_the_radius_and_solvers_agree():
    """The bench's clouds and its report, on a small n (its timings are not asserted: a benchmark)."""
    from harness.bench import w1_solver
    c = w1_solver.clouds("ring8", 400)
    centre = mixture_modes("ring8")[0][0].double()
    assert (c["collapsed"] - centre).norm(dim=1).max() <= w1_solver.COLLAPSE_RADIUS
    assert c["spread"].shape == (400, 2)
    r = w1_solver.measure_w1_solver(lambda m: None, n=400, repeats=1, evaluations=False)
    assert set(r["clouds"]) == {"spread", "collapsed"}
    for row in r["clouds"].values():
        assert set(row["solvers"]) == set(w1_solver.SOLVERS)
        assert row["abs_diff"] < 1e-6
        assert all(s["wall_s"] > 0 and s["cpu_s"] >= 0 for s in row["solvers"].values())
    hw = {"device_name": "cpu", "cpu_model": "cpu", "cpu_count": 2, "torch": "x", "python": "3", "date": "d",
          "command": "c", "load_average_1m": 1.0}
    md = w1_solver.w1_solver_markdown({"hardware": hw, "w1_solver": r, "bench_seconds": 1.0})
    assert "| collapsed | POT ot.emd2 |" in md and "| spread | scipy linear_sum_assignment |" in md


def test_bench_only_w1_solver_is_a_cli_choice():
    from harness.cli import build_parser
    assert build_parser().parse_args(["bench", "--only", "w1-solver"]).only == "w1-solver"
