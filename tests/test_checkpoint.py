"""A trial resumed from a checkpoint ends exactly as one that was never interrupted."""
import json
import pickle

import pytest
import torch

from harness import checkpoint
from harness.config import from_dict
from harness.space import Arch
from harness.train import run_trial
from harness.trial import Trial

MLP = Arch(nonlin_g="relu", nonlin_d="lrelu", depth_g=4, depth_d=4, norm_g=True, norm_d=True,
           filters_g=32, filters_d=32)


class Crash(Exception):
    """Stands for the process dying right after a checkpoint reached storage."""


def toy_trial(method, iterations=60, every=20, eval_every=25, dataset="ring8", arch=MLP, extra=None):
    e = from_dict({"dataset": dataset, "objectives": [method],
                   "budget": {"iterations": iterations, "batch_size": 32},
                   "eval": {"n_samples": 300, "every": eval_every},
                   "objective_overrides": {method.split("+")[0]: {"lr_decay": "linear"}},
                   "train": {"threads": 1, "checkpoint_every": every}, **(extra or {})})
    return Trial(e, arch, method, 3)


def without_timings(points):
    """Metric points minus the wall-clock ones (its_per_s, eval_s), which no rerun repeats."""
    return json.dumps([(s, {k: v for k, v in m.items() if k not in ("its_per_s", "eval_s")}) for s, m in points])


def interrupted_then_resumed(trial, tmp_path, crash_at):
    """Run until the checkpoint at `crash_at` is on disk, 'crash', then resume from the file."""
    def save(iteration, state):
        checkpoint.save(state, tmp_path)
        if iteration == crash_at:
            raise Crash
    with pytest.raises(Crash):
        run_trial(trial, raise_errors=True, on_checkpoint=save)
    points = []
    record = run_trial(trial, on_metrics=lambda s, m: points.append((s, m)), resume=checkpoint.load(tmp_path))
    return record, points


@pytest.mark.parametrize("method", ["gan", "wgan-gp", "sngan", "gan+instance-noise:0.1", "fgan-js"])
def test_resumed_trial_matches_an_uninterrupted_one(method, tmp_path):
    """G, D (batch-norm statistics, spectral-norm vectors), Adam/RMSprop moments, the lr
    schedule, the penalty's and the remedy's random draws, the data and z streams: any one
    left out of the state changes the metrics after the resume point."""
    trial = toy_trial(method)
    points = []
    whole = run_trial(trial, on_metrics=lambda s, m: points.append((s, m)))
    resumed, resumed_points = interrupted_then_resumed(trial, tmp_path, crash_at=40)
    assert whole.status == resumed.status != "failed"
    assert resumed.resumed_from == 40 and whole.resumed_from is None
    assert json.dumps(resumed.history) == json.dumps(whole.history) and len(whole.history) == 3
    assert json.dumps(resumed.metrics) == json.dumps(whole.metrics)   # NaN-aware
    assert without_timings(resumed_points) == without_timings(points), "the replayed + new points differ"
    assert torch.equal(resumed.samples, whole.samples)


def test_a_conditional_trial_resumes_exactly(tmp_path):
    """G's label stream (conditional: true) is part of the state too."""
    trial = toy_trial("gan", extra={"conditional": True})
    whole = run_trial(trial)
    resumed, _ = interrupted_then_resumed(trial, tmp_path, crash_at=40)
    assert "on_requested_mode" in whole.metrics
    assert json.dumps(resumed.history) == json.dumps(whole.history)
    assert torch.equal(resumed.samples, whole.samples)


def test_an_image_trial_resumes_exactly(tmp_path):
    """DCGAN with batch norm on Fashion-MNIST: the image data stream and conv nets."""
    arch = Arch(nonlin_g="relu", nonlin_d="lrelu", depth_g=4, depth_d=4, norm_g=True, norm_d=True,
                filters_g=32, filters_d=32)
    trial = toy_trial("gan", iterations=6, every=3, eval_every=0, dataset="fashion_mnist", arch=arch,
                      extra={"data": {"limit": 256}, "eval": {"n_samples": 100, "evaluator": "fmnist-classifier"}})
    whole = run_trial(trial)
    resumed, _ = interrupted_then_resumed(trial, tmp_path, crash_at=3)
    assert resumed.resumed_from == 3 and json.dumps(resumed.metrics) == json.dumps(whole.metrics)
    assert torch.equal(resumed.samples, whole.samples)


def test_a_state_for_another_trial_or_format_is_refused(tmp_path):
    states = []
    run_trial(toy_trial("gan", iterations=20, every=10), raise_errors=True, on_checkpoint=lambda i, s: states.append(s))
    assert [s["iteration"] for s in states] == [10], "never at the last iteration: the record supersedes it"
    other = toy_trial("wgan-gp", iterations=20, every=10)
    with pytest.raises(ValueError, match="offered to trial"):
        run_trial(other, raise_errors=True, resume=states[0])
    with pytest.raises(ValueError, match="format"):
        run_trial(toy_trial("gan", iterations=20, every=10), raise_errors=True, resume={**states[0], "format": 0})


class Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_loading_never_runs_pickled_code(tmp_path):
    torch.save({"format": checkpoint.FORMAT, "x": Payload()}, tmp_path / checkpoint.FILENAME)
    with pytest.raises(pickle.UnpicklingError):
        checkpoint.load(tmp_path)


def test_schedule_by_iterations_by_time_and_off(monkeypatch):
    every10 = checkpoint.Schedule(every=10, every_s=600, total=30, enabled=True)
    assert [i for i in range(1, 31) if every10.due(i)] == [10, 20]
    assert not any(checkpoint.Schedule(10, 600, 30, enabled=False).due(i) for i in range(1, 31))
    assert not any(checkpoint.Schedule(0, 0, 30, enabled=True).due(i) for i in range(1, 31))
    clock = iter([0.0, 100.0, 700.0, 800.0])
    monkeypatch.setattr(checkpoint.time, "monotonic", lambda: next(clock))
    timed = checkpoint.Schedule(every=0, every_s=600, total=30, enabled=True)   # starts at t=0
    assert [timed.due(1), timed.due(2), timed.due(3)] == [False, True, False]


def test_size_and_seconds_are_measured():
    from harness.train import Session, start_record
    trial = toy_trial("gan", iterations=2)
    session = Session(trial)
    session.iteration()          # Adam creates its moments at the first step
    size, seconds = checkpoint.size_and_seconds(session, start_record(trial))
    params = sum(p.numel() for m in (session.step.G, session.step.D) for p in m.parameters())
    assert size > 3 * 4 * params, "weights plus two Adam moments each, in fp32"
    assert seconds > 0
