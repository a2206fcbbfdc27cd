"""`sweep --dry-run`: every check a real sweep makes, every trial's effective settings, a price.

Prints one JSON line per trial (the flat dict that becomes its MLflow params, including the
D norm and weight decay that actually apply), then one summary line: the trial count, the
training FLOPs (cost.iteration_flops, an estimate within about 25 %), this machine's rate
measured on one real trial, and the wall time that implies at the sweep's parallelism.
Evaluation, start-up and Ray are not priced. Writes nothing.
"""
from __future__ import annotations

import json
import sys
import time

import torch

from ...config import Experiment
from ...cost import iteration_flops
from ...train import Session
from ...trial import Trial, data_shape

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


def dry_run(exp: Experiment, trials: list[Trial], resources, cluster: dict, thresholds: list[float],
            out=sys.stdout) -> dict:
    for t in trials:
        print(json.dumps(t.params()), file=out)
    per_iteration = {t.id: iteration_flops(t) for t in trials}
    total = sum(per_iteration.values()) * exp.budget.iterations
    summary = {"trials": len(trials), "generator_iterations": len(trials) * exp.budget.iterations,
               "training_flop": int(total), "training_tflop": float(f"{total / 1e12:.3g}"),
               "thresholds": thresholds}
    if trials:
        median = sorted(trials, key=lambda t: per_iteration[t.id])[len(trials) // 2]
        seconds = seconds_per_iteration(median, exp.train.threads or exp.resources.cpus_per_trial)
        rate = per_iteration[median.id] / seconds
        slots = parallel_trials(exp, cluster, resources)
        summary.update(rate_measured_on=median.id, measured_gflop_per_s=round(rate / 1e9, 1),
                       parallel_trials=slots, estimated_hours=round(total / rate / slots / 3600, 2),
                       note="training only (evaluation, start-up and Ray not priced); rate of the median "
                            f"trial, {TIMED_ITERATIONS} iterations, on this machine")
    print(json.dumps({"summary": summary}), file=out)
    return summary


