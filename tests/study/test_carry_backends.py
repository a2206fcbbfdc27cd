"""A sweep moved onto a team's tracking store and back through MLflow's client API: a `mlflow
server` on loopback, and PostgreSQL when its binaries are installed. `harness report` rebuilt on
each side gives the same report.md and the same trials.csv, whose run ids are the one thing a
copy renews (MLflow picks them), mapped through the copy's id map.

The sweep is small and written by the store's own code (8 finished trials of two objectives
with their metric curves and samples, one retried with its first attempt in the trash, one
cut off after a checkpoint): the committed Fashion-MNIST store (75,000 metric points) took
minutes through the server and checked nothing more. The in-process twin (two sqlite files)
is test_carry.py::test_a_copy_between_two_sqlite_stores_keeps_every_run_whole."""
from __future__ import annotations

import csv
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from carry_sweeps import made_store, make_sweep
from conftest import free_port, kill_session

from harness.cli import main
from harness.study import carry
from harness.study.ui import server_env

pytestmark = pytest.mark.slow
NAME = "team"


def report(root: Path, uri: str, label: str, monkeypatch) -> Path:
    """`harness report` (in-process) on the store at `uri`: its results folder."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    out = root / f"report-{label}"
    assert main(["report", NAME, "--out", str(out)]) == 0
    return out / NAME


def rows(folder: Path, ids: dict[str, str] | None = None) -> list[list[str]]:
    """trials.csv, its run ids mapped through `ids`."""
    table = list(csv.reader((folder / "trials.csv").open()))
    cols = [i for i, h in enumerate(table[0]) if h in ("run_id", "parent_run_id")]
    for row in table[1:]:
        for i in cols:
            row[i] = ids[row[i]] if ids and row[i] else row[i]
    return table


def small_sweep(root: Path) -> None:
    """carry_sweeps.make_sweep's retried and cut-off trials, and 8 more finished ones."""
    from harness.config import from_dict
    from harness.record import TrialRecord
    from harness.study import store
    from harness.trial import trials_of
    make_sweep(root, NAME)
    client = store.get_client()
    exp_id = store.open_experiment(client, NAME)
    pid = store.parents(client, exp_id)[0].info.run_id
    runs = store.ChildRuns(client, exp_id, pid, NAME, "1/1")
    exp = from_dict({"name": NAME, "dataset": "ring8", "objectives": ["gan", "wgan-gp"], "seeds": [1, 2],
                     "space": {"n": 2, "seed": 0}})
    for i, t in enumerate(trials_of(exp)):
        runs.start(t.id, t.params())
        runs.log(t.id, [(step, {"loss_d": 1.0 / step, "modes_covered": float(i % 9)}) for step in (5, 10)])
        runs.finish(TrialRecord(t.id, t.arch.id, t.objective, t.seed, status="ok" if i % 3 else "collapsed",
                                headline="modes_covered", metrics={"modes_covered": float(i % 9), "hq_share": i / 10},
                                iterations=10, wall_time_s=3.0 + i, train_time_s=2.0, eval_time_s=0.5,
                                its_per_s=5.0, params=t.params()), samples_png=b"\x89PNG fake")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The small sweep in a local sqlite store, and its report."""
    root = tmp_path_factory.mktemp("source")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        uri = made_store(root / "mlflow.db")
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        small_sweep(root)
        return {"root": root, "uri": uri, "report": report(root, uri, "source", mp)}


def round_trip(source, team_uri: str, tmp: Path, monkeypatch) -> None:
    """Local sqlite -> the team's store -> a new local sqlite file; both copies report as the source."""
    monkeypatch.chdir(tmp)
    up = carry.copy_store(NAME, team_uri, from_uri=source["uri"])
    there = report(tmp, team_uri, "team", monkeypatch)
    assert (there / "report.md").read_text() == (source["report"] / "report.md").read_text()
    assert rows(there) == rows(source["report"], up["ids"])

    back_uri = f"sqlite:///{tmp / 'back' / 'mlflow.db'}"
    down = carry.copy_store(NAME, back_uri, from_uri=team_uri, artifact_location=str(tmp / "back" / "artifacts"))
    back = report(tmp, back_uri, "back", monkeypatch)
    assert (back / "report.md").read_text() == (source["report"] / "report.md").read_text()
    assert rows(back) == rows(source["report"], {old: down["ids"][new] for old, new in up["ids"].items()})
    assert (up["runs"], up["trashed"]) == (down["runs"], down["trashed"]) and up["trashed"] >= 1 and up["runs"] >= 11


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"{url} did not answer in {timeout:.0f} s")


def test_a_sweep_goes_to_an_mlflow_server_and_back_unchanged(source, tmp_path, monkeypatch):
    port = free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                             "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
                             "--artifacts-destination", str(tmp_path / "server-artifacts")],
                            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env=server_env())
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc)
        round_trip(source, f"http://127.0.0.1:{port}", tmp_path, monkeypatch)
        assert any((tmp_path / "server-artifacts").rglob("samples.png"))      # artifacts went through the server
    finally:
        kill_session(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            kill_session(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def postgres_bin() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, or Debian's /usr/lib/postgresql/VERSION/bin."""
    found = shutil.which("initdb") and shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust authentication, a free port) in a
    temporary folder; as root it runs as the `postgres` user (initdb refuses root). Its URI."""
    pytest.importorskip("psycopg2", reason="pip install -e .[team] (psycopg2-binary) for postgresql+psycopg2://")
    binaries = postgres_bin()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (initdb, pg_ctl); .ci/run installs it where apt can")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="harness-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run the cluster as")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    run = lambda *cmd: subprocess.run([*as_user, *map(str, cmd)], capture_output=True, text=True, timeout=300)  # noqa: E731
    try:
        made = run(binaries / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        assert made.returncode == 0, made.stderr
        started = run(binaries / "pg_ctl", "-D", data, "-l", folder / "log", "-w", "-t", "120", "start",
                      "-o", f"-h 127.0.0.1 -p {port} -k {folder}")
        assert started.returncode == 0, started.stderr + (folder / "log").read_text(errors="replace")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            run(binaries / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def test_a_sweep_goes_to_postgresql_and_back_unchanged(source, postgres, tmp_path, monkeypatch):
    round_trip(source, postgres, tmp_path, monkeypatch)
