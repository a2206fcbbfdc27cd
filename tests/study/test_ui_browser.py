"""The MLflow UI shows the study: a real browser opens `harness ui` on a finished tiny sweep.

Slow and browser tier (make test-all): it runs a Ray sweep, starts MLflow's server and drives
Debian's chromium headless. The fast twins of its plumbing are tests/study/report/test_publish.py
(names, description, study view, report artifacts) and tests/test_hints.py.
"""
from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import free_port, harness_cmd, run_harness

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1600,1000", "--virtual-time-budget=30000"]


def _wait_http(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def _chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, url],
                          capture_output=True, text=True, timeout=180)


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_the_ui_shows_each_trial_with_method_seed_outcome_and_score(project, tiny_toy2d, tmp_path):
    exp = {**tiny_toy2d, "name": "uistudy", "description": "Browser check: GAN and WGAN-GP on the ring.",
           "space": {**tiny_toy2d["space"], "n": 1}, "budget": {"iterations": 30, "batch_size": 64},
           "eval": {"evaluator": "toy2d", "n_samples": 200}, "seeds": [0, 1]}
    path = project / "uistudy.yaml"
    path.write_text(yaml.safe_dump(exp))
    done = run_harness("sweep", path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (project / "results" / "uistudy" / "report.html").is_file()      # the sweep wrote its report
    trials = pd.read_csv(project / "results" / "uistudy" / "trials.csv")
    assert len(trials) == 4

    port = free_port()
    ui = subprocess.Popen(harness_cmd("ui", "--port", port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", seconds=360)   # a loaded 2-core machine: minutes
        url = next(line.split(": ", 1)[1].strip() for line in iter(ui.stdout.readline, "")
                   if line.strip().startswith("uistudy:"))
        shot = tmp_path / "mlflow-ui.png"      # one chromium run does both (Debian's chromium 150)
        dom = _chromium(url, tmp_path / "profile", "--dump-dom", f"--screenshot={shot}").stdout
    finally:
        os.killpg(ui.pid, 15)
        ui.wait(timeout=30)
    target = os.environ.get("HARNESS_UI_SCREENSHOT")
    if target:
        shutil.copy(shot, target)
    assert shot.is_file() and shot.stat().st_size > 10_000
    text = [html.unescape(t).strip() for t in re.split(r"<[^>]+>", dom) if t.strip()]
    assert "Browser check: GAN and WGAN-GP on the ring." in text        # the experiment's description
    headline = trials["headline"].dropna().iloc[0]
    assert headline in text                                             # the headline metric's column
    for row in trials.itertuples():
        label = f"{row.objective} · seed {row.seed} · {row.arch_id} · {row.status}"
        assert any(t.startswith(label) for t in text), f"{label} not on the page"
    assert "Group: gan" in text and "Group: wgan-gp" in text
