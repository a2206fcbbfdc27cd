"""Sweeps: input checks, shards, failure policy, kill and resume (Ray Tune on 2 CPUs)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import harness_cmd, kill_session, run_harness

from harness import cli
from harness.config import from_dict
from harness.sweep import parse_shard, shard_trials


def _client():
    from harness.tracking import get_client
    return get_client()


def _children(name):
    from harness.tracking import children, experiment_id, runs_frame
    c = _client()
    return runs_frame(children(c, experiment_id(c, name)))


def _all_runs(name):
    """Every run of the study, deleted ones excluded, whatever its status."""
    from harness.tracking import experiment_id, search_all
    c = _client()
    return search_all(c, experiment_id(c, name), "")


# ---- shards --------------------------------------------------------------------------

def test_shards_partition_trials_and_keep_architectures_together(tiny_toy2d):
    exp = from_dict({**tiny_toy2d, "seeds": [0, 1]})
    trials = exp.trials()
    shards = [shard_trials(trials, i, 3) for i in (1, 2, 3)]
    assert sorted(t.id for s in shards for t in s) == sorted(t.id for t in trials)
    assert [t.id for t in shard_trials(exp.trials(), 2, 3)] == [t.id for t in shards[1]]  # deterministic
    for s in shards:   # each (arch, seed) group sits whole in one shard: pairs stay paired
        groups = {(t.arch.id, t.seed) for t in s}
        assert len(s) == len(groups) * len(exp.objectives)
    assert parse_shard(None) == (1, 1) and parse_shard("2/4") == (2, 4)
    for bad in ("0/2", "3/2", "x", "1/0"):
        with pytest.raises(cli.UsageError, match="--shard"):
            parse_shard(bad)


# ---- bad experiment files ------------------------------------------------------------

BAD = {
    "unknown key": ({"budget": {"iterations": 5, "batchsize": 4}}, "budget.batchsize"),
    "unknown objective": ({"objectives": ["gan", "wgan-xx"]}, "objectives[1]"),
    "depth 7": ({"space": {"mode": "sample", "n": 1, "restrict": {"depth_g": [7]}}}, "space.restrict.depth_g"),
    "negative budget": ({"budget": {"iterations": -10}}, "budget.iterations"),
    "thresholds not numbers": ({"thresholds": [1.0, "high"]}, "thresholds[1]"),
    "unknown dataset": ({"dataset": "imagenet64"}, "dataset"),
    "missing dataset": ({"dataset": "imagenet32", "data": {"path": "/nonexistent/imagenet32"}}, "data.path"),
    "unknown published study": ({"reproduces": "someone2099"}, "reproduces"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_experiment_exits_2_and_writes_nothing(case, project, write_experiment, tiny_toy2d, capsys):
    settings, field = BAD[case]
    path = write_experiment("bad", **{**tiny_toy2d, **settings})
    assert cli.main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert field in err, err
    leftovers = {p.name for p in project.iterdir()} - {"bad.yaml"}
    assert not leftovers, f"written despite the bad file: {leftovers}"


# ---- failure policy ------------------------------------------------------------------

def test_raising_trial_is_retried_then_failed_and_absurd_lr_diverges(project, write_experiment, tiny_fmnist):
    """gan with lr 1e6 diverges (a result); wgan-gp reaches its evaluation with a corrupt
    Inception weights file (a half-copied download: it exists, so the up-front check passes,
    but torch cannot load it), raises, is retried once and recorded failed."""
    corrupt = project / "inception-truncated.pth"
    corrupt.write_bytes(b"PK\x03\x04 this is not a complete torch checkpoint")
    settings = {**tiny_fmnist, "eval": {"evaluator": "inception", "n_samples": 50, "weights_path": str(corrupt)},
                "space": {**tiny_fmnist["space"], "n": 1},
                "budget": {"iterations": 6, "batch_size": 16},
                "objective_overrides": {"gan": {"lr_d": 1.0e6, "lr_g": 1.0e6}}}
    path = write_experiment("failures", **settings)
    r = run_harness("sweep", path)
    assert r.returncode == 0, r.stderr
    df = _children("failures").set_index("objective")
    assert df.loc["gan", "status"] == "diverged" and df.loc["gan", "run_status"] == "FINISHED"
    assert df.loc["wgan-gp", "status"] == "failed" and df.loc["wgan-gp", "run_status"] == "FAILED"
    assert df.loc["wgan-gp", "attempt"] == "2"                      # retried once (max_failures 1)
    assert df.loc["wgan-gp", "error"] and "Error" in df.loc["wgan-gp", "error"]
    runs = _all_runs("failures")
    assert all(r.info.status != "RUNNING" for r in runs)
    assert len([r for r in runs if r.data.tags.get("role") == "trial"]) == 2   # the first attempt is trashed
    assert "2 failed" not in r.stderr and "1 failed" in r.stderr          # the progress line counts it


# ---- kill and resume -----------------------------------------------------------------

def _wait_for_finished_child(name, proc, log: Path, timeout=300):
    from harness.tracking import children, experiment_id
    start = time.time()
    while "trials (" not in log.read_text():   # the sweep has created the store: safe to read it
        assert proc.poll() is None, log.read_text()
        assert time.time() - start < timeout
        time.sleep(0.5)
    c = _client()
    while time.time() - start < timeout:
        assert proc.poll() is None, "the sweep ended before it could be killed:\n" + log.read_text()
        if any(r.info.status == "FINISHED" for r in children(c, experiment_id(c, name))):
            return
        time.sleep(1)
    raise AssertionError("no trial finished in time")


def test_kill_then_resume_runs_every_trial_exactly_once(project, write_experiment, tiny_toy2d):
    path = write_experiment("killme", **tiny_toy2d)
    n_trials = len(from_dict(tiny_toy2d).trials())
    log = project / "sweep.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(harness_cmd("sweep", path), stdout=fh, stderr=fh, start_new_session=True)
    try:
        _wait_for_finished_child("killme", proc, log)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        kill_session(proc.pid, signal.SIGKILL)   # the local Ray processes it started
    before = _children("killme")
    assert len(before[before["run_status"] == "FINISHED"]) < n_trials, "killed too late to test resume"

    r = run_harness("sweep", path, "--resume")
    assert r.returncode == 0, r.stderr
    assert "already done" in r.stderr
    df = _children("killme")
    assert sorted(df["trial_id"]) == sorted(t.id for t in from_dict(tiny_toy2d).trials())
    assert df["trial_id"].is_unique and set(df["run_status"]) == {"FINISHED"}
    finished_before = set(before.loc[before["run_status"] == "FINISHED", "run_id"])
    assert finished_before <= set(df["run_id"]), "a finished trial was rerun"
    assert all(r.info.status != "RUNNING" for r in _all_runs("killme"))

    r = run_harness("report", "killme")
    assert r.returncode == 0, r.stderr
    import pandas as pd
    csv = pd.read_csv(project / "results" / "killme" / "trials.csv")
    assert len(csv) == n_trials and csv["trial_id"].is_unique

    # the same sweep again without --resume is refused; a changed file is refused by name
    r = run_harness("sweep", path)
    assert r.returncode == 2 and "--resume" in r.stderr
    changed = yaml.safe_load(Path(path).read_text())
    changed["budget"]["iterations"] = 999
    Path(path).write_text(yaml.safe_dump(changed))
    r = run_harness("sweep", path, "--resume")
    assert r.returncode == 2 and "budget.iterations: 80 -> 999" in r.stderr, r.stderr


def test_gpu_resources_and_memory_aware_packing():
    """What a GPU machine would ask Ray for, computed without one."""
    from harness.config import from_dict
    from harness.packing import estimate_trial_bytes, gpu_share
    from harness.space import Arch
    from harness.sweep import trial_gpu_shares, trial_resources

    exp = from_dict({"space": {"n": 2}, "resources": {"trials_per_gpu": 8, "cpus_per_trial": 2}})
    assert trial_resources(exp, {"CPU": 16, "GPU": 1}) == {"cpu": 2, "gpu": 1 / 8}
    assert trial_resources(exp, {"CPU": 16}) == {"cpu": 2}
    small = estimate_trial_bytes(Arch(depth_g=4, depth_d=4, filters_g=32, filters_d=32), (1, 32, 32), 64)
    big = estimate_trial_bytes(Arch(depth_g=20, depth_d=20, filters_g=128, filters_d=128), (1, 32, 32), 64)
    assert big > 2 * small
    assert gpu_share(small, 80 * 2**30, 8) == 1 / 8           # eight small trials fit an 80 GB GPU
    assert gpu_share(big, 4 * 2**30, 8) > 1 / 8               # a big one on a 4 GB GPU asks for more
    assert gpu_share(10 * 2**30, 4 * 2**30, 8) == 1.0         # never more than the whole GPU
    shares = trial_gpu_shares(exp, exp.trials(), None)
    assert set(shares.values()) == {1 / 8}


def test_costly_trials_are_scheduled_first():
    from harness.config import from_dict
    from harness.sweep import longest_first
    same_size = {"depth_g": [4], "depth_d": [4], "filters_g": [32], "filters_d": [32]}
    exp = from_dict({"dataset": "ring8", "space": {"n": 3, "restrict": same_size}, "objectives": ["gan", "wgan-gp"]})
    order = longest_first(exp, exp.trials())
    assert sorted(t.id for t in order) == sorted(t.id for t in exp.trials())
    assert [t.objective for t in order[:3]] == ["wgan-gp"] * 3     # 5 critic steps per iteration
