"""`harness ui`: the read-only mode serves a copy; study URLs open the study view."""
from __future__ import annotations

import sqlite3

import pytest

from harness.errors import UsageError
from harness.study import store
from harness.study.ui import snapshot, study_urls


def test_read_only_serves_a_snapshot_that_writes_cannot_reach_back(project, tmp_path):
    client = store.get_client()
    store.open_experiment(client, "ro")
    src = project / "mlflow.db"
    folder = tmp_path / "snap"
    folder.mkdir()
    uri = snapshot(f"sqlite:///{src}", folder)
    with sqlite3.connect(uri[len("sqlite:///"):]) as copy:
        copy.execute("UPDATE experiments SET name = 'changed' WHERE name = 'ro'")
    assert store.find_experiment(client, "ro") is not None             # the study is untouched
    with pytest.raises(UsageError, match="sqlite"):
        snapshot("http://127.0.0.1:5000", folder)
    with pytest.raises(UsageError, match="no store"):
        snapshot(f"sqlite:///{tmp_path / 'missing.db'}", folder)


def test_study_urls_list_only_sweeps_with_the_study_view(project):
    client = store.get_client()
    exp_id = store.open_experiment(client, "withparent")
    store.open_experiment(client, "empty")
    client.create_run(exp_id, tags={"role": "parent"})
    urls = dict(study_urls("http://127.0.0.1:5000"))
    assert list(urls) == ["withparent"]
    assert "viewStateShareKey=harness-study" in urls["withparent"] and "workflowType=machine_learning" in urls["withparent"]


def test_the_ui_starts_mlflow_without_its_job_runner_unless_asked(project, monkeypatch):
    """MLflow 3's job runner (about nine polling processes) is off for `harness ui`; a user who
    sets MLFLOW_SERVER_ENABLE_JOB_EXECUTION keeps their value."""
    from harness.study import ui
    seen = []
    monkeypatch.setattr(ui.subprocess, "call", lambda cmd, env: seen.append((cmd, env)) or 0)
    monkeypatch.delenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", raising=False)
    assert ui.launch_ui(port=5999) == 0
    [(cmd, env)] = seen
    assert cmd[-9:] == ["server", "--backend-store-uri", store.tracking_uri(), "--host", "127.0.0.1", "--port", "5999",
                        "--workers", "1"]
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false" and env["MLFLOW_TRACKING_URI"] == store.tracking_uri()
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "true")
    assert ui.launch_ui(port=5999) == 0
    assert seen[-1][1]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "true"
    assert ui.launch_ui(port=5999, workers=3) == 0 and seen[-1][0][-2:] == ["--workers", "3"]


@pytest.mark.parametrize("bad", ["0", "-2", "two"])
def test_ui_workers_must_be_a_positive_integer(bad, project, capsys, monkeypatch):
    """`harness ui --workers` (default 1, harness/study/ui.py's UI_WORKERS) refuses what is not
    a count of processes, with argparse's exit 2, before any server starts."""
    from harness import cli
    from harness.study import ui
    monkeypatch.setattr(ui.subprocess, "call", lambda cmd, env: pytest.fail("a server started"))
    with pytest.raises(SystemExit) as exit_:
        cli.main(["ui", "--workers", bad])
    assert exit_.value.code == 2 and "--workers" in capsys.readouterr().err
