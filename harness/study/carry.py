"""Carry one sweep between MLflow stores and machines: `python -m harness store copy / export / import`.

A long study outlives a working session, a session may start on a fresh machine, and a team
keeps its sweeps on one tracking server. What the next machine needs is the sweep's runs, their
artifacts, and the latest checkpoint of every trial that was cut off, so `--resume` continues
those trials instead of starting them over. Every copy goes through MLflow's client API, so any
two backends work (an sqlite file, an `mlflow server`, PostgreSQL); carry_copy.py has the copy
routine and what it keeps.

- `copy NAME --to URI`: store to store, e.g. a local sweep onto the team's server. Checkpoints
  stay where they are (their tags still name them).
- `export NAME FOLDER` / `import FOLDER`: through a folder that can be committed or sent, with
  the checkpoints of unfinished trials, which `import` puts on the importing machine and points
  the runs' `checkpoint` tags at.

Folder layout (format 1; `export` writes it, `import` reads it, the committed exports included):
    mlflow.db.gz       an sqlite MLflow store holding the sweep, VACUUMed, gzipped (mostly
                       repeated text: a tenth of its size); an older export's plain mlflow.db too
    artifacts/RUN_ID/artifacts/   each run's artifacts, by the run id in that store
    checkpoints/RUN_ID/           the latest checkpoint of each unfinished child run
    manifest.json      format, sweep name, experiment id, the checkpoints' original paths

An export is a file someone sends you, so `import` treats everything in it as hostile and
checks the whole folder before it writes anything anywhere (carry_checks.py).
"""
from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from ..errors import UserError
from . import store
from .carry_checks import FORMAT, MANIFEST, ExportSweep
from .carry_copy import StoreSweep, Target, client_for, copy_sweep, redact, scrub


def open_sweep(uri: str, name: str) -> StoreSweep:
    """Sweep `name` in the store at `uri`; a store that cannot be reached is the user's to fix."""
    from mlflow.exceptions import MlflowException
    try:
        return StoreSweep(client_for(uri), name, redact(uri))
    except (MlflowException, OSError) as err:
        raise UserError(f"cannot read the MLflow store {redact(uri)}: {scrub(str(err).splitlines()[0], uri)}") from None


def copy_store(name: str, to_uri: str, from_uri: str | None = None, artifact_location: str | None = None) -> dict:
    """Copy sweep `name` from FROM_URI (default MLFLOW_TRACKING_URI) to TO_URI, e.g. a local
    sweep onto the team's server; checkpoints stay where their tags say."""
    from_uri = from_uri or store.tracking_uri()
    if to_uri == from_uri:
        raise UserError(f"--to {redact(to_uri)} is the store the sweep is read from")
    source = open_sweep(from_uri, name)
    done = copy_sweep(source, Target(to_uri, name), artifact_location)
    return {**done, "sweep": name, "to": redact(to_uri)}


def replace_folder(staged: Path, dest: Path) -> None:
    """Put `staged` at `dest`, replacing an earlier export only once the new one is complete."""
    old = dest.with_name(f".{dest.name}.old")
    if dest.exists():
        shutil.rmtree(old, ignore_errors=True)
        dest.rename(old)
    staged.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def gzip_sqlite(db: Path) -> None:
    """VACUUM the export's sqlite store and replace it by mlflow.db.gz beside it."""
    con = sqlite3.connect(db)
    try:
        con.execute("VACUUM")
    finally:
        con.close()
    with db.open("rb") as fin, gzip.open(db.with_name("mlflow.db.gz"), "wb") as fout:
        shutil.copyfileobj(fin, fout)
    db.unlink()


def export_store(name: str, dest: Path) -> dict:
    """Write sweep `name` of MLFLOW_TRACKING_URI (any backend) to folder `dest`: its runs in a
    new sqlite store, their artifacts, the checkpoints of unfinished trials. An earlier export
    at `dest` is replaced whole, and only when the new one is complete."""
    uri = store.tracking_uri()
    source = open_sweep(uri, name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent)).resolve()
    try:
        db = staged / "mlflow.db"
        done = copy_sweep(source, Target(f"sqlite:///{db}", name), str(staged / "artifacts"),
                          checkpoints_to=staged / "checkpoints")
        gzip_sqlite(db)
        manifest = {"format": FORMAT, "sweep": name, "experiment_id": done["experiment_id"],
                    "artifact_location": str(staged / "artifacts"), "checkpoints": done["checkpoints"],
                    "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "from": redact(uri)}
        (staged / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        replace_folder(staged, dest)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return {**done, "sweep": name, "folder": str(dest)}


def import_store(src: Path, artifact_location: str | None = None, checkpoints_root: Path | None = None) -> dict:
    """Copy the sweep of export folder `src` into MLFLOW_TRACKING_URI (any backend, without a
    sweep of that name): artifacts to ARTIFACT_LOCATION (default: the store's own default),
    checkpoints of unfinished trials to CHECKPOINTS_ROOT/RUN_ID (default ./.ray_results/carried)
    with the runs' `checkpoint` tags pointing there. The whole folder is checked before
    anything is written; a failed copy leaves no sweep and no folders behind."""
    uri = store.tracking_uri()
    ckpt_root = (checkpoints_root or Path.cwd() / ".ray_results" / "carried").resolve()
    with tempfile.TemporaryDirectory(prefix="harness-import-") as tmp:
        source = ExportSweep(Path(src), Path(tmp))
        done = copy_sweep(source, Target(uri, source.name), artifact_location,
                          checkpoints_to=ckpt_root, retag_checkpoints=True)
    return {**done, "sweep": source.name, "store": redact(uri),
            "artifacts": client_for(uri).get_experiment(done["experiment_id"]).artifact_location}
