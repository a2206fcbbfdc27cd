"""MLflow's UI (`mlflow server`) on the project's store, bound to 127.0.0.1 by default."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .store import tracking_uri


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
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0
