"""Sweeps end to end: input checks, refusals, the lease, signals, failure policy, kill and resume.

The fast tests run the real driver in-process (`harness.cli.main`) with Ray and training
stood in for (sweep_fakes.py): the plumbing. The slow ones (Ray Tune on 2 CPUs, real
trials, real signals and kill -9) check that the plumbing holds with Ray underneath.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import harness_cmd, kill_session, run_harness
from sweep_fakes import fake_sweep, made_store, store_template  # noqa: F401 - fixtures

from harness import cli
from harness.config import from_dict
from harness.record import TrialRecord
from harness.study import results, store
from harness.study.report.build import load_study
from harness.study.sweep import driver
from harness.study.sweep.lease import PREFIX as LEASE_PREFIX
from harness.study.sweep.lease import Lease
from harness.trial import trials_of


def _client():
    return store.get_client()


def _trials_frame(name):
    c = _client()
    return results.frame(store.read_records(c, store.find_experiment(c, name).experiment_id))


def _all_runs(name):
    """Every run of the study, deleted ones excluded, whatever its status."""
    c = _client()
    return store.search_all(c, store.find_experiment(c, name).experiment_id, "")


# ---- bad input: exit 2, nothing written --------------------------------------------------

BAD = {
    "unknown key": ({"budget": {"iterations": 5, "batchsize": 4}}, "budget.batchsize"),
    "unknown objective": ({"objectives": ["gan", "wgan-xx"]}, "objectives[1]"),
    "depth 7": ({"space": {"mode": "sample", "n": 1, "restrict": {"depth_g": [7]}}}, "space.restrict.depth_g"),
    "negative budget": ({"budget": {"iterations": -10}}, "budget.iterations"),
    "thresholds not numbers": ({"thresholds": [1.0, "high"]}, "thresholds[1]"),
    "unknown dataset": ({"dataset": "imagenet64"}, "dataset"),
    "missing dataset": ({"dataset": "imagenet32", "data": {"path": "/nonexistent/imagenet32"}}, "data.path"),
    "unknown published study": ({"reproduces": "someone2099"}, "reproduces"),
    "evaluator for other data": ({"eval": {"evaluator": "fmnist-classifier", "n_samples": 100}}, "eval.evaluator"),
    "nan threshold": ({"thresholds": [1.0, float("nan")]}, "thresholds[1]"),
    "infinite learning rate": ({"objective_overrides": {"gan": {"lr_d": float("inf")}}}, "objective_overrides.gan.lr_d"),
    "beta out of range": ({"objective_overrides": {"gan": {"beta2": 1.5}}}, "objective_overrides.gan.beta2"),
    "empty name": ({"name": ""}, "name"),
    "name with a slash": ({"name": "a/b"}, "name"),
    "name of dots": ({"name": ".."}, "name"),
    "name with a quote": ({"name": "it's"}, "name"),
    "negative seed": ({"seeds": [0, -1]}, "seeds"),
    "too few 2D samples": ({"eval": {"evaluator": "toy2d", "n_samples": 10}}, "eval.n_samples"),
    "metric the evaluator lacks": ({"success_metric": "fid5k_train_inception"}, "success_metric"),
    "unknown success rule": ({"success_rule": "lenient"}, "success_rule"),
    "unknown init": ({"train": {"init": "xavier"}}, "train.init"),
    "conditional with packing": ({"conditional": True, "objectives": ["gan", "gan+pack:2"]}, "objectives[1]"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_experiment_exits_2_and_writes_nothing(case, project, write_experiment, tiny_toy2d, capsys):
    settings, field = BAD[case]
    path = project / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", **tiny_toy2d, **settings}))
    assert cli.main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert field in err, err
    leftovers = {p.name for p in project.iterdir()} - {"bad.yaml"}
    assert not leftovers, f"written despite the bad file: {leftovers}"


@pytest.mark.parametrize("args,field", [(["--name", "../elsewhere"], "--name"), (["--shard", "3/2"], "--shard")])
def test_bad_command_line_exits_2_and_writes_nothing(args, field, project, write_experiment, tiny_toy2d, capsys):
    path = write_experiment("ok", **tiny_toy2d)
    assert cli.main(["sweep", str(path), *args]) == 2
    assert field in capsys.readouterr().err
    assert {p.name for p in project.iterdir()} == {"ok.yaml"}
    assert cli.main(["report", "../elsewhere"]) == 2 and not (project / "results").exists()


@pytest.fixture
def no_ray(monkeypatch):
    """Starting Ray fails the test: what it guards must not need Ray."""
    import ray

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started")
    monkeypatch.setattr(driver, "start_ray", refuse)
    monkeypatch.setattr(ray, "init", refuse)


def test_more_cpus_per_trial_than_the_machine_exits_2_before_the_store_and_ray(project, write_experiment, tiny_toy2d,
                                                                                no_ray, capsys):
    path = write_experiment("greedy", **{**tiny_toy2d, "resources": {"cpus_per_trial": 64}})
    assert cli.main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert "resources.cpus_per_trial" in err and "64" in err, err
    assert {p.name for p in project.iterdir()} == {"greedy.yaml"}


def _parents(name):
    c = _client()
    return store.parents(c, store.find_experiment(c, name).experiment_id)


def _state(name):
    """Every run of the sweep (deleted ones too) with its status and tags: to show nothing changed."""
    c = _client()
    exp = store.find_experiment(c, name)
    return sorted((r.info.run_id, r.info.status, tuple(sorted(r.data.tags.items())))
                  for r in c.search_runs([exp.experiment_id], run_view_type=3)), dict(c.get_experiment(exp.experiment_id).tags)


def test_refusals_of_an_existing_sweep_come_before_ray_and_change_nothing(project, write_experiment, tiny_toy2d,
                                                                          fake_sweep, made_store, capsys):
    """Issue 27: find_parent only reads, so a refused --resume, changed file or other split costs
    no Ray start-up. The fake stands in for Ray and training; its counters show neither ran."""
    path = write_experiment("again", **tiny_toy2d)
    assert cli.main(["sweep", str(path), "--no-report"]) == 0
    assert fake_sweep.ray_starts == 1 and len(fake_sweep.fitted) == 1
    before = _state("again")
    capsys.readouterr()
    assert cli.main(["sweep", str(path)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli.main(["sweep", str(path), "--resume", "--shard", "1/2"]) == 2
    assert "split as 1/1, not into 2 shards" in capsys.readouterr().err
    changed = yaml.safe_load(Path(path).read_text())
    changed["budget"]["iterations"] = 999
    Path(path).write_text(yaml.safe_dump(changed))
    assert cli.main(["sweep", str(path), "--resume"]) == 2
    assert "budget.iterations: 80 -> 999" in capsys.readouterr().err
    assert fake_sweep.ray_starts == 1 and len(fake_sweep.fitted) == 1
    assert _state("again") == before


def test_a_resume_with_nothing_left_to_run_starts_no_ray(project, write_experiment, tiny_toy2d, fake_sweep,
                                                         made_store, capsys):
    """Every trial recorded: --resume says so, rewrites the parent's counts and report, and
    starts neither Ray nor Tune (Ray's start-up is most of a small sweep's cost)."""
    path = write_experiment("complete", **tiny_toy2d)
    assert cli.main(["sweep", str(path), "--no-report"]) == 0
    capsys.readouterr()
    assert cli.main(["sweep", str(path), "--resume", "--no-report"]) == 0
    assert "4 trials (4 already done, 0 to run)" in capsys.readouterr().err
    assert fake_sweep.ray_starts == 1 and len(fake_sweep.fitted) == 1
    [parent] = _parents("complete")
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials/gan"] == 2


@pytest.mark.parametrize("resume", [False, True], ids=["two new sweeps", "two resumes"])
def test_a_sweep_another_driver_runs_is_refused_naming_it(resume, project, write_experiment, tiny_toy2d, fake_sweep,
                                                          made_store, capsys):
    """Two `--resume`s of one sweep started together both ran every trial. The lease held here
    stands for the other driver: this one exits 2 naming it, before Ray, writing nothing."""
    path = write_experiment("busy", **tiny_toy2d)
    if resume:
        assert cli.main(["sweep", str(path), "--no-report"]) == 0
    c = _client()
    other = Lease(c, store.open_experiment(c, "busy"), "busy", "1/1").acquire()
    try:
        before, starts = _state("busy"), fake_sweep.ray_starts
        capsys.readouterr()
        assert cli.main(["sweep", str(path), *(["--resume"] if resume else [])]) == 2
        err = capsys.readouterr().err
        assert "'busy' (shard 1/1) is already being run by" in err and f"pid {os.getpid()}" in err, err
        assert "expires at" in err and f"ps -p {os.getpid()}" in err
        assert fake_sweep.ray_starts == starts and _state("busy") == before
    finally:
        other.release()
    assert cli.main(["sweep", str(path), *(["--resume"] if resume else []), "--no-report"]) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, "twice"])
def test_a_signal_stops_the_sweep_its_runs_end_killed_and_resume_continues(sig, project, write_experiment, tiny_toy2d,
                                                                           fake_sweep, made_store, capsys):
    """SIGTERM (a scheduler, `timeout`) is treated as SIGINT: the trial running is ended KILLED,
    the recorded one kept, the parent KILLED, exit 128 + the signal and no "done"; --resume
    runs only what is left. Twice: a second SIGTERM while the sweep stops ends it at once."""
    path = write_experiment("stopped", **tiny_toy2d)
    number = signal.SIGTERM if sig == "twice" else sig
    handler_before = signal.getsignal(number)

    def send(runs, trial):
        if trial.id == fake_sweep.fitted[0][1]:          # while the second trial runs
            os.kill(os.getpid(), number)
            if sig == "twice":
                os.kill(os.getpid(), number)
    fake_sweep.during = send
    assert cli.main(["sweep", str(path)]) == 128 + number
    err = capsys.readouterr().err
    assert "] done;" not in err and f"stopped by {signal.Signals(number).name}" in err and "--resume" in err, err
    assert not (project / "results").exists(), "no report for a stopped sweep"
    assert signal.getsignal(number) is handler_before, "the caller's handler is back"
    [parent] = _parents("stopped")
    assert parent.info.status == "KILLED"
    df = _trials_frame("stopped").set_index("trial_id")
    first, second = fake_sweep.fitted[0][:2]
    assert df.loc[first, "run_status"] == "FINISHED" and df.loc[second, "run_status"] == "KILLED"
    assert df.loc[second, "status"] == "killed" and len(df) == 2

    fake_sweep.during = None
    assert cli.main(["sweep", str(path), "--resume", "--no-report"]) == 0
    assert fake_sweep.fitted[1] == fake_sweep.fitted[0][1:], "the recorded trial is not rerun"
    [parent] = _parents("stopped")
    df = _trials_frame("stopped")
    assert parent.info.status == "FINISHED" and df["trial_id"].is_unique and len(df) == 4
    assert set(df["run_status"]) == {"FINISHED"}


def test_a_failure_after_the_trials_ran_leaves_a_sweep_resume_finishes_without_retraining(
        project, write_experiment, tiny_toy2d, fake_sweep, made_store, monkeypatch, capsys):
    """A crash in aggregation once left the parent RUNNING and every --resume crashed the same
    way. Now the parent ends FAILED with the records kept, `report` rebuilds from them, and
    --resume (nothing to train) aggregates and finishes."""
    path = write_experiment("aggfail", **tiny_toy2d)
    real, calls = driver.aggregate_onto_parent, []

    def fails_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("aggregation bug")
        return real(*args, **kwargs)
    monkeypatch.setattr(driver, "aggregate_onto_parent", fails_once)
    assert cli.main(["sweep", str(path), "--no-report"]) == 1
    err = capsys.readouterr().err
    assert "RuntimeError: aggregation bug" in err and "--resume" in err and "] done;" not in err
    [parent] = _parents("aggfail")
    assert parent.info.status == "FAILED" and not any(k.startswith("success/") for k in parent.data.metrics)
    trained = fake_sweep.fitted[0]
    df = _trials_frame("aggfail")
    assert sorted(df["trial_id"]) == sorted(trained) and set(df["run_status"]) == {"FINISHED"}
    c = _client()
    assert not [k for k in c.get_experiment(parent.info.experiment_id).tags if k.startswith(LEASE_PREFIX)]

    _, frame, _, _ = load_study("aggfail")                  # what `report` rebuilds from
    assert sorted(frame["trial_id"]) == sorted(trained) and set(frame["status"]) == {"ok"}

    assert cli.main(["sweep", str(path), "--resume", "--no-report"]) == 0
    assert fake_sweep.fitted == [trained], "nothing retrained"
    [parent] = _parents("aggfail")
    assert parent.info.status == "FINISHED" and parent.data.metrics["success/gan/4"] == 2   # score 5 > 4


def test_relative_thresholds_reach_the_parent_run(project, write_experiment, tiny_toy2d, fake_sweep, made_store,
                                                  stand_in_floors, capsys):
    """ring8's real samples (the real evaluator) cover all 8 modes, so 0.5 x real = 4 modes and
    0.99 x real = 7.92: on the parent run and in the report; the stand-in trials score 5. (The
    real Ray sweeps of this module run absolute thresholds: the driver computes the real score
    before Ray starts, the same with Ray or without.)"""
    settings = {**tiny_toy2d, "objectives": ["gan"], "space": {**tiny_toy2d["space"], "n": 1},
                "thresholds": [0.5, 0.99], "thresholds_relative": True}
    path = write_experiment("relfast", **settings)
    assert cli.main(["sweep", str(path), "--no-report"]) == 0
    assert "real data's score 8: thresholds [4.0, 7.92]" in capsys.readouterr().err
    [parent] = _parents("relfast")
    assert float(parent.data.params["real_score"]) == 8.0
    assert parent.data.metrics["success/gan/4"] == 1 and parent.data.metrics["success/gan/7.92"] == 0
    assert cli.main(["report", "relfast"]) == 0
    assert "0.5 x real = 4" in (project / "results" / "relfast" / "report.md").read_text()


# ---- failure policy ------------------------------------------------------------------

@pytest.mark.slow
def test_raising_trial_is_retried_then_failed_and_absurd_lr_diverges(project, made_store, write_experiment,
                                                                     tiny_fmnist):
    """gan with lr 1e12 diverges at once (a result); wgan-gp reaches its evaluation with an
    Inception weights file that is a state dict of tensors but not Inception's (the up-front
    check reads it as weights and passes; the network refuses its keys when the trial
    evaluates), raises, is retried once and recorded failed."""
    import torch
    corrupt = project / "inception-wrong.pth"
    torch.save({"not_an_inception_layer.weight": torch.zeros(3)}, corrupt)
    settings = {**tiny_fmnist, "eval": {"evaluator": "inception", "n_samples": 50, "weights_path": str(corrupt)},
                "space": {**tiny_fmnist["space"], "n": 1},
                "budget": {"iterations": 6, "batch_size": 16},
                "objective_overrides": {"gan": {"lr_d": 1.0e12, "lr_g": 1.0e12}}}
    path = write_experiment("failures", **settings)
    r = run_harness("sweep", path, "--no-report")
    assert r.returncode == 0, r.stderr
    df = _trials_frame("failures").set_index("objective")
    assert df.loc["gan", "status"] == "diverged" and df.loc["gan", "run_status"] == "FINISHED"
    assert df.loc["wgan-gp", "status"] == "failed" and df.loc["wgan-gp", "run_status"] == "FAILED"
    assert df.loc["wgan-gp", "attempt"] == 2                      # retried once (max_failures 1)
    assert df.loc["wgan-gp", "error"] and "Error" in df.loc["wgan-gp", "error"]
    runs = _all_runs("failures")
    assert all(r.info.status != "RUNNING" for r in runs)
    assert len([r for r in runs if r.data.tags.get("role") == "trial"]) == 2   # the first attempt is trashed
    assert "2 failed" not in r.stderr and "1 failed" in r.stderr          # the progress line counts it


# ---- kill and resume -----------------------------------------------------------------

def _wait_until(condition, proc, log: Path, timeout=600):
    """Poll `condition()` while the sweep runs; the sweep ending first is a failure."""
    start = time.time()
    while not condition():
        assert proc.poll() is None, "the sweep ended before it could be killed:\n" + log.read_text()
        assert time.time() - start < timeout, "timed out:\n" + log.read_text()
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.parametrize("group", [False, True], ids=["the driver", "its process group"])
def test_sigterm_stops_a_ray_sweep_killed_and_a_second_driver_is_refused_meanwhile(group, project, made_store,
                                                                                   write_experiment,
                                                                                   tiny_toy2d, hold_trials, monkeypatch):
    """SIGTERM to the driver (kill, a container stopping) or to its whole process group (what
    `timeout` and batch schedulers do: Ray's processes get it too) once ended in a Ray abort,
    exit 134, runs left RUNNING. Now: exit 143, no "done", the held trials' runs and the parent
    KILLED, and --resume runs the rest (after the group's signal, where Ray's processes got it
    too; the store the driver's signal leaves is the same). While the sweep runs, a second driver
    is refused."""
    settings = {**tiny_toy2d, "objectives": ["gan"]}          # two trials, one per architecture
    path = write_experiment("termed", **settings)
    trials = trials_of(from_dict(settings))
    held = [t.id for t in trials if t.arch == trials[-1].arch]
    free = {t.id for t in trials} - set(held)
    assert len(held) == len(free) == 1
    hold_trials(held)                                           # the project's 2 CPUs: both start
    log = project / "sweep.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(harness_cmd("sweep", path), stdout=fh, stderr=fh, start_new_session=True)
    try:
        _wait_until(lambda: "trials (" in log.read_text(), proc, log)
        c = _client()
        exp_id = store.find_experiment(c, "termed").experiment_id
        by_status = lambda status: {r.data.tags["trial_id"] for r in store.children(c, exp_id)  # noqa: E731
                                    if r.info.status == status}
        _wait_until(lambda: by_status("FINISHED") == free and by_status("RUNNING") == set(held), proc, log)
        r = run_harness("sweep", path, "--resume")
        assert r.returncode == 2 and f"pid {proc.pid}" in r.stderr and "already being run" in r.stderr, r.stderr
        (os.killpg if group else os.kill)(proc.pid, signal.SIGTERM)
        rc = proc.wait(timeout=180)
    finally:
        kill_session(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert rc == 143, text
    assert "] done;" not in text and "stopped by SIGTERM" in text, text
    [parent] = store.parents(c, exp_id)
    assert parent.info.status == "KILLED"
    df = _trials_frame("termed").set_index("trial_id")
    assert set(df.loc[held, "run_status"]) == {"KILLED"} and set(df.loc[held, "status"]) == {"killed"}
    assert set(df.loc[sorted(free), "run_status"]) == {"FINISHED"}
    if not group:
        return   # the store is the same after either signal; --resume runs once, after the harder one

    monkeypatch.delenv("HARNESS_TEST_HOLD")
    r = run_harness("sweep", path, "--resume", "--no-report")
    assert r.returncode == 0, r.stderr
    assert f"{len(free)} already done, {len(held)} to run" in r.stderr
    df = _trials_frame("termed")
    assert sorted(df["trial_id"]) == sorted(t.id for t in trials) and set(df["run_status"]) == {"FINISHED"}


def _uninterrupted(trial) -> dict:
    """The trial run without interruption, in this process (the sweep's worker runs the same
    run_trial, on one thread): its status, final metrics (the last loss point's too) and loss_d history."""
    from harness.device import torch_threads
    from harness.train import run_trial
    points = []
    with torch_threads(1):
        record = run_trial(trial, on_metrics=lambda step, metrics: points.append((step, metrics)))
    losses = [m for _, m in points if "loss_d" in m]
    return {"status": record.status, **record.metrics, "loss_d": losses[-1]["loss_d"], "loss_g": losses[-1]["loss_g"],
            "history": [(step, m["loss_d"]) for step, m in points if "loss_d" in m]}


def _resumed_like_uninterrupted(c, trial_id: str, whole: dict, killed_run_s: float) -> None:
    """After --resume in the store `c`: the trial continued from iteration 40 and ended with the
    uninterrupted run's metrics and metric history; the killed run's wall time is kept."""
    resumed = _trials_frame("midtrial").set_index("trial_id").loc[trial_id]
    assert resumed["status"] == whole["status"] and int(resumed["resumed_from"]) == 40
    for metric in ("hq_share", "modes_covered", "w1_exact_2k", "loss_d", "loss_g"):
        assert resumed[metric] == whole[metric], metric
    history = [(m.step, m.value) for m in c.get_metric_history(resumed["run_id"], "loss_d")]
    assert history == whole["history"], "the replayed history plus the rest"
    [parent] = store.parents(c, store.find_experiment(c, "midtrial").experiment_id)
    assert store.sweep_run_seconds(c, parent)[0] == killed_run_s
    assert len(store.sweep_run_seconds(c, parent)) == 2, "the killed run and the resume, each timed"
    run = c.get_run(resumed["run_id"])
    assert run.data.tags["resumed_from"] == "40" and run.data.tags["attempt"] == "1"
    assert "checkpoint" not in run.data.tags


@pytest.mark.slow
def test_kill_mid_trial_then_resume_continues_from_its_checkpoint(project, made_store, write_experiment, tiny_toy2d,
                                                                   hold_trials, monkeypatch):
    """Deterministic on any machine: of two trials (seeds 0 and 1), seed 1 is held right after
    its checkpoint at iteration 40 of 80 reached Tune's storage, while seed 0 raises right after
    its own, is retried by Tune (max_failures 1) from that checkpoint, says so, and finishes;
    once it is recorded FINISHED, only the driver is killed (kill -9), mid-sweep. --resume at once
    takes the dead driver's lease over (same machine, its pid gone; the Ray processes it left
    are not in the new one's way), runs only the unfinished trial, from its checkpoint: it ends
    with the metrics (and metric history) of the same trial run without interruption (in this
    process: the run_trial a worker runs), the finished trial is not rerun, every trial is
    recorded exactly once and the report builds.
    Twice from the one kill: on the same machine, and carried: the killed store goes through
    `store export` before that resume and `store import` after it, to a new directory and a new
    sqlite file, where the original checkpoint is gone (the finished trial's checkpoints are
    removed), so only the carried copy can be resumed."""
    settings = {**tiny_toy2d, "objectives": ["gan"], "space": {**tiny_toy2d["space"], "n": 1}, "seeds": [0, 1],
                "eval": {**tiny_toy2d["eval"], "every": 40}, "train": {"threads": 1, "checkpoint_every": 40}}
    path = write_experiment("midtrial", **settings)
    [held] = [t.id for t in trials_of(from_dict(settings)) if t.seed == 1]
    [free] = [t.id for t in trials_of(from_dict(settings)) if t.seed == 0]
    whole = _uninterrupted(next(t for t in trials_of(from_dict(settings)) if t.id == held))

    hold_trials([held], at="checkpoint", crash=[free])
    log = project / "sweep.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(harness_cmd("sweep", path), stdout=fh, stderr=fh, start_new_session=True)
    try:
        _wait_until(lambda: "trials (" in log.read_text(), proc, log)
        c = _client()
        exp_id = store.find_experiment(c, "midtrial").experiment_id
        tagged = lambda: [r.data.tags for r in store.children(c, exp_id)   # noqa: E731
                          if "checkpoint" in r.data.tags and r.info.status == "RUNNING"]
        finished = lambda: {r.data.tags["trial_id"] for r in store.children(c, exp_id)   # noqa: E731
                            if r.info.status == "FINISHED"}
        _wait_until(lambda: tagged() and finished() == {free}, proc, log)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        kill_session(proc.pid, signal.SIGKILL)   # the local Ray processes the killed driver left
    [tags] = tagged()
    assert tags["trial_id"] == held
    [killed_run_s] = store.sweep_run_seconds(c, store.parents(c, exp_id)[0])
    assert killed_run_s > 0, "the killed sweep run's wall time, logged while it ran"
    saved = Path(tags["checkpoint"])
    assert tags["checkpoint_iteration"] == "40" and (saved / "state.pt").is_file()
    assert str(saved).startswith(str(project)), "Tune's storage, under the project"
    before = _trials_frame("midtrial").set_index("trial_id")
    assert before.loc[free, "run_status"] == "FINISHED" and before.loc[held, "run_status"] == "RUNNING"
    retried = before.loc[free]                     # crashed after its checkpoint, retried by Tune from it
    assert retried["status"] != "failed" and retried["attempt"] == 2 and int(retried["resumed_from"]) == 40
    assert "test crash after a checkpoint" in c.get_run(retried["run_id"]).data.tags["previous_error"]

    monkeypatch.delenv("HARNESS_TEST_HOLD")
    monkeypatch.delenv("HARNESS_TEST_CRASH")
    r = run_harness("store", "export", "midtrial", project / "carried")
    assert r.returncode == 0 and "the checkpoints of 1 unfinished trials" in r.stdout, r.stderr

    r = run_harness("sweep", path, "--resume", "--no-report")          # on the same machine
    assert r.returncode == 0, r.stderr
    assert "2 trials (1 already done, 1 to run, 1 from a checkpoint)" in r.stderr
    assert "took over the lease of a driver that is gone" in r.stderr
    _resumed_like_uninterrupted(c, held, whole, killed_run_s)
    df = _trials_frame("midtrial")
    assert sorted(df["trial_id"]) == sorted([held, free]) and df["trial_id"].is_unique
    assert set(df["run_status"]) == {"FINISHED"}
    assert before.loc[free, "run_id"] in set(df["run_id"]), "the finished trial was rerun"
    assert all(r.info.status != "RUNNING" for r in _all_runs("midtrial"))
    assert not saved.exists(), "a finished trial's checkpoints are removed"
    assert not list(project.glob(".ray_results/**/checkpoint_*")), "nor any other of the sweep's"
    r = run_harness("report", "midtrial")
    assert r.returncode == 0, r.stderr
    csv = pd.read_csv(project / "results" / "midtrial" / "trials.csv")
    assert sorted(csv["trial_id"]) == sorted([held, free])

    home = project / "another"                                          # carried to another
    home.mkdir()
    monkeypatch.chdir(home)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    r = run_harness("store", "import", project / "carried")
    assert r.returncode == 0, r.stderr
    r = run_harness("sweep", path, "--resume", "--no-report")
    assert r.returncode == 0, r.stderr
    assert "2 trials (1 already done, 1 to run, 1 from a checkpoint)" in r.stderr
    _resumed_like_uninterrupted(_client(), held, whole, killed_run_s)
    assert not list((home / ".ray_results" / "carried").glob("*/state.pt")), \
        "the imported copy is removed once the trial finished"


@pytest.fixture
def caches(tmp_path_factory, monkeypatch):
    """Empty data and feature caches outside the project, to see what a command puts there."""
    root = tmp_path_factory.mktemp("caches")
    monkeypatch.setenv("HARNESS_DATA_ROOT", str(root / "data"))
    monkeypatch.setenv("HARNESS_CACHE", str(root / "cache"))
    return root


def test_dry_run_prints_every_trial_and_a_price_starts_no_ray_and_writes_nothing(project, write_experiment, tiny_toy2d,
                                                                                  no_ray, caches, capsys):
    settings = {**tiny_toy2d, "objectives": ["gan", "sngan"], "seeds": [0, 1],
                "space": {**tiny_toy2d["space"], "restrict": {**tiny_toy2d["space"]["restrict"], "norm_d": [True]}}}
    path = write_experiment("priced", **settings)
    assert cli.main(["sweep", str(path), "--dry-run"]) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    trials, summary = lines[:-1], lines[-1]["summary"]
    assert sorted(t["trial_id"] for t in trials) == sorted(t.id for t in trials_of(from_dict(settings)))
    by_objective = {t["objective"]: t for t in trials}
    assert by_objective["gan"]["applied.d_norm"] == "batch" and by_objective["gan"]["applied.d_weight_decay"] == 1e-3
    assert by_objective["sngan"]["applied.d_norm"] == "none" and by_objective["sngan"]["applied.d_weight_decay"] == 0
    assert by_objective["gan"]["train.init"] == "dcgan"
    assert summary["trials"] == len(trials) and summary["training_flop"] > 0 and summary["measured_gflop_per_s"] > 0
    assert summary["parallel_trials"] == 2, "HARNESS_RAY_NUM_CPUS=2 read without Ray"
    assert {p.name for p in project.iterdir()} == {"priced.yaml"}
    assert not list(caches.rglob("*.*")) and "no Ray started" in err and "cached nothing" in err, err


def test_dry_run_lists_what_its_checks_cached(project, write_experiment, tiny_toy2d, no_ray, caches, monkeypatch,
                                              capsys):
    """A dataset the check downloads stays for the sweep; the dry run says so, file by file."""
    check = driver.check_inputs

    def downloading(path):
        (caches / "data" / "ring").mkdir(parents=True)
        (caches / "data" / "ring" / "train.bin").write_bytes(bytes(3 * 2**20))
        return check(path)
    monkeypatch.setattr(driver, "check_inputs", downloading)
    path = write_experiment("cached", **tiny_toy2d)
    assert cli.main(["sweep", str(path), "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "cached 1 files, 3.0 MB" in err and f"{(caches / 'data' / 'ring' / 'train.bin').resolve()} (3.0 MB)" in err, err


def test_dry_run_times_a_conditional_image_trial(tiny_fmnist):
    """The dry run's random images come with labels, which a conditional trial reads."""
    from harness.study.sweep.dry_run import seconds_per_iteration
    trial = trials_of(from_dict({**tiny_fmnist, "conditional": True}))[0]
    assert seconds_per_iteration(trial, threads=1) > 0


def test_past_wall_times_read_every_recorded_trial_of_the_sweep(project, made_store):
    from harness.study.sweep.driver import past_wall_times
    exp = from_dict({"name": "past", "dataset": "ring8", "objectives": ["gan", "wgan-gp"], "space": {"n": 2, "seed": 0}})
    client = store.get_client()
    exp_id = store.open_experiment(client, "past")
    pid = store.start_parent(client, exp_id, "past", "1/1", exp.to_dict(), 4, "x.yaml")
    runs = store.ChildRuns(client, exp_id, pid, "past", "1/1")
    took = {"gan": [12.0, 18.0], "wgan-gp": [90.0]}
    for t in trials_of(exp):
        runs.start(t.id, t.params())
    for t, seconds in zip([t for t in trials_of(exp) if t.objective == "gan"], took["gan"]):
        runs.finish(TrialRecord(t.id, t.arch.id, t.objective, t.seed, headline="is", metrics={"is": 1.0},
                                wall_time_s=seconds))
    first_wgan = next(t for t in trials_of(exp) if t.objective == "wgan-gp")
    runs.finish(TrialRecord(first_wgan.id, first_wgan.arch.id, "wgan-gp", 0, headline="is", metrics={"is": 1.0},
                            wall_time_s=90.0))
    # the other wgan-gp trial is still running: no outcome, no time
    assert past_wall_times(runs) == took
