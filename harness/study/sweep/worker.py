"""The Tune trainable: rebuild the trial from plain dicts, train it, report metrics and its record.

Runs in a Ray worker process; it never touches MLflow. Metrics travel in batches (every
few seconds and at each evaluation): a Tune report is a round trip to the driver, too slow
to make at every log point of a fast trial.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ...config import from_dict
from ...data import get_dataset_spec, mixture_modes
from ...plots import save_samples
from ...space import Arch
from ...train import run_trial
from ...trial import Trial

FLUSH_EVERY_S = 3.0


def trial_config(trial: Trial, threads: int) -> dict:
    """What Tune's param_space holds for one trial: plain data that pickles anywhere."""
    return {"trial_id": trial.id, "arch": trial.arch.to_dict(), "objective": trial.objective,
            "seed": trial.seed, "threads": threads}


def samples_png(samples, dataset: str) -> bytes | None:
    """The final samples as PNG bytes: an image grid, or a 2D scatter with the mixture's modes."""
    if samples is None:
        return None
    modes = mixture_modes(dataset)[0] if get_dataset_spec(dataset).kind == "toy2d" else None
    with tempfile.TemporaryDirectory() as tmp:
        return save_samples(samples, Path(tmp) / "samples.png", modes=modes).read_bytes()


class MetricBatches:
    """Collects (step, metrics) points; sends them to the driver every few seconds and at evaluations."""

    def __init__(self, report):
        self.report, self.points, self.last = report, [], time.monotonic()

    def __call__(self, step: int, values: dict) -> None:
        self.points.append((int(step), dict(values)))
        if "eval_s" in values or time.monotonic() - self.last > FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        if self.points:
            self.report({"harness": {"points": list(self.points)}})
            self.points.clear()
        self.last = time.monotonic()


def run_one(config: dict, experiment: dict) -> None:
    """Tune trainable. A raised exception is Tune's to retry (max_failures), then recorded failed."""
    import torch
    from ray import tune

    config = config["trial"]
    exp = from_dict(experiment)
    trial = Trial(exp, Arch.from_dict(config["arch"]), config["objective"], config["seed"])
    if not exp.train.threads:
        torch.set_num_threads(max(1, int(config["threads"])))
    batches = MetricBatches(tune.report)
    record = run_trial(trial, on_metrics=batches, raise_errors=True)
    batches.flush()
    tune.report({"harness": {"record": record.to_dict(), "samples_png": samples_png(record.samples, exp.dataset)}})
