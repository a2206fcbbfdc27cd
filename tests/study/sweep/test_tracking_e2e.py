"""MLflow tracking end to end: a tiny Fashion-MNIST sweep through Ray into a real MLflow server,
every child run's tags, params, curves and samples and the parent's counts checked, then the
report. The same sweep into sqlite is the store every other Ray sweep of the slow tier writes
(tests/study/sweep/test_driver.py: a Fashion-MNIST one in the failure-policy test), and the fast
twins check the parent's counts on sqlite (tests/study/sweep/sweep_fakes.py); a separate sqlite
copy of this test was dropped from the slow tier (issue 27)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest
from conftest import free_port, kill_session, run_harness

from harness.config import from_dict
from harness.study import store
from harness.study.ui import server_env
from harness.trial import trials_of


def _study(name):
    client = store.get_client()
    exp_id = store.find_experiment(client, name).experiment_id
    return client, store.parents(client, exp_id), store.children(client, exp_id)


def check_tiny_sweep(project, name, settings):
    """Shared assertions: one FINISHED child per trial with its tags, params, curves and
    samples; parent counts equal the counts recomputed here from the children; the files of the
    report the sweep wrote at its end."""
    client, parents, kids = _study(name)
    trials = trials_of(from_dict(settings))
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    assert sorted(k.data.tags["trial_id"] for k in kids) == sorted(t.id for t in trials)
    for k in kids:
        tags = k.data.tags
        assert k.info.status == "FINISHED" and tags["mlflow.parentRunId"] == parent.info.run_id
        assert {"arch_id", "objective", "seed", "status", "headline"} <= set(tags)
        assert k.data.params["arch.depth_g"] == "4" and "objective.lr_d" in k.data.params
        assert tags["headline"] in k.data.metrics and "loss_d" in k.data.metrics
        assert len(client.get_metric_history(k.info.run_id, "loss_d")) >= 2
        assert "samples.png" in [a.path for a in client.list_artifacts(k.info.run_id)]
    for obj in settings["objectives"]:
        for thr in settings["thresholds"]:
            expected = sum(1 for k in kids if k.data.tags["objective"] == obj and k.data.tags["status"] in ("ok", "collapsed")
                           and k.data.metrics[k.data.tags["headline"]] > thr)
            assert parent.data.metrics[f"success/{obj}/{thr:g}"] == expected, (obj, thr)
        assert parent.data.metrics[f"trials/{obj}"] == len(trials) / len(settings["objectives"])
    assert {"experiment.json", "tables"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}

    out = project / "results" / name      # the sweep's own report, read from the same store
    for f in ("report.md", "report.html", "trials.csv", "plots/success_rate.png"):
        assert (out / f).is_file(), f
    csv = pd.read_csv(out / "trials.csv")
    assert len(csv) == len(trials) and csv["trial_id"].is_unique
    assert {"arch.nonlin_g", "objective.lr_d", "status", "budget.iterations", "score", "loss_d"} <= set(csv.columns)
    scored = csv[csv["score"].notna()]
    assert len(scored) and (scored["score"] == scored[scored["headline"].iloc[0]]).all()
    md = (out / "report.md").read_text()
    assert "gan vs wgan-gp" in md and "only wgan-gp" in md and "![" in md


@pytest.fixture
def mlflow_server(tmp_path):
    """A real `mlflow server` on 127.0.0.1 (free port), stopped after the test."""
    port = free_port()
    log = open(tmp_path / "mlflow-server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "server-artifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=log, stderr=log, start_new_session=True, env=server_env())
    url = f"http://127.0.0.1:{port}"
    try:
        start = time.time()
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "mlflow-server.log").read_text()
            assert time.time() - start < 120, "mlflow server did not come up"
            time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        kill_session(proc.pid, signal.SIGKILL)
        log.close()


@pytest.mark.slow   # a real Ray sweep against a real mlflow server
def test_tiny_sweep_to_mlflow_server(project, write_experiment, tiny_fmnist, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    path = write_experiment("tiny-server", **tiny_fmnist)
    r = run_harness("sweep", path)
    assert r.returncode == 0, r.stderr
    assert not (project / "mlflow.db").exists() and not (project / "mlruns").exists()
    check_tiny_sweep(project, "tiny-server", tiny_fmnist)
