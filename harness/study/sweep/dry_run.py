"""`sweep --dry-run`: every check a real sweep makes, every trial's effective settings, a price.

Prints one JSON line per trial (the flat dict that becomes its MLflow params, including the
D norm and weight decay that actually apply), then one summary line: the trial count, the
training FLOPs (cost.iteration_flops, an estimate within about 25 %), the evaluation FLOPs
(eval.n_samples through G and the evaluator's network at every evaluation, cost.evaluation_flops;
toy2d's exact metrics have no network and are timed once here instead), this machine's rate
measured on one real trial, the wall time that implies at the sweep's parallelism, and the
largest trial's estimated peak memory (harness/memory.py). Start-up and Ray are not priced.
Writes nothing.
"""
from __future__ import annotations

import json
import sys
import time

import torch

from ...config import Experiment
from ...cost import evaluation_flops, evaluations_per_trial, extractor_flops, iteration_flops
from ...memory import GiB, largest
from ...train import Session
from ...trial import Trial, data_shape, evaluator_name

TIMED_ITERATIONS = 2


def parallel_trials(exp: Experiment, cluster: dict, resources) -> float:
    """How many trials run at once: CPU slots, or GPU shares where trials use GPUs."""
    cpu_slots = cluster.get("CPU", 1) // exp.resources.cpus_per_trial
    if isinstance(resources, dict) and "gpu" not in resources:
        return max(1, cpu_slots)
    return max(1, min(cpu_slots, cluster.get("GPU", 0) * exp.resources.trials_per_gpu))


def seconds_per_iteration(trial: Trial, threads: int) -> float:
    """One warm-up iteration, then the mean of TIMED_ITERATIONS, on random images of the data's shape."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        shape = data_shape(trial.experiment)
        images = torch.randint(0, 256, (1024, *shape), dtype=torch.uint8) if len(shape) == 3 else None
        labels = torch.zeros(1024, dtype=torch.long) if images is not None else None   # conditional trials read them
        session = Session(trial, images=images, labels=labels)
        session.iteration()
        start = time.perf_counter()
        for _ in range(TIMED_ITERATIONS):
            session.iteration()
        session.losses.read()   # waits for the device
        return (time.perf_counter() - start) / TIMED_ITERATIONS
    finally:
        torch.set_num_threads(before)


def seconds_per_toy_evaluation(exp: Experiment) -> float:
    """One toy2d evaluation (exact W1, KDE, mode counts) of eval.n_samples points drawn from
    the mixture itself: its cost hardly depends on the generator, and it has no network to count."""
    from ...data import sample_mixture
    from ...trial import make_evaluator
    evaluator = make_evaluator(exp)
    evaluator = evaluator.base if exp.conditional else evaluator   # the label metrics add a little
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    evaluator.evaluate(lambda n: sample_mixture(exp.dataset, n, g))
    return time.perf_counter() - start


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
        median = sorted(trials, key=lambda t: per_iteration[t.id])[len(trials) // 2]
        seconds = seconds_per_iteration(median, exp.train.threads or exp.resources.cpus_per_trial)
        rate = per_iteration[median.id] / seconds
        slots = parallel_trials(exp, cluster, resources)
        toy_s = seconds_per_toy_evaluation(exp) if evaluator == "toy2d" else 0.0
        train_h = total / rate / slots / 3600
        eval_h = (evaluating / rate + toy_s * n_evals * len(trials)) / slots / 3600
        summary.update(rate_measured_on=median.id, measured_gflop_per_s=round(rate / 1e9, 1),
                       parallel_trials=slots, estimated_training_hours=round(train_h, 2),
                       estimated_evaluation_hours=round(eval_h, 2), estimated_hours=round(train_h + eval_h, 2),
                       **({"measured_seconds_per_evaluation": round(toy_s, 3)} if toy_s else {}),
                       note="training and evaluation (its FLOPs at the training rate"
                            f"{'; toy2d metrics timed once: %.3g s per evaluation' % toy_s if toy_s else ''}); "
                            f"start-up and Ray not priced; rate of the median trial, {TIMED_ITERATIONS} "
                            "iterations, on this machine")
    print(json.dumps({"summary": summary}), file=out)
    return summary
