"""Carry one sweep's MLflow store to another machine: `python -m harness store export / import`.

A long study outlives a working session, and a session may start on a fresh machine. What
the next one needs is the sweep's runs (sqlite), their artifacts, and the latest checkpoint
of every trial that was cut off, so `--resume` continues those trials instead of starting
them over. MLflow records artifacts and checkpoints at absolute paths, and it has no call
that moves a run's artifact location; so `import` copies them to the new machine's places
and rewrites those paths in the copied sqlite file (the one thing written by hand here).

Folder layout (what `export` writes, `import` reads):
    mlflow.db.gz       consistent copy of the whole sqlite store (sqlite's backup API), VACUUMed,
                       gzipped (a store is mostly repeated text: a tenth of its size, small enough
                       to commit); an older export's plain mlflow.db is read too
    artifacts/         the sweep's MLflow artifact location (one folder per run)
    checkpoints/RUN/   the latest checkpoint of each unfinished child run, by run id
    manifest.json      the original paths, so `import` knows what to rewrite

Only sqlite stores with local artifacts and checkpoints are carried; a tracking server and
cloud storage are already reachable from anywhere.
"""
from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

from ..errors import UserError
from . import store

FORMAT = 1
MANIFEST = "manifest.json"


def sqlite_path(uri: str) -> Path:
    """The file of an sqlite tracking URI; anything else is refused."""
    if not uri.startswith("sqlite:///"):
        raise UserError(f"MLFLOW_TRACKING_URI: store export / import carries sqlite stores only, got {uri!r}")
    return Path(uri[len("sqlite:///"):])


def local_path(location: str, what: str) -> Path:
    """A local file path from a path or file:// URI; a remote URI is refused."""
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else location)
    raise UserError(f"{what} {location!r} is not on local disk: nothing to carry (it is reachable as it is)")


def unfinished_checkpoints(client, exp_id: str) -> dict[str, str]:
    """run id -> checkpoint folder, for every active child run that has not finished and whose
    `checkpoint` tag names a folder on this machine: what --resume would continue from."""
    found = {}
    for run in store.children(client, exp_id):
        path = run.data.tags.get("checkpoint")
        if run.info.status != "FINISHED" and path and not urlparse(path).scheme and Path(path).is_dir():
            found[run.info.run_id] = path
    return found


def copy_sqlite(src: Path, dst_gz: Path) -> None:
    """A consistent copy of a live sqlite file (the backup API), compacted, gzipped."""
    plain = dst_gz.with_suffix("")
    source, target = sqlite3.connect(f"file:{src}?mode=ro", uri=True), sqlite3.connect(plain)
    try:
        source.backup(target)
        target.execute("VACUUM")
    finally:
        target.close()
        source.close()
    with plain.open("rb") as fin, gzip.open(dst_gz, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    plain.unlink()


def restore_sqlite(src: Path, dst: Path) -> None:
    """The exported store at `dst`: mlflow.db.gz unpacked, or an older export's plain mlflow.db."""
    if (src / "mlflow.db.gz").is_file():
        with gzip.open(src / "mlflow.db.gz", "rb") as fin, dst.open("wb") as fout:
            shutil.copyfileobj(fin, fout)
    else:
        shutil.copyfile(src / "mlflow.db", dst)


def replace_folder(staged: Path, dest: Path) -> None:
    """Put `staged` at `dest`, replacing an earlier export only once the new one is complete."""
    old = dest.with_name(f".{dest.name}.old")
    if dest.exists():
        shutil.rmtree(old, ignore_errors=True)
        dest.rename(old)
    staged.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def export_store(name: str, dest: Path) -> dict:
    """Write sweep `name`'s store (sqlite, artifacts, checkpoints of unfinished trials) to `dest`.
    An earlier export at `dest` is replaced whole, and only when the new one is complete."""
    db = sqlite_path(store.tracking_uri())
    if not db.is_file():
        raise UserError(f"no MLflow store at {db} (MLFLOW_TRACKING_URI)")
    client = store.get_client()
    exp = store.find_experiment(client, name)
    if exp is None:
        raise UserError(f"no sweep named {name!r} in {db}")
    artifacts = local_path(exp.artifact_location, "the sweep's artifact location")
    checkpoints = unfinished_checkpoints(client, exp.experiment_id)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        copy_sqlite(db, staged / "mlflow.db.gz")
        if artifacts.is_dir():
            shutil.copytree(artifacts, staged / "artifacts")
        for run_id, path in checkpoints.items():
            shutil.copytree(path, staged / "checkpoints" / run_id)
        manifest = {"format": FORMAT, "sweep": name, "experiment_id": exp.experiment_id,
                    "artifact_location": exp.artifact_location, "checkpoints": checkpoints,
                    "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "from": str(db)}
        (staged / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        replace_folder(staged, dest)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return {"sweep": name, "runs": len(store.search_all(client, exp.experiment_id, "")),
            "checkpoints": len(checkpoints), "folder": str(dest)}


def read_manifest(src: Path) -> dict:
    path = src / MANIFEST
    if not path.is_file():
        raise UserError(f"{src}: no {MANIFEST}, so not a folder written by `store export`")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise UserError(f"{path}: format {manifest.get('format')!r}, this harness reads format {FORMAT}")
    return manifest


def rewrite_paths(db: Path, manifest: dict, artifacts: Path, checkpoints: dict[str, Path]) -> None:
    """Point the copied store at the artifacts' and checkpoints' new places (one transaction)."""
    old, new, exp_id = manifest["artifact_location"], str(artifacts), manifest["experiment_id"]
    con = sqlite3.connect(db)
    try:
        with con:
            con.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", (new, exp_id))
            con.execute("UPDATE runs SET artifact_uri = ? || substr(artifact_uri, ?) "
                        "WHERE experiment_id = ? AND substr(artifact_uri, 1, ?) = ?",
                        (new, len(old) + 1, exp_id, len(old), old))
            for run_id, path in checkpoints.items():
                con.execute("UPDATE tags SET value = ? WHERE run_uuid = ? AND key = 'checkpoint'", (str(path), run_id))
    finally:
        con.close()


def import_store(src: Path, artifacts_root: Path | None = None, checkpoints_root: Path | None = None) -> dict:
    """Make an exported store this machine's store (MLFLOW_TRACKING_URI, which must not exist
    yet): artifacts go to ARTIFACTS_ROOT/EXPERIMENT_ID (default ./mlruns), checkpoints to
    CHECKPOINTS_ROOT/RUN_ID (default ./.ray_results/carried), and the store points at them.
    Nothing is left behind when a step fails."""
    manifest = read_manifest(src)
    db = sqlite_path(store.tracking_uri())
    if db.exists():
        raise UserError(f"{db} exists: import makes a new store; point MLFLOW_TRACKING_URI at a new file")
    artifacts = (artifacts_root or Path.cwd() / "mlruns").resolve() / str(manifest["experiment_id"])
    ckpt_root = (checkpoints_root or Path.cwd() / ".ray_results" / "carried").resolve()
    checkpoints = {rid: ckpt_root / rid for rid in manifest["checkpoints"]}
    taken = [p for p in [artifacts, *checkpoints.values()] if p.exists()]
    if taken:
        raise UserError(f"{taken[0]} exists: import writes only to new folders")
    written = []
    try:
        if (src / "artifacts").is_dir():
            written.append(artifacts)
            shutil.copytree(src / "artifacts", artifacts)
        for rid, path in checkpoints.items():
            written.append(path)
            shutil.copytree(src / "checkpoints" / rid, path)
        db.parent.mkdir(parents=True, exist_ok=True)
        written.append(db)
        restore_sqlite(src, db)
        rewrite_paths(db, manifest, artifacts, checkpoints)
    except BaseException:
        for path in written:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        raise
    return {"sweep": manifest["sweep"], "store": str(db), "artifacts": str(artifacts), "checkpoints": len(checkpoints)}
