"""A sweep without Ray, for fast in-process tests of the driver's plumbing (refusals, lease,
signals, resume, aggregation failures): `harness.cli.main(["sweep", ...])` runs the real
driver, with start_ray giving a stand-in and fit recording each trial as Tune's callbacks
would, with a fixed record, instead of training it. The slow tests run the real thing."""
from __future__ import annotations

import os
import shutil
import signal
import threading
from types import SimpleNamespace

import pytest

from harness.record import TrialRecord
from harness.study.sweep import driver


class FakeSweep:
    """What the stand-ins saw: `fitted` holds each fit's trial ids; `during(runs, trial)` runs
    before each trial is recorded (a test sends a signal there, or raises)."""

    def __init__(self):
        self.fitted: list[list[str]] = []
        self.ray_starts = 0
        self.during = None
        self.score = 5.0

    def start_ray(self, cluster):
        self.ray_starts += 1
        return SimpleNamespace(cluster_resources=lambda: dict(cluster or {"CPU": 2.0}), shutdown=lambda: None)

    def fit(self, exp, exp_dict, todo, resources, runs, label, run_name, checkpoints, clock, stop=None):
        """Like Tune's loop: SIGUSR1 (Tune's interrupt, which the driver's signal handler calls)
        stops it before the next trial, leaving the current one's run open."""
        self.fitted.append([t.id for t in todo])
        interrupted = threading.Event()
        before = signal.signal(signal.SIGUSR1, lambda *_: interrupted.set())
        if stop is not None:
            stop.in_fit = True
        try:
            for t in todo:
                if interrupted.is_set():
                    break
                runs.start(t.id, t.params())
                if self.during:
                    self.during(runs, t)
                if interrupted.is_set():
                    break
                runs.finish(TrialRecord(t.id, t.arch.id, t.objective, t.seed, status="ok", headline="modes_covered",
                                        metrics={"modes_covered": self.score}, iterations=exp.budget.iterations,
                                        wall_time_s=1.0, params=t.params()))
        finally:
            signal.signal(signal.SIGUSR1, before)
            if stop is not None:
                stop.in_fit = False


@pytest.fixture
def fake_sweep(project, monkeypatch):
    fake = FakeSweep()
    monkeypatch.setattr(driver, "start_ray", fake.start_ray)
    monkeypatch.setattr(driver, "fit", fake.fit)
    return fake


_TEMPLATE: dict = {}


@pytest.fixture(scope="session")
def store_template(tmp_path_factory):
    """An empty MLflow sqlite store made once per test process (each module importing this
    fixture shares it): creating one runs MLflow's migrations, seconds on a busy machine,
    which the fast tests would each pay."""
    if "path" not in _TEMPLATE:
        from mlflow import MlflowClient
        folder = tmp_path_factory.mktemp("store-template")
        here = os.getcwd()
        os.chdir(folder)
        try:
            MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
        finally:
            os.chdir(here)
        _TEMPLATE["path"] = folder / "mlflow.db"
    return _TEMPLATE["path"]


@pytest.fixture
def made_store(project, store_template):
    """The project's store, already made (a copy of the template)."""
    shutil.copy(store_template, project / "mlflow.db")
    return project / "mlflow.db"
