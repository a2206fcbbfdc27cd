"""`sweep --dry-run`: every check a real sweep makes, every trial's effective settings, a price.

Prints one JSON line per trial (the flat dict that becomes its MLflow params, including the
D norm and weight decay that actually apply), then one summary line: the trial count, the
training and evaluation FLOPs (cost.iteration_flops, an estimate within about 25 %;
cost.evaluation_flops), the largest trial's estimated peak memory (harness/memory.py), and a
price in hours at the sweep's parallelism, from measurements on this machine (`price`):

- training: each distinct method runs a few iterations after a warm-up
  (`seconds_per_iteration`) at the study's cheapest and most expensive architecture, which
  gives that method's own cost line, seconds per iteration = overhead + FLOPs x seconds per
  FLOP (`method_model`); every trial's FLOPs are priced on its method's line. One rate for
  every method priced the Fashion-MNIST study at 8.7 h where it took 19 h 40 min: a WGAN-GP
  iteration (n_critic 5, a double backward) runs at well under a GAN iteration's FLOP rate on
  a CPU. Each architecture is then timed once under the study's first method, and its trials
  priced at that line times its own factor (`arch_factors`): batch norm and the nonlinearity
  cost time that FLOPs do not count. Iterations are timed as the loop runs them
  (train.loop_iteration: loss read-backs, gradient norms at log points).
- evaluation: one evaluation at eval.n_samples through the study's evaluator, timed inside a
  one-iteration `run_trial` at the median architecture (the real data, the evaluator's cached
  real side), scaled by each trial's G FLOPs where the evaluator has a network, times
  cost.evaluations_per_trial (eval.every and the final one). toy2d's metrics (exact W1, KDE)
  cost what the sample's shape makes them cost, not the network: they are timed on a sample
  of the mixture itself, what a trained G draws, with D's probability where the method's D has
  one, as a trial's evaluation has it (`seconds_per_toy_evaluation`).
- start-up: what that one-iteration run_trial spent outside training and evaluation
  (building the session, loading the data, the final sample grid), once per trial.

The clocks: this project's machine is shared (its 2 cores often carry a load of 8-12), and a
sweep gives each trial its cpus_per_trial cores. So on a CPU a one-thread trial's iterations
are timed by that thread's CPU time (`own_clock`), its own time whatever else runs, and the
parts timed on the wall clock (evaluation, start-up: the evaluators' libraries may run threads
of their own) are divided by the `load_factor` measured beside them. The price is what the
trials take with their cores to themselves; the summary gives the load and the factor.

Ray's start and its per-trial scheduling, and MLflow, are not priced (0.4 % of the quick
study's wall time by its report). `harness bench --only dry-run-check` compares this price
with the committed studies' measured trial wall times (docs/costs.md). Writes nothing.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

import torch

from ...config import Experiment
from ...cost import evaluation_flops, evaluations_per_trial, extractor_flops, forward_flops, iteration_flops
from ...device import torch_threads
from ...memory import GiB, largest
from ...train import Session, log_period, loop_iteration
from ...trial import Trial, data_shape, evaluator_name

WARMUP_ITERATIONS = 2        # oneDNN's primitives and the allocator settle in the first iterations
MIN_TIMED_ITERATIONS = 3
TIMED_SECONDS = 0.5          # each method is timed for at least this long (and MIN_TIMED_ITERATIONS)
TIMED_ITERATIONS = MIN_TIMED_ITERATIONS   # the old name, for callers that read it


def parallel_trials(exp: Experiment, cluster: dict, resources) -> float:
    """How many trials run at once: CPU slots, or GPU shares where trials use GPUs."""
    cpu_slots = cluster.get("CPU", 1) // exp.resources.cpus_per_trial
    if isinstance(resources, dict) and "gpu" not in resources:
        return max(1, cpu_slots)
    return max(1, min(cpu_slots, cluster.get("GPU", 0) * exp.resources.trials_per_gpu))


def own_clock(trial: Trial, threads: int):
    """The clock a trial's time is read on: on a CPU with one thread, that thread's CPU time,
    which is the trial's own time whatever else the machine runs (torch's work and autograd run
    on the calling thread); otherwise the wall clock (GPU work, or several threads)."""
    from ...device import resolve_device
    if threads == 1 and resolve_device(trial.experiment.train.device).type == "cpu":
        return time.thread_time
    return time.perf_counter


def load_factor(seconds: float = 0.3) -> float:
    """How much slower the wall clock runs than one busy thread's CPU time here now (>= 1): the
    time a thread waits for a core on a shared machine. A single-thread matmul loop, timed on
    both clocks; the wall-clock measurements (evaluation, start-up) are divided by it."""
    with torch_threads(1):
        a = torch.randn(256, 256)
        w0, c0 = time.perf_counter(), time.thread_time()
        while time.perf_counter() - w0 < seconds:
            a @ a
        return max(1.0, (time.perf_counter() - w0) / max(time.thread_time() - c0, 1e-9))


def seconds_per_iteration(trial: Trial, threads: int, timed_seconds: float | None = None) -> float:
    """WARMUP_ITERATIONS, then the mean of at least MIN_TIMED_ITERATIONS and TIMED_SECONDS of
    iterations, on random images of the data's shape (their values do not change the time),
    on the trial's own clock (`own_clock`). Each iteration as the training loop runs it
    (train.loop_iteration): the loss read-backs and, at the trial's log period, the gradient
    norms: for nsat-ring8's small MLPs 3-8 % over bare iterations (measured side by side)."""
    with torch_threads(threads):
        shape = data_shape(trial.experiment)
        images = torch.randint(0, 256, (1024, *shape), dtype=torch.uint8) if len(shape) == 3 else None
        labels = torch.zeros(1024, dtype=torch.long) if images is not None else None   # conditional trials read them
        session = Session(trial, images=images, labels=labels)
        log_every = log_period(trial.experiment.budget.iterations, session.losses.every)
        it = 0
        for it in range(1, WARMUP_ITERATIONS + 1):
            loop_iteration(session, it, log_every)
        session.losses.read()
        clock = own_clock(trial, threads)
        n, start, own = 0, time.perf_counter(), clock()
        timed_seconds = TIMED_SECONDS if timed_seconds is None else timed_seconds
        while n < MIN_TIMED_ITERATIONS or time.perf_counter() - start < timed_seconds:
            it, n = it + 1, n + 1
            loop_iteration(session, it, log_every)
        session.losses.read()   # waits for the device
        return (clock() - own) / n


def seconds_per_toy_evaluation(exp: Experiment, trials: list[Trial], threads: int) -> dict[str, float]:
    """Seconds of one toy2d evaluation for each method, as its trials make it (train.Evaluation):
    the study's evaluator (a conditional one with its label metrics), handed D's probability
    where the method's D has one (`probability_critic`: d_gap_mean_abs against D*, which a GAN's
    evaluation computes and a WGAN's does not), on eval.n_samples points drawn from the mixture
    itself: the metrics' cost (exact W1, the KDE) follows the cloud's shape, not the network, and
    this is the shape a trained G draws. Timed once with a critic and once without, at the median
    architecture, on `threads` threads; wall-clock seconds over the load factor measured just
    before (CPU work: see the docstring). Leaving the label metrics out priced
    conditional-ring8's evaluations at 0.77 s, where the evaluator with them took 1.1-1.3 s."""
    from ...data import mixture_modes, sample_mixture
    from ...evaluate.critic import probability_critic
    from ...trial import make_evaluator
    median = median_trial(trials)
    evaluator = make_evaluator(exp)
    centers, std = mixture_modes(exp.dataset)
    g = torch.Generator().manual_seed(0)

    def draw(n_or_labels):   # a conditional evaluator asks for given labels (modes) too
        if isinstance(n_or_labels, int):
            return sample_mixture(exp.dataset, n_or_labels, g)
        return centers[n_or_labels.cpu()] + std * torch.randn(len(n_or_labels), 2, generator=g)
    critics = {}
    with torch_threads(threads):
        for method in dict.fromkeys(t.objective for t in trials):
            step = Session(Trial(exp, median.arch, method, median.seed)).step
            critics[method] = probability_critic(step) if evaluator.wants_critic else None
        evaluator.evaluate(draw)   # untimed: the first call imports the metrics' libraries (POT, scipy)
        load, seconds = load_factor(), {}
        for has_critic in sorted({c is not None for c in critics.values()}):
            critic = next(c for c in critics.values() if (c is not None) == has_critic)
            start = time.perf_counter()
            evaluator.evaluate(draw) if critic is None else evaluator.evaluate(draw, critic=critic)
            seconds[has_critic] = (time.perf_counter() - start) / load
    return {method: seconds[c is not None] for method, c in critics.items()}


def trial_overheads(trial: Trial, threads: int) -> dict:
    """A one-iteration run_trial of `trial` with its final evaluation only: the seconds of
    one evaluation and of everything outside training and evaluation (start-up). The
    evaluator's real side is prepared first: a sweep extracts it once and caches it. On a
    one-thread CPU trial the wall-clock figures are divided by the load factor measured just
    before (module docstring)."""
    from ...record import FAILED
    from ...train import run_trial
    from ...trial import make_evaluator
    exp = trial.experiment
    one = dataclasses.replace(exp, budget=dataclasses.replace(exp.budget, iterations=1),
                              eval=dataclasses.replace(exp.eval, every=0))
    evaluator = make_evaluator(exp)
    t0 = time.perf_counter()
    if hasattr(evaluator, "prepare"):
        evaluator.prepare()
    once = time.perf_counter() - t0
    load = load_factor() if own_clock(trial, threads) is time.thread_time else 1.0
    with torch_threads(threads):
        r = run_trial(Trial(one, trial.arch, trial.objective, trial.seed), n_grid=64)
    if r.status == FAILED:
        raise RuntimeError(f"the dry run's one-iteration trial failed: {(r.error or '').splitlines()[0]}")
    return {"evaluation_s": r.eval_time_s / load,
            "startup_s": max(0.0, r.wall_time_s - r.train_time_s - r.eval_time_s) / load,
            "real_side_once_s": once / load, "load_factor": load}


def median_trial(trials: list[Trial]) -> Trial:
    """The trial of the median architecture by G + D forward FLOPs (ties: the first listed)."""
    by_arch: dict = {}
    for t in trials:
        by_arch.setdefault(t.arch, t)
    ranked = sorted(by_arch.values(), key=lambda t: sum(forward_flops(t)))
    return ranked[len(ranked) // 2]


SPREAD_FOR_TWO_POINTS = 1.5   # an architecture this many times the FLOPs of the cheapest is timed too


def method_model(exp: Experiment, trials: list[Trial], method: str, threads: int, flops: dict,
                 timed_seconds: float | None = None) -> dict:
    """A method's seconds per iteration as overhead + FLOPs x seconds per FLOP, from timed
    iterations at the study's cheapest and its most expensive architecture (by the method's
    FLOPs). Why two: a small 2D MLP runs far below the FLOP rate of a large one (its time is
    Python, kernel launches and the optimizer, whatever its FLOPs), so one rate measured at
    the median architecture overprices the small ones and underprices the large. Where the
    architectures differ by less than SPREAD_FOR_TWO_POINTS in FLOPs, one point (the most
    expensive) and no overhead. Between the two points the line interpolates; noise that
    would make either term negative falls back to the mean time, or to a pure rate."""
    by_arch = {t.arch: t for t in trials if t.objective == method}
    ranked = sorted(by_arch.values(), key=lambda t: flops[(t.arch, method)])
    lo, hi = ranked[0], ranked[-1]
    f_lo, f_hi = flops[(lo.arch, method)], flops[(hi.arch, method)]

    seconds = {}

    def timed(t):
        seconds[t.arch] = _timed(exp, t.arch, method, t.seed, threads, timed_seconds)
        return seconds[t.arch]
    s_hi = timed(hi)
    overhead, per_flop = 0.0, s_hi / f_hi
    if f_hi >= SPREAD_FOR_TWO_POINTS * f_lo:
        s_lo = timed(lo)
        slope = (s_hi - s_lo) / (f_hi - f_lo)
        if slope <= 0:                        # no measurable growth with FLOPs: a constant time
            overhead, per_flop = (s_lo + s_hi) / 2, 0.0
        elif s_lo - slope * f_lo >= 0:
            overhead, per_flop = s_lo - slope * f_lo, slope
    return {"seconds_per_iteration": s_hi, "flop_per_iteration": f_hi, "gflop_per_s": f_hi / s_hi / 1e9,
            "overhead_s": overhead, "seconds_per_flop": per_flop, "timed_at": sorted({lo.arch.id, hi.arch.id}),
            "timed": seconds}


def _timed(exp: Experiment, arch, method: str, seed: int, threads: int, timed_seconds: float | None) -> float:
    probe = Trial(exp, arch, method, seed)
    return (seconds_per_iteration(probe, threads) if timed_seconds is None
            else seconds_per_iteration(probe, threads, timed_seconds))


ARCHS_TIMED_AT_MOST = 32   # architectures timed one by one (`arch_factors`); a larger space keeps the FLOP line


def arch_factors(exp: Experiment, trials: list[Trial], method: str, model: dict, threads: int, flops: dict,
                 timed_seconds: float | None = None) -> dict:
    """Architecture -> how much slower it runs than the FLOP line says, timed once under `method`
    (the study's first; the architectures timed for its line keep their timing). Batch norm and a
    nonlinearity cost time and hardly any FLOPs: on robustness2d-ring8 (8 architectures of one
    FLOP count) the architecture with batch norm in both nets and a softplus D trained 1.8 times
    as long as the one with neither, which the FLOP line priced alike (0.62-1.11 of the
    measured training time, 0.69 in all; 0.79-0.91 with the factor). Each trial's line is
    scaled by its architecture's factor, whatever its method: an architecture's extra layers
    cost every method alike. Beyond ARCHS_TIMED_AT_MOST architectures, none: the FLOP line
    alone."""
    archs = list(dict.fromkeys(t.arch for t in trials if t.objective == method))
    if len(archs) > ARCHS_TIMED_AT_MOST:
        return {}
    out = {}
    for arch in archs:
        seed = next(t.seed for t in trials if t.arch == arch and t.objective == method)
        measured = model["timed"].get(arch) or _timed(exp, arch, method, seed, threads, timed_seconds)
        line = model["overhead_s"] + flops[(arch, method)] * model["seconds_per_flop"]
        out[arch] = measured / line
    return out


def price(exp: Experiment, trials: list[Trial], threads: int, flops: dict | None = None,
          timed_seconds: float | None = None) -> dict:
    """Seconds of each trial as it would run here, one at a time on `threads` threads:
    {"per_trial": id -> {"training_s", "evaluation_s", "startup_s", "total_s"}, "per_method":
    method -> its measured rate, "overheads": the one-iteration trial's figures}."""
    evaluator = evaluator_name(exp)
    extractor = extractor_flops(evaluator)
    flops = flops or {}
    for t in trials:
        if (t.arch, t.objective) not in flops:
            flops[(t.arch, t.objective)] = iteration_flops(t)
    median = median_trial(trials)
    per_method = {m: method_model(exp, trials, m, threads, flops, timed_seconds)
                  for m in dict.fromkeys(t.objective for t in trials)}
    first = trials[0].objective
    factors = arch_factors(exp, trials, first, per_method[first], threads, flops, timed_seconds)
    overheads = trial_overheads(median, threads)
    toy_s = seconds_per_toy_evaluation(exp, trials, threads) if evaluator == "toy2d" else None
    n_evals = evaluations_per_trial(exp)
    g_median = forward_flops(median)[0]
    per_trial = {}
    g_of: dict = {}
    for t in trials:
        model = per_method[t.objective]
        training = (model["overhead_s"] + flops[(t.arch, t.objective)] * model["seconds_per_flop"]) \
            * factors.get(t.arch, 1.0) * exp.budget.iterations
        if toy_s is not None:
            one_eval = toy_s[t.objective]
        else:
            if t.arch not in g_of:
                g_of[t.arch] = forward_flops(t)[0]
            one_eval = overheads["evaluation_s"] * (g_of[t.arch] + extractor) / (g_median + extractor)
        evaluating = n_evals * one_eval
        per_trial[t.id] = {"objective": t.objective, "training_s": training, "evaluation_s": evaluating,
                           "one_evaluation_s": one_eval,
                           "startup_s": overheads["startup_s"],
                           "total_s": training + evaluating + overheads["startup_s"]}
    one_eval_mean = sum(x["one_evaluation_s"] for x in per_trial.values()) / max(len(per_trial), 1)
    return {"per_trial": per_trial, "per_method": per_method, "overheads": overheads, "median_trial": median.id,
            "seconds_per_evaluation": one_eval_mean, "arch_factors": factors,
            "evaluations_per_trial": n_evals, "toy_evaluation_s": toy_s, "threads": threads,
            "load_factor": overheads.get("load_factor", 1.0)}


def price_fields(p: dict, training_flop: float, slots: float) -> dict:
    """The summary's price fields: `price`'s figures in hours at the sweep's parallelism."""
    hours = {k: sum(x[k] for x in p["per_trial"].values()) / slots / 3600
             for k in ("training_s", "evaluation_s", "startup_s", "total_s")}
    trained = sum(x["training_s"] for x in p["per_trial"].values())
    toy_s, factors = p["toy_evaluation_s"], p["arch_factors"]
    return dict(
        rate_measured_on=p["median_trial"], measured_gflop_per_s=round(training_flop / trained / 1e9, 1),
        per_method={m: {"gflop_per_s": round(x["gflop_per_s"], 1),
                        "seconds_per_iteration": round(x["seconds_per_iteration"], 4),
                        "overhead_s_per_iteration": round(x["overhead_s"], 4)}
                    for m, x in p["per_method"].items()},
        seconds_per_evaluation=round(p["seconds_per_evaluation"], 3),
        startup_seconds_per_trial=round(p["overheads"]["startup_s"], 3),
        load_average_1m=round(os.getloadavg()[0], 2), load_factor=round(p["load_factor"], 2),
        parallel_trials=slots, estimated_training_hours=round(hours["training_s"], 2),
        estimated_evaluation_hours=round(hours["evaluation_s"], 2),
        estimated_startup_hours=round(hours["startup_s"], 2), estimated_hours=round(hours["total_s"], 2),
        **({"measured_seconds_per_evaluation": {m: round(x, 3) for m, x in toy_s.items()}}
           if toy_s is not None else {}),
        **({"architecture_factors": {"timed": len(factors), "min": round(min(factors.values()), 2),
                                     "max": round(max(factors.values()), 2)}} if factors else {}),
        note="training on each method's own cost line (overhead + FLOPs at a rate, from a few iterations "
             f"at the cheapest and the most expensive architecture after {WARMUP_ITERATIONS} of warm-up), "
             f"times each architecture's own factor (each timed once, up to {ARCHS_TIMED_AT_MOST}), evaluation "
             + ("(toy2d metrics timed on the mixture's own sample, with D's probability where a method's D "
                "has one)" if toy_s is not None else "timed through the evaluator at eval.n_samples")
             + ", per-trial start-up; Ray and MLflow not priced; measured on this machine, one trial at a "
               "time: on a CPU a one-thread trial's own CPU time, the wall-clock parts divided by the load "
               "factor (how much slower the wall clock ran than a busy thread while timed)")


def dry_run(exp: Experiment, trials: list[Trial], resources, cluster: dict, thresholds: list[float],
            out=sys.stdout) -> dict:
    # per (architecture, method): a method's seeds differ in their id and seed only, and cost the
    # same, so a long seed list costs little more than one seed
    params: dict[tuple, dict] = {}
    for t in trials:
        if (t.arch, t.objective) not in params:
            params[(t.arch, t.objective)] = t.params()
        flat = params[(t.arch, t.objective)]
        print(json.dumps({**flat, "trial_id": t.id, "seed": t.seed}), file=out)
    cost = {(t.arch, t.objective): None for t in trials}
    evaluator = evaluator_name(exp)
    extractor = extractor_flops(evaluator)
    for t in trials:
        if cost[(t.arch, t.objective)] is None:
            cost[(t.arch, t.objective)] = (iteration_flops(t), evaluation_flops(t, extractor))
    per_iteration = {t.id: cost[(t.arch, t.objective)][0] for t in trials}
    total = sum(per_iteration.values()) * exp.budget.iterations
    # the real side's features: extracted once per sweep, cached (evaluate/fidelity.py)
    evaluating = sum(cost[(t.arch, t.objective)][1] for t in trials) + exp.eval.n_samples * extractor
    n_evals = evaluations_per_trial(exp)
    summary = {"trials": len(trials), "generator_iterations": len(trials) * exp.budget.iterations,
               "training_flop": int(total), "training_tflop": float(f"{total / 1e12:.3g}"),
               "evaluations_per_trial": n_evals, "evaluation_samples": exp.eval.n_samples, "evaluator": evaluator,
               "evaluation_flop": int(evaluating), "evaluation_tflop": float(f"{evaluating / 1e12:.3g}"),
               "thresholds": thresholds}
    if trials:
        peak, peak_trial, _ = largest(exp, trials)
        summary.update(peak_memory_gib=round(peak.host_bytes / GiB, 2), peak_memory_trial=peak_trial.id)
        p = price(exp, trials, exp.train.threads or exp.resources.cpus_per_trial,
                  {k: v[0] for k, v in cost.items()})
        summary.update(price_fields(p, total, parallel_trials(exp, cluster, resources)))
    print(json.dumps({"summary": summary}), file=out)
    return summary
