"""Sweeps end to end (Ray Tune on 2 CPUs): input checks, failure policy, kill and resume."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import harness_cmd, kill_session, run_harness

from harness import cli
from harness.config import from_dict
from harness.record import TrialRecord
from harness.study import results, store
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


def test_more_cpus_per_trial_than_the_cluster_exits_2_before_the_store(project, write_experiment, tiny_toy2d):
    path = write_experiment("greedy", **{**tiny_toy2d, "resources": {"cpus_per_trial": 64}})
    r = run_harness("sweep", path)
    assert r.returncode == 2 and "resources.cpus_per_trial" in r.stderr, r.stderr
    assert not (project / "mlflow.db").exists()


# ---- failure policy ------------------------------------------------------------------

def test_raising_trial_is_retried_then_failed_and_absurd_lr_diverges(project, write_experiment, tiny_fmnist):
    """gan with lr 1e12 diverges at once (a result); wgan-gp reaches its evaluation with a corrupt
    Inception weights file (a half-copied download: it exists, so the up-front check passes,
    but torch cannot load it), raises, is retried once and recorded failed."""
    corrupt = project / "inception-truncated.pth"
    corrupt.write_bytes(b"PK\x03\x04 this is not a complete torch checkpoint")
    settings = {**tiny_fmnist, "eval": {"evaluator": "inception", "n_samples": 50, "weights_path": str(corrupt)},
                "space": {**tiny_fmnist["space"], "n": 1},
                "budget": {"iterations": 6, "batch_size": 16},
                "objective_overrides": {"gan": {"lr_d": 1.0e12, "lr_g": 1.0e12}}}
    path = write_experiment("failures", **settings)
    r = run_harness("sweep", path)
    assert r.returncode == 0, r.stderr
    df = _trials_frame("failures").set_index("objective")
    assert df.loc["gan", "status"] == "diverged" and df.loc["gan", "run_status"] == "FINISHED"
    assert df.loc["wgan-gp", "status"] == "failed" and df.loc["wgan-gp", "run_status"] == "FAILED"
    assert df.loc["wgan-gp", "attempt"] == "2"                      # retried once (max_failures 1)
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


def test_kill_then_resume_runs_every_trial_exactly_once(project, write_experiment, tiny_toy2d, hold_trials,
                                                        monkeypatch):
    """Deterministic on any machine: the second architecture's trials are held (they cannot
    finish), so when the first architecture's are recorded the kill lands mid-sweep."""
    path = write_experiment("killme", **tiny_toy2d)
    trials = trials_of(from_dict(tiny_toy2d))
    held = [t.id for t in trials if t.arch == trials[-1].arch]
    free = {t.id for t in trials} - set(held)
    assert held and free
    gate = hold_trials(held)
    monkeypatch.setenv("HARNESS_RAY_NUM_CPUS", str(len(trials)))   # every trial starts; held ones wait
    log = project / "sweep.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(harness_cmd("sweep", path), stdout=fh, stderr=fh, start_new_session=True)
    try:
        _wait_until(lambda: "trials (" in log.read_text(), proc, log)    # the store exists
        c = _client()
        exp_id = store.find_experiment(c, "killme").experiment_id
        finished = lambda: {r.data.tags["trial_id"] for r in store.children(c, exp_id)   # noqa: E731
                            if r.info.status == "FINISHED"}
        _wait_until(lambda: finished() == free, proc, log)
        running = {r.data.tags["trial_id"] for r in store.children(c, exp_id) if r.info.status == "RUNNING"}
        assert running == set(held), "the held trials should be running, waiting at the gate"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        kill_session(proc.pid, signal.SIGKILL)   # the local Ray processes it started
    assert not gate.exists()
    before = _trials_frame("killme")
    assert set(before.loc[before["run_status"] == "FINISHED", "trial_id"]) == free

    monkeypatch.delenv("HARNESS_TEST_HOLD")      # the resumed sweep runs every trial freely
    r = run_harness("sweep", path, "--resume")
    assert r.returncode == 0, r.stderr
    assert f"{len(free)} already done, {len(held)} to run" in r.stderr
    df = _trials_frame("killme")
    assert sorted(df["trial_id"]) == sorted(t.id for t in trials)
    assert df["trial_id"].is_unique and set(df["run_status"]) == {"FINISHED"}
    finished_before = set(before.loc[before["run_status"] == "FINISHED", "run_id"])
    assert finished_before <= set(df["run_id"]), "a finished trial was rerun"
    assert all(r.info.status != "RUNNING" for r in _all_runs("killme"))

    r = run_harness("report", "killme")
    assert r.returncode == 0, r.stderr
    csv = pd.read_csv(project / "results" / "killme" / "trials.csv")
    assert len(csv) == len(trials) and csv["trial_id"].is_unique

    # the same sweep again without --resume is refused; a changed file is refused by name
    r = run_harness("sweep", path)
    assert r.returncode == 2 and "--resume" in r.stderr
    changed = yaml.safe_load(Path(path).read_text())
    changed["budget"]["iterations"] = 999
    Path(path).write_text(yaml.safe_dump(changed))
    r = run_harness("sweep", path, "--resume")
    assert r.returncode == 2 and "budget.iterations: 80 -> 999" in r.stderr, r.stderr


@pytest.mark.parametrize("carried", [False, True], ids=["same machine", "carried to another"])
def test_kill_mid_trial_then_resume_continues_from_its_checkpoint(carried, project, write_experiment, tiny_toy2d,
                                                                   hold_trials, monkeypatch):
    """The trial is held right after its checkpoint at iteration 40 of 80 reached Tune's
    storage, then the sweep is killed; --resume continues it from there, and it ends with the
    metrics (and metric history) of the same trial run without interruption. Carried: the
    store goes through `store export` / `store import` to a new directory and a new sqlite
    file, and the original checkpoint is deleted, so only the carried copy can be resumed."""
    settings = {**tiny_toy2d, "objectives": ["gan"], "space": {**tiny_toy2d["space"], "n": 1},
                "eval": {**tiny_toy2d["eval"], "every": 40}, "train": {"threads": 1, "checkpoint_every": 40}}
    path = write_experiment("midtrial", **settings)
    r = run_harness("sweep", path, "--name", "uninterrupted")
    assert r.returncode == 0, r.stderr
    [(trial_id, whole)] = [(t, _trials_frame("uninterrupted").set_index("trial_id").loc[t])
                           for t in _trials_frame("uninterrupted")["trial_id"]]

    gate = hold_trials([trial_id], at="checkpoint")
    log = project / "sweep.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(harness_cmd("sweep", path), stdout=fh, stderr=fh, start_new_session=True)
    try:
        _wait_until(lambda: "trials (" in log.read_text(), proc, log)
        c = _client()
        exp_id = store.find_experiment(c, "midtrial").experiment_id
        tagged = lambda: [r.data.tags for r in store.children(c, exp_id) if "checkpoint" in r.data.tags]  # noqa: E731
        _wait_until(lambda: tagged(), proc, log)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        kill_session(proc.pid, signal.SIGKILL)
    [tags] = tagged()
    [killed_run_s] = store.sweep_run_seconds(c, store.parents(c, exp_id)[0])
    assert killed_run_s > 0, "the killed sweep run's wall time, logged while it ran"
    saved = Path(tags["checkpoint"])
    assert tags["checkpoint_iteration"] == "40" and (saved / "state.pt").is_file()
    assert str(saved).startswith(str(project)), "Tune's storage, under the project"

    monkeypatch.delenv("HARNESS_TEST_HOLD")
    if carried:
        r = run_harness("store", "export", "midtrial", project / "carried")
        assert r.returncode == 0 and "the checkpoints of 1 unfinished trials" in r.stdout, r.stderr
        shutil.rmtree(saved)
        home = project / "another"
        home.mkdir()
        monkeypatch.chdir(home)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        r = run_harness("store", "import", project / "carried")
        assert r.returncode == 0, r.stderr
    r = run_harness("sweep", path, "--resume")
    assert r.returncode == 0, r.stderr
    assert "1 to run, 1 from a checkpoint" in r.stderr
    resumed = _trials_frame("midtrial").set_index("trial_id").loc[trial_id]
    assert resumed["status"] == whole["status"] and int(resumed["resumed_from"]) == 40
    assert pd.isna(whole["resumed_from"])
    for metric in ("hq_share", "modes_covered", "w1_exact_2k", "loss_d", "loss_g"):
        assert resumed[metric] == whole[metric], metric
    history = lambda client, run_id: [(m.step, m.value) for m in client.get_metric_history(run_id, "loss_d")]  # noqa: E731
    c_resumed = _client()        # the imported store when carried, else the same one
    assert history(c_resumed, resumed["run_id"]) == history(c, whole["run_id"]), "the replayed history plus the rest"
    [parent] = store.parents(c_resumed, store.find_experiment(c_resumed, "midtrial").experiment_id)
    assert store.sweep_run_seconds(c_resumed, parent)[0] == killed_run_s
    assert len(store.sweep_run_seconds(c_resumed, parent)) == 2, "the killed run and the resume, each timed"
    run = c_resumed.get_run(resumed["run_id"])
    assert run.data.tags["resumed_from"] == "40" and run.data.tags["attempt"] == "1"
    assert "checkpoint" not in run.data.tags
    assert not saved.exists(), "a finished trial's checkpoints are removed"
    assert not list(project.glob(".ray_results/**/checkpoint_*")), "the uninterrupted run's too"
    if carried:
        assert not list((project / "another" / ".ray_results" / "carried").glob("*/state.pt")), \
            "the imported copy is removed once the trial finished"


def test_a_trial_retried_by_tune_continues_from_its_checkpoint(project, write_experiment, tiny_toy2d, hold_trials):
    """The trial raises right after its checkpoint at 40 of 80; Tune retries it (max_failures
    1) from that checkpoint, and the retried attempt says so."""
    settings = {**tiny_toy2d, "objectives": ["gan"], "space": {**tiny_toy2d["space"], "n": 1},
                "train": {"threads": 1, "checkpoint_every": 40}}
    path = write_experiment("retried", **settings)
    [trial] = trials_of(from_dict(settings))
    gate = hold_trials([trial.id], at="crash")
    r = run_harness("sweep", path)
    assert r.returncode == 0, r.stderr
    assert gate.exists(), "the first attempt crashed"
    row = _trials_frame("retried").set_index("trial_id").loc[trial.id]
    assert row["status"] != "failed" and row["attempt"] == "2" and int(row["resumed_from"]) == 40
    assert "test crash after a checkpoint" in _client().get_run(row["run_id"]).data.tags["previous_error"]
    assert not list(project.glob(".ray_results/**/checkpoint_*")), "removed once the retry finished"


def test_dry_run_prints_every_trial_and_a_price_and_writes_nothing(project, write_experiment, tiny_toy2d):
    import json
    settings = {**tiny_toy2d, "objectives": ["gan", "sngan"], "seeds": [0, 1],
                "space": {**tiny_toy2d["space"], "restrict": {**tiny_toy2d["space"]["restrict"], "norm_d": [True]}}}
    path = write_experiment("priced", **settings)
    r = run_harness("sweep", path, "--dry-run")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    trials, summary = lines[:-1], lines[-1]["summary"]
    assert sorted(t["trial_id"] for t in trials) == sorted(t.id for t in trials_of(from_dict(settings)))
    by_objective = {t["objective"]: t for t in trials}
    assert by_objective["gan"]["applied.d_norm"] == "batch" and by_objective["gan"]["applied.d_weight_decay"] == 1e-3
    assert by_objective["sngan"]["applied.d_norm"] == "none" and by_objective["sngan"]["applied.d_weight_decay"] == 0
    assert by_objective["gan"]["train.init"] == "dcgan"
    assert summary["trials"] == len(trials) and summary["training_flop"] > 0 and summary["measured_gflop_per_s"] > 0
    assert {p.name for p in project.iterdir()} == {"priced.yaml"}


def test_relative_thresholds_are_fractions_of_the_real_score(project, write_experiment, tiny_toy2d):
    """ring8's real samples cover all 8 modes, so 0.5 x real = 4 modes and 0.99 x real = 7.92."""
    settings = {**tiny_toy2d, "objectives": ["gan"], "space": {**tiny_toy2d["space"], "n": 1},
                "budget": {"iterations": 20, "batch_size": 64}, "thresholds": [0.5, 0.99],
                "thresholds_relative": True}
    path = write_experiment("relative", **settings)
    r = run_harness("sweep", path)
    assert r.returncode == 0, r.stderr
    assert "real data's score 8: thresholds [4.0, 7.92]" in r.stderr
    c = _client()
    parent = store.parents(c, store.find_experiment(c, "relative").experiment_id)[0]
    assert float(parent.data.params["real_score"]) == 8.0
    assert {"success/gan/4", "success/gan/7.92"} <= set(parent.data.metrics)
    r = run_harness("report", "relative")
    assert r.returncode == 0, r.stderr
    assert "0.5 x real = 4" in (project / "results" / "relative" / "report.md").read_text()


def test_dry_run_times_a_conditional_image_trial(tiny_fmnist):
    """The dry run's random images come with labels, which a conditional trial reads."""
    from harness.study.sweep.dry_run import seconds_per_iteration
    trial = trials_of(from_dict({**tiny_fmnist, "conditional": True}))[0]
    assert seconds_per_iteration(trial, threads=1) > 0


def test_past_wall_times_read_every_recorded_trial_of_the_sweep(project):
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
