"""Training proves learning: the 2D mixtures learn on a CPU in seconds, and the metrics are exact."""
import json
import math

import pytest
import torch

from harness.config import from_dict
from harness.data import mixture_modes
from harness.evaluate.toy2d import toy2d_metrics
from harness.objectives import OBJECTIVES
from harness.space import Arch
from harness.train import run_trial
from harness.trial import Trial

# The toy reference: the WGAN-GP paper's toy MLP (ReLU, 3 hidden layers, no norm), 128 wide
# (32 filters x 4) instead of 512 so that a CPU learns it in seconds.
TOY_ARCH = Arch(nonlin_g="relu", nonlin_d="relu", depth_g=4, depth_d=4, norm_g=False, norm_d=False,
                filters_g=32, filters_d=32)
# A CPU budget needs a higher learning rate than the published 1e-4 .. 5e-5, decayed linearly
# to zero (as in WGAN-GP's CIFAR runs); everything else is each objective's published default.
TOY_OVERRIDES = {"lr_g": 1e-3, "lr_d": 1e-3, "lr_decay": "linear"}
# SN-GAN collapses to one mode at that rate (a robustness finding in itself); its published
# setting C learns the ring as it is.
LEARNING_OVERRIDES = {name: TOY_OVERRIDES for name in OBJECTIVES} | {"sngan": {}}
# f-GAN reverse KL diverges at 1e-3 (its exp(-v) overflows); at 5e-4 it learns the ring.
LEARNING_OVERRIDES["fgan-reverse-kl"] = {"lr_g": 5e-4, "lr_d": 5e-4, "lr_decay": "linear"}
# Measured, seed 0, 1,500 iterations: f-GAN KL and Pearson learn nothing on this ring at
# 1e-3 or 5e-4 with decay (collapsed, no high-quality sample), and KL with its published
# 2e-4 diverges at iteration 1280 (exp(v - 1) overflows). A finding, not a test to pass:
# they are left out of the learning test (their one-step tests are in tests/objectives/).
NOT_LEARNING_ON_A_CPU_BUDGET = {"fgan-kl", "fgan-pearson"}
# PyTorch's default init, not the protocol's N(0, 0.02): with N(0, 0.02) these 128-wide MLPs
# start with every sample near the origin and gan, sngan and wgan-clip had learned nothing
# by 1,500 iterations (measured; WGAN-GP needs 2,000 instead of 1,000). A CPU-budget deviation.
TOY_INIT = "pytorch"


def toy_trial(objective, iterations, seed=0, overrides=TOY_OVERRIDES, every=0, batch=128, n_samples=2500):
    """A ring8 trial; the plumbing tests evaluate 500 samples, the learning tests 2,500."""
    e = from_dict({"dataset": "ring8", "objectives": [objective], "seeds": [seed],
                   "budget": {"iterations": iterations, "batch_size": batch},
                   "eval": {"n_samples": n_samples, "every": every},
                   "objective_overrides": {objective: dict(overrides)},
                   "train": {"threads": 1, "init": TOY_INIT}})
    return Trial(e, TOY_ARCH, objective, seed)


@pytest.fixture(scope="module")
def untrained_hq():
    """High-quality share of generators that have taken one step: the floor to beat."""
    shares = [run_trial(toy_trial(obj, 1)).metrics["hq_share"] for obj in ("gan", "wgan-gp")]
    return max(shares)


@pytest.mark.slow    # learning: 1,000 iterations; the one-step twin is tests/objectives/
def test_wgan_gp_covers_the_ring(untrained_hq):
    trial = toy_trial("wgan-gp", 1000, overrides={"lr_g": 2e-3, "lr_d": 2e-3, "beta1": 0.5, "lr_decay": "linear"})
    result = run_trial(trial)
    assert result.status == "ok", result.error
    assert result.metrics["modes_covered"] >= 6
    assert result.metrics["hq_share"] >= 0.5
    assert untrained_hq < 0.02


@pytest.fixture(scope="module")
def uniform_hq():
    """High-quality share of samples spread evenly over the ring's bounding box."""
    centers, std = mixture_modes("ring8")
    uniform = (torch.rand(100_000, 2, generator=torch.Generator().manual_seed(0)) * 5) - 2.5
    return toy2d_metrics(uniform, centers, std)["hq_share"]


@pytest.mark.slow    # learning: 1,500 iterations each; the one-step twin is tests/objectives/
@pytest.mark.parametrize("objective", sorted(set(OBJECTIVES) - {"wgan-gp"} - NOT_LEARNING_ON_A_CPU_BUDGET))
def test_every_objective_learns_something(objective, untrained_hq, uniform_hq):
    result = run_trial(toy_trial(objective, 1500, overrides=LEARNING_OVERRIDES[objective]))
    assert result.status in ("ok", "collapsed"), result.error
    assert 0.002 < uniform_hq < 0.01
    assert result.metrics["hq_share"] >= max(5 * uniform_hq, 10 * untrained_hq)


def test_same_seed_same_metrics_on_cpu():
    a = run_trial(toy_trial("wgan-gp", 20, every=10, n_samples=500))
    b = run_trial(toy_trial("wgan-gp", 20, every=10, n_samples=500))
    same = lambda x, y: json.dumps(x.history) == json.dumps(y.history)   # noqa: E731 - NaN-aware
    assert same(a, b) and len(a.history) == 2
    c = run_trial(toy_trial("wgan-gp", 20, seed=1, every=10, n_samples=500))
    assert not same(c, a)


def test_absurd_learning_rate_diverges_and_keeps_what_it_had():
    result = run_trial(toy_trial("gan", 200, overrides={"lr_g": 1e6, "lr_d": 1e6}, every=1, n_samples=500))
    assert result.status == "diverged"
    assert "non-finite" in result.error
    assert result.iterations < 200


def test_metrics_are_reported_through_the_callback():
    seen = []
    result = run_trial(toy_trial("sngan", 40, every=20, n_samples=500), on_metrics=lambda step, m: seen.append((step, m)))
    steps = [s for s, m in seen if "hq_share" in m]
    assert steps == [20, 40]
    losses = [m for s, m in seen if "loss_d" in m]
    assert losses and all(math.isfinite(m["loss_d"]) and m["grad_norm_g"] >= 0 for m in losses)
    assert result.samples.shape == (1000, 2)


def test_a_broken_trial_is_failed_with_its_message(tmp_path):
    e = from_dict({"dataset": "imagenet32", "data": {"path": str(tmp_path / "missing")},
                   "budget": {"iterations": 2}, "eval": {"evaluator": "fmnist-classifier", "n_samples": 10}})
    result = run_trial(Trial(e, Arch(), "gan", 0))
    assert result.status == "failed" and "imagenet32" in result.error.lower()
    with pytest.raises(Exception):
        run_trial(Trial(e, Arch(), "gan", 0), raise_errors=True)


def test_random_streams_are_separate_and_evaluating_more_often_changes_nothing():
    from harness.train import stream_seeds
    s0 = stream_seeds(0)
    assert len(set(s0.values())) == 3 and s0 == stream_seeds(0) and s0 != stream_seeds(1)
    once = run_trial(toy_trial("wgan-gp", 20, every=0, n_samples=500))
    often = run_trial(toy_trial("wgan-gp", 20, every=5, n_samples=500))
    assert len(often.history) == 4 and json.dumps(once.metrics) == json.dumps(often.metrics)


@pytest.mark.parametrize("objective,keys", [("gan", {"d_prob_real", "d_prob_fake", "loss_d_minus_2log2"}), ("wgan-gp", {"w1_estimate"}),
                                            ("fgan-js", {"divergence_estimate"}), ("lsgan", {"d_mean_real"})])
def test_equilibrium_diagnostics_are_logged(objective, keys):
    seen = []
    run_trial(toy_trial(objective, 30), on_metrics=lambda step, m: seen.append(m))
    logged = [m for m in seen if "loss_d" in m]
    assert logged and all(keys <= set(m) and all(math.isfinite(m[k]) for k in keys) for m in logged)
    if objective == "gan":   # probabilities, and D tells real from fake at least a little by now
        last = logged[-1]
        assert 0 < last["d_prob_fake"] < last["d_prob_real"] < 1
    evaluated = [m for m in seen if "w1_exact_2k" in m]
    assert evaluated and evaluated[-1]["w1_exact_2k"] > 0


@pytest.mark.parametrize("method,has_gap", [("gan", True), ("gan-minimax", True), ("lsgan", True),
                                            ("fgan-js", True), ("wgan-gp", False), ("sngan", False),
                                            ("gan+pack:2", False), ("gan+instance-noise", False),
                                            ("gan+minibatch-stddev", False)])
def test_the_gap_to_the_optimal_d_is_measured_where_it_means_something(method, has_gap):
    """D's gap to D* = p_data / (p_data + p_g) needs a probability with that optimum and a D that
    judges one sample: present for the GAN family, LSGAN and f-GAN JS; absent for critics and
    where a remedy changes what D sees. The KDE divergences are there for every objective."""
    base = method.split("+")[0]
    e = from_dict({"dataset": "ring8", "objectives": [method], "budget": {"iterations": 1, "batch_size": 128},
                   "eval": {"n_samples": 2500}, "objective_overrides": {base: LEARNING_OVERRIDES[base]},
                   "train": {"threads": 1, "init": TOY_INIT}})
    result = run_trial(Trial(e, TOY_ARCH, method, 0))
    assert result.status in ("ok", "collapsed"), result.error
    assert ("d_gap_mean_abs" in result.metrics) == has_gap
    if has_gap:
        assert 0 <= result.metrics["d_gap_mean_abs"] <= 1.5
    assert 0 <= result.metrics["js_kde"] <= math.log(2)


def test_a_batch_norm_d_has_no_gap():
    trial = toy_trial("gan", 1)
    trial = Trial(trial.experiment, Arch(nonlin_g="relu", nonlin_d="relu", depth_g=4, depth_d=4, norm_g=False,
                                         norm_d=True, filters_g=32, filters_d=32), "gan", 0)
    result = run_trial(trial)
    assert "d_gap_mean_abs" not in result.metrics and "js_kde" in result.metrics


def test_measuring_d_changes_no_training():
    """The critic runs D in eval mode without gradients: a trial evaluated often trains the same."""
    once = run_trial(toy_trial("gan", 20, n_samples=500))
    often = run_trial(toy_trial("gan", 20, every=5, n_samples=500))
    assert json.dumps(once.metrics) == json.dumps(often.metrics)


@pytest.mark.parametrize("iterations,every,steps", [(7, 3, [3, 6, 7]), (6, 3, [3, 6]), (5, 0, [5]), (4, 10, [4]),
                                                    (3, 1, [1, 2, 3])])
def test_evaluations_fall_every_n_iterations_and_at_the_last(monkeypatch, iterations, every, steps):
    import harness.train as train
    seen = []

    def evaluate(self):
        seen.append(self.session.done)
        return {"modes_covered": 8.0, "n_modes": 8.0}, 0.0
    monkeypatch.setattr(train.Evaluation, "__call__", evaluate)
    record = run_trial(toy_trial("gan", iterations, every=every, batch=16))
    assert record.status == "ok", record.error
    assert seen == steps and [h["step"] for h in record.history] == steps


def test_the_schedule_allocates_nothing_in_proportion_to_the_budget(monkeypatch):
    """budget.iterations 1e12 took 8 GB in 24 s: the evaluation steps were a set built up front.
    With 1e7 iterations evaluated at every one, the old set held 10 million ints (~500 MB of
    Python objects); what the loop allocates must not grow with the budget."""
    import tracemalloc

    import harness.train as train

    class Stop(Exception):
        pass
    calls = []
    plain = train.Session.iteration

    def iteration(self, log_grads=False):
        calls.append(1)
        if len(calls) > 3:
            raise Stop("enough")
        return plain(self, log_grads)
    monkeypatch.setattr(train.Session, "iteration", iteration)
    monkeypatch.setattr(train.Evaluation, "__call__", lambda self: ({"modes_covered": 8.0, "n_modes": 8.0}, 0.0))
    trial = toy_trial("gan", 10, every=1, batch=16)
    trial.experiment.budget.iterations = 10**7
    tracemalloc.start()
    try:
        record = run_trial(trial)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert record.status == "failed" and "Stop: enough" in record.error and record.iterations == 3
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MB traced"


def test_an_iteration_as_the_loop_runs_it_reads_losses_when_due_and_norms_at_log_points():
    """train.loop_iteration, which the loop and the dry run's timing share: the losses read back
    every train.check_every iterations (or when asked), the gradient norms as floats at log points."""
    from harness.train import Session, log_period, loop_iteration
    exp = from_dict({"dataset": "ring8", "objectives": ["gan"], "train": {"check_every": 5, "init": TOY_INIT},
                     "budget": {"iterations": 2000, "batch_size": 16}, "eval": {"n_samples": 500}})
    s = Session(Trial(exp, TOY_ARCH, "gan", 0))
    assert log_period(2000, 5) == 20 and log_period(100, 5) == 5 and log_period(2000, 1) == 20
    assert loop_iteration(s, 1, 20) == (None, {}, False)                    # nothing due: no host sync
    losses, norms, log_now = loop_iteration(s, 2, 20, read=True)            # an evaluation asks for them
    assert set(losses) == {"loss_d", "loss_g"} and norms == {} and not log_now
    losses, norms, log_now = loop_iteration(s, 5, 20)                       # the read-back period
    assert losses is not None and norms == {} and not log_now
    losses, norms, log_now = loop_iteration(s, 20, 20)                      # a log point
    assert log_now and {"grad_norm_d", "grad_norm_g"} <= set(norms)
    assert all(isinstance(v, float) and math.isfinite(v) for v in norms.values())
