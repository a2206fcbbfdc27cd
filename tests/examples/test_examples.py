"""examples/ as a user runs it: the relativistic GAN, its penalty and a metric as plugins, from
a folder outside the repository, through a real sweep (Ray Tune, MLflow) and report. The fast
twin (tests/test_plugins.py) checks the same plumbing in-process without Ray."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_harness

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.slow
def test_the_example_study_sweeps_reports_and_resumes_like_a_built_in_one(project):
    folder = project / "outside"
    shutil.copytree(EXAMPLES, folder, ignore=shutil.ignore_patterns("__pycache__"))
    study = "outside/ragan-vs-gan.yaml"
    done = run_harness("sweep", study, "--no-report", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    # the report in a fresh process, which finds the plugins itself (the sweep's own report at
    # its end is the same build, with them already loaded: tests/study/sweep/test_tracking_e2e.py)
    reported = run_harness("report", "ragan-vs-gan", timeout=600)
    assert reported.returncode == 0, reported.stderr[-3000:]

    out = project / "results" / "ragan-vs-gan"
    df = pd.read_csv(out / "trials.csv").set_index("objective")
    assert set(df.index) == {"gan", "ragan", "ragan+r2:1"}
    assert df["status"].isin(["ok", "collapsed", "diverged"]).all()
    # the plugin metric is a column like toy2d's own; the experiment's success metric is it
    assert df["mode_entropy"].between(0, 1).all() and (df["mode_distance"] >= 0).all() and df["hq_share"].notna().all()
    assert (df["headline"] == "mode_entropy").all() and (df["applied.headline"] == "mode_entropy").all()
    # the penalty and its weight, and what `auto` became on the worker that ran each trial
    assert df.loc["ragan+r2:1", "applied.penalties"] == "r2:1" and df.loc["ragan+r2:1", "applied.penalty.r2.weight"] == 0.5
    assert df.loc["ragan", "applied.penalties"] == "none"
    assert (df["applied.device"] == "cpu").all() and (df["applied.precision"] == "fp32").all()
    assert (df["applied.evaluator"] == "toy2d-nearest").all()
    sha = hashlib.sha256((folder / "ragan.py").read_bytes()).hexdigest()
    assert (df["plugins.sha256.ragan.py"] == sha).all()
    md = (out / "report.md").read_text()
    assert "objectives gan, ragan, ragan+r2:1" in md and "evaluator toy2d-nearest" in md
    assert "| ragan+r2:1 |" in md and "mode_entropy at the budget" in md

    original = (folder / "ragan.py").read_text()
    (folder / "ragan.py").write_text(original + "\n# edited after the sweep\n")
    refused = run_harness("sweep", study, "--resume", timeout=600)
    assert refused.returncode == 2
    assert "plugins_sha256.ragan.py" in refused.stderr and "Use --name for a new sweep" in refused.stderr

    (folder / "ragan.py").write_text(original)
    resumed = run_harness("sweep", study, "--resume", "--no-report", timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "3 trials (3 already done, 0 to run)" in resumed.stderr
