"""MLflow's UI (`mlflow server`) on the project's store, bound to 127.0.0.1 by default."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .store import tracking_uri


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


def launch_ui(host: str = "127.0.0.1", port: int = 5000) -> int:
    """Serve the store until interrupted; a tracking server needs no second UI."""
    uri = tracking_uri()
    if uri.startswith("http"):
        print(f"MLFLOW_TRACKING_URI is a server already: open {uri}", file=sys.stderr)
        return 0
    exe = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which("mlflow")
    server = [exe] if exe else [sys.executable, "-m", "mlflow"]
    cmd = server + ["server", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    print(f"MLflow UI on http://{host}:{port} (store {uri}); Ctrl-C stops it", file=sys.stderr)
    for name, url in study_urls(f"http://{host}:{port}"):
        print(f"  {name}: {url}", file=sys.stderr)
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0
