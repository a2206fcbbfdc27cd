"""The recorder callback: a trial's record reaches MLflow before its checkpoint is deleted, so an
MLflow failure at that moment leaves a checkpoint --resume can continue from."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from ray import tune

from harness.config import from_dict
from harness.record import TrialRecord
from harness.study import store
from harness.study.sweep.callbacks import Recorder, TrialStates
from harness.trial import trials_of


@pytest.fixture
def finishing_trial(project):
    """A child run tagged with its checkpoint at iteration 40, and the record Tune reported for it."""
    exp = from_dict({"name": "rec", "dataset": "ring8", "objectives": ["gan"], "space": {"n": 1, "seed": 0}})
    client = store.get_client()
    exp_id = store.open_experiment(client, "rec")
    pid = store.start_parent(client, exp_id, "rec", "1/1", exp.to_dict(), 1, "rec.yaml")
    runs = store.ChildRuns(client, exp_id, pid, "rec", "1/1")
    [trial] = trials_of(exp)
    ckpt_dir = project / ".ray_results" / trial.id / "checkpoint_000000"
    ckpt_dir.mkdir(parents=True)
    (ckpt_dir / "state.pt").write_bytes(b"state at 40")
    recorder = Recorder({trial.id: trial}, runs, TrialStates())
    recorder.on_trial_start(0, [], SimpleNamespace(config={"trial": {"trial_id": trial.id}}))
    checkpoint = tune.Checkpoint.from_directory(str(ckpt_dir))
    checkpoint.set_metadata({"iteration": 40})
    rtrial = SimpleNamespace(config={"trial": {"trial_id": trial.id}})
    recorder.on_checkpoint(0, [], rtrial, checkpoint)
    record = TrialRecord(trial.id, trial.arch.id, trial.objective, trial.seed, status="ok", headline="modes_covered",
                         metrics={"modes_covered": 8.0}, iterations=80, wall_time_s=3.0, train_time_s=2.0,
                         eval_time_s=0.5, its_per_s=5.0, params=trial.params())
    recorder.on_trial_result(0, [], rtrial, {"harness": {"record": record.to_dict()}})
    return client, exp_id, recorder, rtrial, ckpt_dir


def test_a_recorded_trial_loses_its_checkpoint_files_and_its_pointer_to_them(finishing_trial):
    client, exp_id, recorder, rtrial, ckpt_dir = finishing_trial
    recorder.on_trial_complete(0, [], rtrial)
    [run] = store.children(client, exp_id)
    assert run.info.status == "FINISHED" and run.data.tags["status"] == "ok"
    assert "checkpoint" not in run.data.tags and "checkpoint_iteration" not in run.data.tags
    assert not ckpt_dir.exists()


def test_an_mlflow_failure_while_recording_keeps_the_checkpoint_for_resume(finishing_trial, monkeypatch):
    client, exp_id, recorder, rtrial, ckpt_dir = finishing_trial
    def locked(*args, **kwargs):
        raise RuntimeError("database is locked")
    monkeypatch.setattr(client, "set_terminated", locked)
    with pytest.raises(RuntimeError, match="locked"):
        recorder.on_trial_complete(0, [], rtrial)
    assert (ckpt_dir / "state.pt").read_bytes() == b"state at 40"
    [run] = store.children(client, exp_id)
    parent_id = run.data.tags["mlflow.parentRunId"]
    assert run.info.status == "RUNNING" and store.answered_trials(client, exp_id, parent_id) == {}
    assert store.latest_checkpoints(client, exp_id, parent_id, {}) == {
        rtrial.config["trial"]["trial_id"]: {"path": str(ckpt_dir), "iteration": 40}}
