"""The Tune trainable: rebuild the trial from plain dicts, train it, report metrics and its record.

Runs in a Ray worker process; it never touches MLflow. The experiment's plugins are imported
first (Ray shipped them: harness.plugins.runtime_env), and checked to be the code the driver
hashed, so that their names resolve when the trial is rebuilt. Metrics travel in batches (every
few seconds and at each evaluation): a Tune report is a round trip to the driver, too slow
to make at every log point of a fast trial.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from ... import checkpoint, plugins
from ...config import from_dict
from ...data import get_dataset_spec, mixture_modes
from ...plots import save_samples
from ...space import Arch
from ...train import run_trial
from ...trial import Trial, placement

FLUSH_EVERY_S = 3.0


def trial_config(trial: Trial, threads: int, resume_from: str | None = None) -> dict:
    """What Tune's param_space holds for one trial: plain data that pickles anywhere.
    resume_from: a checkpoint of an earlier sweep run (path or URI) to continue from."""
    return {"trial_id": trial.id, "arch": trial.arch.to_dict(), "objective": trial.objective,
            "seed": trial.seed, "threads": threads, "resume_from": resume_from}


def checkpoint_uri(cp) -> str:
    """Where a Tune checkpoint lives, as a path (local storage) or a URI another process can open."""
    kind = cp.filesystem.type_name
    return cp.path if kind == "local" else f"{'gs' if kind == 'gcs' else kind}://{cp.path}"


def load_state(config: dict) -> dict | None:
    """The state to continue from: Tune's own checkpoint of this trial when Tune retries it,
    else the earlier sweep run's (config["resume_from"]), else None. A checkpoint that has
    gone missing since (storage cleaned) means starting over, said on stderr."""
    from ray import tune
    source = tune.get_checkpoint()
    if source is None and config.get("resume_from"):
        source = tune.Checkpoint(config["resume_from"])
    if source is None:
        return None
    try:
        with source.as_directory() as folder:
            return checkpoint.load(folder)
    except FileNotFoundError as err:
        print(f"[{config['trial_id']}] checkpoint {config.get('resume_from')} is gone ({err}): starting over",
              file=sys.stderr)
        return None


def checkpoint_saver(batches: "MetricBatches"):
    """on_checkpoint for run_trial: the state goes into Tune's storage with the pending points."""
    from ray import tune

    def save(iteration: int, state: dict) -> None:
        with tempfile.TemporaryDirectory() as folder:
            checkpoint.save(state, folder)
            cp = tune.Checkpoint.from_directory(folder)
            cp.set_metadata({"iteration": iteration})
            batches.flush(checkpoint=cp)
    return save


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

    def flush(self, checkpoint=None) -> None:
        if self.points or checkpoint is not None:
            self.report({"harness": {"points": list(self.points)}}, **({"checkpoint": checkpoint} if checkpoint else {}))
            self.points.clear()
        self.last = time.monotonic()


def run_one(config: dict, experiment: dict) -> None:
    """Tune trainable. A raised exception is Tune's to retry (max_failures), then recorded failed."""
    import torch
    from ray import tune

    config = config["trial"]
    plugins.activate(experiment)   # before the names they register are looked up
    exp = from_dict(experiment)
    trial = Trial(exp, Arch.from_dict(config["arch"]), config["objective"], config["seed"])
    if not exp.train.threads:
        torch.set_num_threads(max(1, int(config["threads"])))
    # what `auto` became on this worker (device, precision): params the driver cannot know
    tune.report({"harness": {"params": trial.placement_params(placement(exp))}})
    batches = MetricBatches(tune.report)
    state = load_state(config)
    if state is not None:
        tune.report({"harness": {"resumed_from": int(state["iteration"])}})
    record = run_trial(trial, on_metrics=batches, raise_errors=True, resume=state,
                       on_checkpoint=checkpoint_saver(batches))
    batches.flush()
    tune.report({"harness": {"record": record.to_dict(), "samples_png": samples_png(record.samples, exp.dataset)}})
