"""The recorder callback: a trial's record reaches MLflow before its checkpoint is deleted, so an
MLflow failure at that moment leaves a checkpoint --resume can continue from; no callback
raises into Tune, and a store call that fails once is retried; the progress line's estimate."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from ray import tune
from sweep_fakes import made_store, store_template  # noqa: F401 - fixtures

from harness.config import from_dict
from harness.record import TrialRecord
from harness.study import store, store_retry
from harness.study.sweep.callbacks import ProgressLine, Recorder, TrialStates
from harness.trial import trials_of


@pytest.fixture
def finishing_trial(project, made_store):
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


@pytest.fixture
def no_waits(monkeypatch):
    """The store's retries without their waits."""
    monkeypatch.setattr(store_retry, "RETRY_DELAYS_S", (0.0, 0.0, 0.0))


def test_an_mlflow_failure_while_recording_keeps_the_checkpoint_for_resume(finishing_trial, monkeypatch, no_waits,
                                                                           capsys):
    """The store refuses every try: the callback does not raise into Tune (which would fail the
    trial or stop the sweep); the run still points at its checkpoint for --resume, and the
    record is tried again at the end of the run, where a store that came back takes it."""
    client, exp_id, recorder, rtrial, ckpt_dir = finishing_trial
    tid = rtrial.config["trial"]["trial_id"]
    real = client.set_terminated

    def locked(*args, **kwargs):
        raise RuntimeError("database is locked")
    monkeypatch.setattr(client, "set_terminated", locked)
    recorder.on_trial_complete(0, [], rtrial)
    assert "could not record its result" in capsys.readouterr().err
    assert (ckpt_dir / "state.pt").read_bytes() == b"state at 40"
    [run] = store.children(client, exp_id)
    parent_id = run.data.tags["mlflow.parentRunId"]
    assert run.info.status == "RUNNING" and store.answered_trials(client, exp_id, parent_id) == {}
    assert store.latest_checkpoints(client, exp_id, parent_id, {}) == {tid: {"path": str(ckpt_dir), "iteration": 40}}
    assert recorder.states[tid] == "ok", "the progress line counts it done"

    recorder.on_experiment_end([])                        # still refused: --resume's turn
    assert "runs them again from their checkpoints" in capsys.readouterr().err
    monkeypatch.setattr(client, "set_terminated", real)
    recorder.on_experiment_end([])                        # the store is back
    [run] = store.children(client, exp_id)
    assert run.info.status == "FINISHED" and run.data.tags["status"] == "ok" and "checkpoint" not in run.data.tags
    assert store.answered_trials(client, exp_id, parent_id) == {tid: run.info.run_id}
    assert not ckpt_dir.exists()


def test_a_store_call_that_fails_once_costs_a_retry_not_the_trial(finishing_trial, monkeypatch, no_waits, capsys):
    """log_batch (metrics, params and tags all go through it) fails once while the result is
    written: retried with the same arguments, the trial ends recorded, each metric point once."""
    client, exp_id, recorder, rtrial, ckpt_dir = finishing_trial
    real, failures = client.log_batch, []

    def flaky(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise ConnectionError("tracking server restarting")
        return real(*args, **kwargs)
    monkeypatch.setattr(client, "log_batch", flaky)
    recorder.on_trial_complete(0, [], rtrial)
    assert failures and "log_batch failed (ConnectionError" in capsys.readouterr().err
    [run] = store.children(client, exp_id)
    assert run.info.status == "FINISHED" and run.data.tags["status"] == "ok"
    assert run.data.metrics["modes_covered"] == 8.0
    assert [m.step for m in client.get_metric_history(run.info.run_id, "modes_covered")] == [80]
    assert not ckpt_dir.exists()


def test_a_trial_whose_start_the_store_missed_is_still_recorded(project, made_store, monkeypatch, no_waits, capsys):
    """create_run fails on every try when Tune starts the trial: no run, no exception into Tune;
    when the trial completes its run is made then, with its record."""
    exp = from_dict({"name": "late", "dataset": "ring8", "objectives": ["gan"], "space": {"n": 1, "seed": 0}})
    client = store.get_client()
    exp_id = store.open_experiment(client, "late")
    pid = store.start_parent(client, exp_id, "late", "1/1", exp.to_dict(), 1, "late.yaml")
    [trial] = trials_of(exp)
    recorder = Recorder({trial.id: trial}, store.ChildRuns(client, exp_id, pid, "late", "1/1"), TrialStates())
    rtrial = SimpleNamespace(config={"trial": {"trial_id": trial.id}})
    real = client.create_run

    def down(*args, **kwargs):
        raise ConnectionError("no route to host")
    monkeypatch.setattr(client, "create_run", down)
    recorder.on_trial_start(0, [], rtrial)
    recorder.on_trial_result(0, [], rtrial, {"harness": {"points": [(10, {"loss_d": 1.0})]}})
    assert "could not record its start" in capsys.readouterr().err and store.children(client, exp_id) == []
    monkeypatch.setattr(client, "create_run", real)
    record = TrialRecord(trial.id, trial.arch.id, "gan", 0, status="diverged", iterations=80, params=trial.params())
    recorder.on_trial_result(0, [], rtrial, {"harness": {"record": record.to_dict()}})
    recorder.on_trial_complete(0, [], rtrial)
    [run] = store.children(client, exp_id)
    assert run.info.status == "FINISHED" and run.data.tags["status"] == "diverged"
    assert run.data.params["objective"] == "gan"


def test_errors_of_trials_stopped_by_a_signal_are_not_recorded_as_failures(finishing_trial):
    """SIGTERM from `timeout` or a scheduler reaches Ray's workers too, and their trials raise:
    while the sweep stops, that is not the trial's failure; the driver ends the run KILLED."""
    client, exp_id, recorder, rtrial, ckpt_dir = finishing_trial
    recorder.finals.clear()
    recorder.stopping = lambda: True
    recorder.on_trial_error(0, [], rtrial)
    recorder.on_trial_complete(0, [], rtrial)
    [run] = store.children(client, exp_id)
    assert run.info.status == "RUNNING" and run.data.tags["status"] == "running"
    recorder.runs.abort_all("KILLED")
    [run] = store.children(client, exp_id)
    assert run.info.status == "KILLED" and run.data.tags["status"] == "killed"


def test_time_left_prices_each_remaining_trial_at_its_own_methods_mean():
    """Two cheap gan trials are done (10 s, 14 s), one wgan-gp trial took 100 s; a gan trial has
    run 4 s, a wgan-gp trial 30 s, and one of each waits: (12 - 4) + (100 - 30) + 12 + 100 over
    the run's 2 slots. The sweep-wide mean (41 s a trial) would say 82 s."""
    kinds = {"g1": "gan", "g2": "gan", "g3": "gan", "g4": "gan", "w1": "wgan-gp", "w2": "wgan-gp", "w3": "wgan-gp"}
    states = TrialStates(kinds)
    assert states.seconds_left(now=0.0) is None
    for tid, took in {"g1": 10.0, "g2": 14.0, "w1": 100.0}.items():
        states[tid], states.took[tid] = "ok", took
    states["g3"], states.started["g3"] = "running", 96.0
    states["w2"], states.started["w2"] = "running", 70.0
    states.slots = 2
    assert states.seconds_left(now=100.0) == pytest.approx((8 + 70 + 12 + 100) / 2)
    states["w2"], states.started["w2"] = "running", -500.0     # over its method's mean: nothing left, not negative
    assert states.seconds_left(now=100.0) == pytest.approx((8 + 0 + 12 + 100) / 2)
    states["w2"] = states["g3"] = states["g4"] = "ok"      # between two trials the last one still has 2 slots
    assert states.seconds_left(now=100.0) == pytest.approx(100.0)  # but runs on one of them


def test_the_progress_line_shows_the_estimate_and_a_method_with_no_record_yet_costs_the_overall_mean():
    states = TrialStates({"g1": "gan", "s1": "sngan"})
    line = ProgressLine(states, "demo", total=2)
    assert "time left unknown" in line.line()
    states["g1"], states.took["g1"] = "ok", 90.0
    assert line.line().endswith("~1m30s left") and "1/2 done (ok 1)" in line.line()


def test_a_recorded_trial_leaves_its_wall_time_for_the_estimate(finishing_trial):
    client, exp_id, recorder, rtrial, ckpt_dir = finishing_trial
    tid = rtrial.config["trial"]["trial_id"]
    recorder.states.started[tid] -= 100.0          # as if it had started 100 s earlier
    recorder.on_trial_complete(0, [], rtrial)
    assert list(recorder.states.took) == [tid] and recorder.states.took[tid] >= 100.0


def test_a_resumed_run_prices_its_trials_from_the_sweeps_earlier_records_until_it_has_its_own():
    """Earlier runs recorded gan at 10 and 20 s, wgan-gp at 300 s: a fresh resumed run with one gan
    and one wgan-gp trial waiting has an estimate at once; this run's own gan time then wins."""
    states = TrialStates({"g": "gan", "w": "wgan-gp", "s": "sngan"}, prior={"gan": [10.0, 20.0], "wgan-gp": [300.0]})
    # sngan was never recorded anywhere: it costs the mean of every earlier trial, 110 s
    assert states.seconds_left(now=0.0) == pytest.approx(15.0 + 300.0 + 110.0)
    states["g"], states.took["g"] = "ok", 40.0
    assert states.seconds_left(now=0.0) == pytest.approx(300.0 + 40.0)   # sngan now at this run's mean, 40 s
    assert TrialStates({"g": "gan"}, prior={"gan": []}).seconds_left(now=0.0) is None



def test_after_a_node_dies_the_estimate_follows_the_iterations_left_and_the_lost_attempt_is_counted():
    """A gan trial took 100 s for 10,000 iterations. g2 reached iteration 2,000, its node died
    at 150 s (the attempt is lost), Tune restarted it at 200 s from its checkpoint at 2,000; at
    500 s it has run 300 s in this attempt, longer than a whole trial's 100 s: the estimate is
    the 8,000 iterations it has left (80 s), not the "nothing left" that time spent would say."""
    states = TrialStates({"g1": "gan", "g2": "gan"}, iterations=10_000)
    line = ProgressLine(states, "demo", total=2)
    states["g1"], states.took["g1"] = "ok", 100.0
    states.begin_attempt("g2", now=0.0)
    states.reached("g2", 2000)
    states["g2"] = "retrying"
    states.lose_attempt("g2", now=150.0)
    states.begin_attempt("g2", now=200.0)
    states.reached("g2", 2000, resumed=True)
    assert states.seconds_left(now=500.0) == pytest.approx(80.0)
    states.reached("g2", 9000)
    assert states.seconds_left(now=600.0) == pytest.approx(10.0)
    assert "1 attempt lost (2m30s, retried from checkpoints)" in line.line()


def test_before_any_trial_is_recorded_the_running_attempts_pace_gives_an_estimate():
    """t1 reached 250 of 1,000 iterations in 50 s: 150 s left for it, and t2, waiting, costs a
    whole trial at that pace (200 s); one slot."""
    states = TrialStates({"t1": "gan", "t2": "gan"}, iterations=1000)
    assert states.seconds_left(now=0.0) is None
    states.begin_attempt("t1", now=0.0)
    assert states.seconds_left(now=10.0) is None            # no point reported yet: nothing known
    states.reached("t1", 250)
    assert states.seconds_left(now=50.0) == pytest.approx(150.0 + 200.0)
