"""MLflow's UI (`mlflow server`) on the project's store, bound to 127.0.0.1 by default.

`mlflow server` is an unauthenticated server whose REST API can write (and delete) runs: on
loopback only this machine's users reach it. `--read-only` serves a snapshot copy of the sqlite
store instead, so nothing done through the UI reaches the study. To share a UI with a team,
put it behind an authenticating proxy or use MLflow's basic-auth app (docs/team.md).
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

from .store import tracking_uri

# MLflow 3's server starts a job runner for its GenAI features (prompt optimisation, scorers,
# trace roll-ups): about nine Python processes polling the store, busy even with no job, which
# a study's UI never uses. Off unless the environment says otherwise.
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
# One person's UI on one store: one server process. MLflow's default of 4 starts four, each
# importing MLflow and opening the store, for requests one browser tab makes one at a time;
# `harness ui --workers N` for a UI a team shares.
UI_WORKERS = 1


def server_env(environ=None) -> dict[str, str]:
    """The environment for `mlflow server`: SERVER_ENV's defaults under the caller's own."""
    environ = os.environ if environ is None else environ
    return {**SERVER_ENV, **environ}


def study_urls(base: str) -> list[tuple[str, str]]:
    """(sweep name, URL of its trials in the UI) for every sweep in the store, newest first."""
    from .report.publish import study_url
    from .store import get_client, search_all
    client = get_client()
    out = []
    for exp in client.search_experiments(order_by=["last_update_time DESC"]):
        if search_all(client, exp.experiment_id, "tags.role = 'parent'"):
            out.append((exp.name, study_url(base, exp.experiment_id)))
    return out


def snapshot(uri: str, folder: Path) -> str:
    """A consistent copy of an sqlite store (sqlite's backup API), as an sqlite URI."""
    from ..errors import UsageError
    if not uri.startswith("sqlite:///"):
        raise UsageError(f"--read-only: serves a copy of a local sqlite store; {uri} is not one")
    src = Path(uri[len("sqlite:///"):])
    if not src.is_file():
        raise UsageError(f"--read-only: no store at {src}")
    copy = folder / "mlflow.db"
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as a, sqlite3.connect(copy) as b:
        a.backup(b)
    return f"sqlite:///{copy}"


def launch_ui(host: str = "127.0.0.1", port: int = 5000, read_only: bool = False, workers: int = UI_WORKERS) -> int:
    """Serve the store until interrupted; a tracking server needs no second UI."""
    uri = tracking_uri()
    if uri.startswith("http"):
        print(f"MLFLOW_TRACKING_URI is a server already: open {uri}", file=sys.stderr)
        for name, url in study_urls(uri):
            print(f"  {name}: {url}", file=sys.stderr)
        return 0
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: --host {host}: MLflow's server has no login and can write runs; anyone who reaches "
              f"{host}:{port} can change this store (use --read-only, or a proxy with authentication)",
              file=sys.stderr)
    exe = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which("mlflow")
    server = [exe] if exe else [sys.executable, "-m", "mlflow"]
    with tempfile.TemporaryDirectory(prefix="harness-ui-") as tmp:
        served = snapshot(uri, Path(tmp)) if read_only else uri
        cmd = server + ["server", "--backend-store-uri", served, "--host", host, "--port", str(port),
                        "--workers", str(workers)]
        what = f"a read-only snapshot of {uri}" if read_only else f"store {uri}"
        print(f"MLflow UI on http://{host}:{port} ({what}); Ctrl-C stops it", file=sys.stderr)
        for name, url in study_urls(f"http://{host}:{port}"):
            print(f"  {name}: {url}", file=sys.stderr)
        try:
            return subprocess.call(cmd, env=server_env())
        except KeyboardInterrupt:
            return 0
