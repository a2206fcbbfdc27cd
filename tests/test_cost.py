"""The FLOP estimate a dry run prices a study with, against an exact count of the harness's step."""
import pytest
import torch

from harness.config import from_dict
from harness.cost import count_flops, iteration_flops
from harness.remedies.base import samples_per_input
from harness.space import Arch
from harness.step import build_step
from harness.trial import Trial, data_shape, z_dim

ARCHS = [Arch(depth_g=4, depth_d=4, filters_g=32, filters_d=32),
         Arch(nonlin_g="tanh", depth_g=8, depth_d=12, filters_g=64, filters_d=32, norm_d=False)]


def exact_iteration_flops(trial: Trial) -> int:
    exp, objective = trial.experiment, trial.make_objective()
    with torch.device("meta"):
        step = build_step(trial.arch, objective, data_shape(exp), z_dim(exp), torch.device("meta"))
        draw = exp.budget.batch_size * samples_per_input(objective.remedies)   # as train.Session draws
        real = torch.empty(draw, *data_shape(exp))
        z = torch.empty(draw, z_dim(exp))

    def iteration():
        for _ in range(objective.settings.n_critic):
            step.discriminator(real, z)
        step.generator(z, real=real)
    return count_flops(iteration)


@pytest.mark.parametrize("arch", ARCHS, ids=["small", "mixed"])
@pytest.mark.parametrize("objective", ["gan", "wgan-gp", "sngan", "gan+pack:4", "gan+unrolled:3",
                                       "gan+feature-matching", "fgan-js+minibatch-stddev", "gan+minibatch-disc",
                                       "gan+r1:10", "lsgan+dragan:10", "sngan+r1:1+gp:10"])
def test_estimate_is_within_a_quarter_of_the_exact_count(arch, objective):
    trial = Trial(from_dict({"objectives": [objective], "budget": {"batch_size": 16}}), arch, objective, 0)
    exact, estimate = exact_iteration_flops(trial), iteration_flops(trial)
    assert exact > 0 and estimate == pytest.approx(exact, rel=0.25), (exact, estimate)


def test_a_penalty_is_priced_only_where_the_method_has_one():
    """Each penalty adds its D passes to every D step, and nothing else does: a family setting
    cannot price a penalty the family does not apply (gp_weight is wgan-gp's alone)."""
    from harness.cost import forward_flops
    from harness.penalties import PENALTIES

    def trial(method):
        return Trial(from_dict({"dataset": "ring8", "objectives": [method], "budget": {"batch_size": 16}}),
                     ARCHS[0], method, 0)
    d = forward_flops(trial("gan"))[1]
    for name, cls in PENALTIES.items():
        assert iteration_flops(trial(f"gan+{name}:10")) - iteration_flops(trial("gan")) == 16 * cls.d_forwards * d
    assert iteration_flops(trial("wgan-gp@gp_weight=0")) < iteration_flops(trial("wgan-gp"))
    assert exact_iteration_flops(trial("wgan-gp@gp_weight=0")) < exact_iteration_flops(trial("wgan-gp"))


def exact_conditional_flops(trial: Trial) -> int:
    from harness.data import get_dataset_spec
    exp, objective, arch = trial.experiment, trial.make_objective(), trial.arch
    k, b, s = get_dataset_spec(exp.dataset).num_classes, exp.budget.batch_size, objective.settings
    with torch.device("meta"):
        step = build_step(arch, objective, data_shape(exp), z_dim(exp), torch.device("meta"), n_classes=k)
        real = (torch.empty(b, *data_shape(exp)), torch.zeros(b, dtype=torch.long))
        z = torch.empty(b, z_dim(exp))

    def iteration():
        for _ in range(s.n_critic):
            step.discriminator(real, z)
        step.generator(z)
    return count_flops(iteration)


@pytest.mark.parametrize("dataset", ["fashion_mnist", "ring8"])
@pytest.mark.parametrize("objective", ["gan", "wgan-gp", "sngan+instance-noise"])
def test_conditional_trials_are_priced_within_a_quarter(dataset, objective):
    e = from_dict({"dataset": dataset, "conditional": True, "objectives": [objective], "budget": {"batch_size": 16}})
    trial = Trial(e, ARCHS[0], objective, 0)
    exact, estimate = exact_conditional_flops(trial), iteration_flops(trial)
    plain = iteration_flops(Trial(from_dict({"dataset": dataset, "objectives": [objective],
                                             "budget": {"batch_size": 16}}), ARCHS[0], objective, 0))
    assert exact > 0 and estimate == pytest.approx(exact, rel=0.25), (exact, estimate)
    assert estimate > plain   # the one-hot label widens G's input (and the 2D D's)


# ---- the dry run's price: each method at its own measured rate ---------------------------------

def test_each_method_is_priced_at_its_own_rate_with_evaluations_and_start_up(monkeypatch):
    """The Fashion-MNIST study was priced at one rate for every method, 8.7 h for 19 h 40 min:
    a WGAN-GP iteration runs at a fraction of a GAN iteration's FLOP rate. Here each method's
    rate comes from its own timed iterations (stubbed: gan 10 GFLOP/s, wgan-gp 2), evaluations
    are eval.every's and the final one at the timed evaluation's cost scaled by G's FLOPs, and
    every trial pays the measured start-up."""
    from harness.cost import evaluations_per_trial, extractor_flops, forward_flops
    from harness.study.sweep import dry_run
    rates = {"gan": 10e9, "wgan-gp": 2e9}
    timed, cache = [], {}

    def flops(t):
        if (t.arch, t.objective) not in cache:
            cache[(t.arch, t.objective)] = iteration_flops(t)
        return cache[(t.arch, t.objective)]

    def seconds(trial, threads):
        timed.append((trial.arch, trial.objective, threads))
        return flops(trial) / rates[trial.objective]
    monkeypatch.setattr(dry_run, "seconds_per_iteration", seconds)
    monkeypatch.setattr(dry_run, "trial_overheads", lambda trial, threads: {
        "evaluation_s": 2.0, "startup_s": 0.5, "real_side_once_s": 0.0, "load_factor": 1.5})
    e = from_dict({"dataset": "fashion_mnist", "objectives": ["gan", "wgan-gp"],
                   "budget": {"iterations": 8, "batch_size": 16}, "eval": {"n_samples": 100, "every": 3}})
    trials = [Trial(e, arch, obj, seed) for arch in ARCHS for obj in e.objectives for seed in (0, 1)]
    p = dry_run.price(e, trials, threads=1, flops={(t.arch, t.objective): flops(t) for t in trials})
    median = dry_run.median_trial(trials)
    assert median.arch == max(ARCHS, key=lambda a: sum(forward_flops(Trial(e, a, "gan", 0))))
    lo, hi = sorted(ARCHS, key=lambda a: flops(Trial(e, a, "gan", 0)))
    # each method at the cheapest and the most expensive architecture (most expensive first)
    assert timed == [(hi, "gan", 1), (lo, "gan", 1), (hi, "wgan-gp", 1), (lo, "wgan-gp", 1)]
    assert p["per_method"]["wgan-gp"]["gflop_per_s"] == pytest.approx(2.0) and p["load_factor"] == 1.5
    n_evals = evaluations_per_trial(e)
    assert n_evals == 3                                                          # at 3, 6 and the last, 8
    extractor = extractor_flops("fmnist-classifier")
    g_median, g_of = forward_flops(median)[0], {}
    for t in trials:
        x = p["per_trial"][t.id]
        assert x["training_s"] == pytest.approx(flops(t) * 8 / rates[t.objective])
        g = g_of[t.arch] if t.arch in g_of else g_of.setdefault(t.arch, forward_flops(t)[0])
        assert x["evaluation_s"] == pytest.approx(n_evals * 2.0 * (g + extractor) / (g_median + extractor))
        assert x["startup_s"] == 0.5
        assert x["total_s"] == pytest.approx(x["training_s"] + x["evaluation_s"] + 0.5)
    # one rate for all (the old price) would have undercharged wgan-gp five times over
    w = next(t for t in trials if t.objective == "wgan-gp")
    assert p["per_trial"][w.id]["training_s"] == pytest.approx(5 * flops(w) * 8 / rates["gan"])


def test_a_methods_cost_line_has_an_overhead_where_small_nets_run_below_the_rate(monkeypatch):
    """A small net's iteration is mostly overhead (Python, launches, the optimizer): timed at
    10 ms + FLOPs at 1 GFLOP/s, the line through the cheapest and the most expensive
    architecture prices every trial on it, where one rate at one architecture would not."""
    from harness.study.sweep import dry_run
    e = from_dict({"dataset": "ring8", "objectives": ["gan"], "budget": {"iterations": 10, "batch_size": 16}})
    archs = [Arch(depth_g=d, depth_d=d, filters_g=f, filters_d=f) for d, f in ((4, 32), (8, 64), (12, 128))]
    trials = [Trial(e, a, "gan", 0) for a in archs]
    flops = {(t.arch, t.objective): iteration_flops(t) for t in trials}
    monkeypatch.setattr(dry_run, "seconds_per_iteration",
                        lambda trial, threads: 0.01 + flops[(trial.arch, trial.objective)] / 1e9)
    model = dry_run.method_model(e, trials, "gan", 1, flops)
    assert model["overhead_s"] == pytest.approx(0.01) and model["seconds_per_flop"] == pytest.approx(1e-9)
    p = dry_run.price(e, trials, 1, flops)
    for t in trials:   # the middle architecture was never timed, and is priced on the line
        assert p["per_trial"][t.id]["training_s"] == pytest.approx(10 * (0.01 + flops[(t.arch, "gan")] / 1e9))
    # noise that would make the overhead negative: a pure rate through the most expensive point
    monkeypatch.setattr(dry_run, "seconds_per_iteration",
                        lambda trial, threads: flops[(trial.arch, trial.objective)] / 1e9 * (
                            0.5 if trial.arch == archs[0] else 1.0))
    model = dry_run.method_model(e, trials, "gan", 1, flops)
    assert model["overhead_s"] == 0 and model["seconds_per_flop"] == pytest.approx(1e-9)


def test_the_dry_run_reads_a_one_thread_cpu_trial_on_its_own_clock():
    """On this project's shared 2 cores (load 8-12) the wall clock counts the waits for a core;
    a one-thread CPU trial's own time is its thread's CPU time, and the load factor says how
    much the wall clock ran slower than a busy thread (1 on an idle machine, never below)."""
    import time

    from harness.study.sweep.dry_run import load_factor, own_clock
    cpu = Trial(from_dict({"objectives": ["gan"], "train": {"device": "cpu"}}), ARCHS[0], "gan", 0)
    assert own_clock(cpu, threads=1) is time.thread_time
    assert own_clock(cpu, threads=2) is time.perf_counter      # several threads: the wall clock
    assert load_factor(seconds=0.05) >= 1.0


def test_a_loss_that_reads_reals_in_gs_step_is_priced_one_more_d_pass(monkeypatch):
    """A relativistic loss (examples/ragan.py) has D read a real batch in G's step too, without
    a graph: one D forward per sample more, in the estimate as in the exact count."""
    from harness.cost import forward_flops
    from harness.objectives.gan import NonSaturatingGAN as GAN
    trial = Trial(from_dict({"dataset": "ring8", "objectives": ["gan"], "budget": {"batch_size": 16}}),
                  ARCHS[0], "gan", 0)
    plain_exact, plain = exact_iteration_flops(trial), iteration_flops(trial)
    monkeypatch.setattr(GAN, "needs_real_in_g_step", True)
    monkeypatch.setattr(GAN, "g_loss", lambda self, d_fake, d_real=None: (d_fake - d_real.mean()).mean())
    d = forward_flops(trial)[1]
    assert iteration_flops(trial) - plain == 16 * d
    assert exact_iteration_flops(trial) - plain_exact == 16 * d


@pytest.mark.parametrize("conditional", [False, True], ids=["unconditional", "conditional"])
def test_toy2d_evaluations_are_priced_as_each_method_makes_them(conditional, monkeypatch):
    """A trial hands its toy2d evaluation D's probability where its D has one (gan, lsgan: d_gap
    against D*) and not where it has none (wgan-gp's critic); a conditional evaluator adds its label
    metrics. The price times each kind once, as the trial makes it, and gives each method its own."""
    import harness.trial
    from harness.study.sweep import dry_run
    seen, real = [], harness.trial.make_evaluator

    def recording(exp, device="cpu"):
        evaluator = real(exp, device)
        evaluate = evaluator.evaluate

        def recorded(sample_fn, critic=None):
            out = evaluate(sample_fn) if critic is None else evaluate(sample_fn, critic=critic)
            seen.append((critic is not None, set(out)))
            return out
        evaluator.evaluate = recorded
        return evaluator
    monkeypatch.setattr(harness.trial, "make_evaluator", recording)
    e = from_dict({"dataset": "ring8", "objectives": ["gan", "wgan-gp", "lsgan"], "conditional": conditional,
                   "space": {"mode": "sample", "n": 1, "seed": 0}, "budget": {"iterations": 2, "batch_size": 16},
                   "eval": {"evaluator": "toy2d", "n_samples": 200}})
    from harness.trial import trials_of
    seconds = dry_run.seconds_per_toy_evaluation(e, trials_of(e), threads=1)
    assert set(seconds) == {"gan", "wgan-gp", "lsgan"} and all(s > 0 for s in seconds.values())
    if conditional:      # D judges (x, y) pairs: no D* to compare with, one timing for all
        [(with_critic, metrics)] = seen[1:]      # the first: the untimed warm-up
        assert not with_critic and "on_requested_mode" in metrics
        assert len(set(seconds.values())) == 1
    else:
        assert [c for c, _ in seen[1:]] == [False, True]
        assert "d_gap_mean_abs" in seen[-1][1] and "d_gap_mean_abs" not in seen[1][1]
        assert seconds["gan"] == seconds["lsgan"] != seconds["wgan-gp"]


def test_each_architecture_is_priced_at_its_own_factor_over_the_flop_line(monkeypatch):
    """Two architectures of one FLOP count, one with batch norm in D that runs 1.5x slower: the
    FLOP line prices them alike, the architecture's factor (timed once, under the first method)
    prices its trials of every method at 1.5x."""
    from harness.study.sweep import dry_run
    plain = Arch(depth_g=4, depth_d=4, filters_g=32, filters_d=32, norm_g=False, norm_d=False)
    normed = Arch(depth_g=4, depth_d=4, filters_g=32, filters_d=32, norm_g=False, norm_d=True)
    e = from_dict({"dataset": "ring8", "objectives": ["gan", "wgan-gp"], "budget": {"iterations": 10, "batch_size": 16},
                   "eval": {"evaluator": "toy2d", "n_samples": 200}})
    base = {"gan": 0.01, "wgan-gp": 0.05}
    timed = []

    def seconds(trial, threads, timed_seconds=None):
        timed.append((trial.arch, trial.objective))
        return base[trial.objective] * (1.5 if trial.arch.norm_d else 1.0)
    monkeypatch.setattr(dry_run, "seconds_per_iteration", seconds)
    monkeypatch.setattr(dry_run, "trial_overheads", lambda trial, threads: {
        "evaluation_s": 0.0, "startup_s": 0.0, "real_side_once_s": 0.0, "load_factor": 1.0})
    monkeypatch.setattr(dry_run, "seconds_per_toy_evaluation",
                        lambda exp, trials, threads: {"gan": 0.0, "wgan-gp": 0.0})
    trials = [Trial(e, arch, obj, 0) for arch in (plain, normed) for obj in e.objectives]
    flops = {(t.arch, t.objective): 1e6 for t in trials}          # one FLOP count: one point, no overhead
    p = dry_run.price(e, trials, threads=1, flops=flops)
    training = {(t.arch.norm_d, t.objective): p["per_trial"][t.id]["training_s"] for t in trials}
    for method in base:
        assert training[(True, method)] == pytest.approx(10 * base[method] * 1.5)
        assert training[(False, method)] == pytest.approx(10 * base[method])
    assert p["arch_factors"][normed] / p["arch_factors"][plain] == pytest.approx(1.5)
    assert len([x for x in timed if x[1] == "gan"]) == 2 and len([x for x in timed if x[1] == "wgan-gp"]) == 1
    monkeypatch.setattr(dry_run, "ARCHS_TIMED_AT_MOST", 1)          # a larger space keeps the FLOP line
    assert dry_run.price(e, trials, threads=1, flops=flops)["arch_factors"] == {}
