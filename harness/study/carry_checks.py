"""Reading an export folder (`store import`), which may be hostile: an export is a file
someone sends you, so every id, path and size in it is checked, and the whole folder is
checked before anything is written anywhere (issue 23).

- ids must have MLflow's shapes (experiment ids digits, run ids 32 hex digits); they are the
  only names a path is made from, and the manifest's paths are never written to;
- only regular files and folders are read: a symlink, fifo or device anywhere is refused, and
  files are opened without following links (O_NOFOLLOW), also while copying;
- the unpacked sqlite store (MAX_DB_BYTES: a gzip bomb stops there), the bytes of artifacts
  and checkpoints (MAX_CARRIED_BYTES, counted again while copying) and the number of files
  and folders (MAX_FILES) are bounded, each refusal naming the file and the bound;
- the sqlite store is unpacked to a private temporary file, must pass `quick_check`, and may
  hold no view and no trigger beyond MLflow's own kind (one that only RAISEs) before MLflow
  opens it; its runs and the folder's artifacts/ and checkpoints/ must agree.
"""
from __future__ import annotations

import errno
import gzip
import json
import os
import re
import sqlite3
import stat
import zlib
from pathlib import Path

from ..config import check_name
from ..errors import UserError
from .carry_copy import RUN_ID, StoreSweep, client_for

FORMAT = 1
MANIFEST = "manifest.json"
EXPERIMENT_ID = re.compile(r"[0-9]{1,18}")    # MLflow's experiment ids: integers
# Bounds on what an imported folder may hold (a study of ~100 trials is ~20 MB of sqlite and
# ~10 MB of artifacts; checkpoints are a few MB each).
MAX_MANIFEST_BYTES = 1 << 20
MAX_DB_BYTES = 2 << 30            # the unpacked sqlite store
MAX_CARRIED_BYTES = 16 << 30      # artifacts + checkpoints
MAX_FILES = 200_000               # every file and folder of the export
CHUNK = 1 << 20
_ONLY_RAISE = re.compile(r"\bBEGIN\s+(SELECT\s+RAISE\s*\(\s*\w+\s*,\s*'[^']*'\s*\)\s*;\s*)+END\s*$", re.I | re.S)


def _walk(folder: Path):
    """(path, size) of every regular file and (path, None) of every folder under `folder`, a
    folder before what it holds, refusing anything but regular files and folders (a symlink
    is never followed). Iterative and lazy: no depth or size of a folder can exhaust us."""
    stack = [Path(folder)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                path = Path(entry.path)
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    yield path, None
                    stack.append(path)
                elif stat.S_ISREG(st.st_mode):
                    yield path, st.st_size
                else:
                    kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
                    raise UserError(f"{path}: {kind}; an export holds only regular files and folders")


def _open_regular(path: Path):
    """A file opened without following a symlink, refused unless it is a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)   # NONBLOCK: a fifo must not hang us
    except OSError as err:
        kind = "a symlink" if err.errno == errno.ELOOP else f"cannot be read ({err.strerror})"
        raise UserError(f"{path}: {kind}; an export holds only regular files and folders") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserError(f"{path}: not a regular file; an export holds only regular files and folders")
    return os.fdopen(fd, "rb")


class Budget:
    """Bytes still allowed for artifacts and checkpoints, re-counted while copying (so a file
    that grows after the check still cannot pass the bound)."""

    def __init__(self, limit: int):
        self.limit, self.left = limit, limit

    def take(self, n: int, path: Path) -> None:
        self.left -= n
        if self.left < 0:
            raise UserError(f"{path}: the export's artifacts and checkpoints exceed {self.limit} bytes "
                            "(the bound on what an import copies)")


def _safe_copytree(src: Path, dest: Path, budget: Budget) -> None:
    """Copy a checked folder: regular files and folders only, symlinks never followed, bytes bounded."""
    dest.mkdir(parents=True)
    for path, size in _walk(src):
        target = dest / path.relative_to(src)
        if size is None:
            target.mkdir()
            continue
        with _open_regular(path) as fin, open(target, "xb") as fout:
            while chunk := fin.read(CHUNK):
                budget.take(len(chunk), path)
                fout.write(chunk)


def _unpack_db(src: Path, dest: Path) -> None:
    """The export's sqlite store at `dest` (a private file), at most MAX_DB_BYTES of it."""
    packed = src / "mlflow.db.gz"
    plain = src / "mlflow.db"
    path = packed if packed.exists() or not plain.exists() else plain
    if not path.exists():
        raise UserError(f"{src}: no mlflow.db.gz, so not a folder written by `store export`")
    written = 0
    with _open_regular(path) as raw, dest.open("xb") as fout:
        fin = gzip.GzipFile(fileobj=raw) if path is packed else raw
        try:
            while chunk := fin.read(CHUNK):
                written += len(chunk)
                if written > MAX_DB_BYTES:
                    raise UserError(f"{path}: unpacks to more than {MAX_DB_BYTES} bytes "
                                    "(the bound on an export's sqlite store)")
                fout.write(chunk)
        except (OSError, EOFError, zlib.error) as err:
            raise UserError(f"{path}: not a readable gzip file ({err})") from None


def _check_sqlite(db: Path, shown: Path) -> None:
    """Refuse a damaged file, and views or triggers MLflow would not have made (a trigger in
    MLflow's schema only RAISEs)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            if con.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise UserError(f"{shown}: the sqlite store is damaged (quick_check failed)")
            schema = con.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as err:
        raise UserError(f"{shown}: not an sqlite store ({err})") from None
    for kind, name, sql in schema:
        if kind == "view" or (kind == "trigger" and not _ONLY_RAISE.search(sql or "")):
            raise UserError(f"{shown}: holds {kind} {name!r}, which MLflow's schema has not; refused")
    if "alembic_version" not in {name for kind, name, _ in schema if kind == "table"}:
        raise UserError(f"{shown}: not an MLflow store (no alembic_version table)")


def read_manifest(src: Path) -> dict:
    """The export's manifest, every field checked (ids in MLflow's shapes, the sweep a valid name)."""
    path = src / MANIFEST
    if not path.exists():
        raise UserError(f"{src}: no {MANIFEST}, so not a folder written by `store export`")
    with _open_regular(path) as fin:
        text = fin.read(MAX_MANIFEST_BYTES + 1)
    if len(text) > MAX_MANIFEST_BYTES:
        raise UserError(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes (the bound on a manifest)")
    try:
        manifest = json.loads(text)
    except ValueError as err:
        raise UserError(f"{path}: not JSON ({err})") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{path}: not a JSON object")
    if manifest.get("format") != FORMAT:
        raise UserError(f"{path}: format {manifest.get('format')!r}, this harness reads format {FORMAT}")
    check_name(manifest.get("sweep"), f"{path}: sweep")
    exp_id = str(manifest.get("experiment_id"))
    if not EXPERIMENT_ID.fullmatch(exp_id):
        raise UserError(f"{path}: experiment_id {manifest.get('experiment_id')!r} is not an MLflow experiment id (digits)")
    checkpoints = manifest.get("checkpoints", {})
    if not isinstance(checkpoints, dict) or not all(isinstance(k, str) and RUN_ID.fullmatch(k) and isinstance(v, str)
                                                    for k, v in checkpoints.items()):
        raise UserError(f"{path}: checkpoints must map MLflow run ids (32 hex digits) to paths")
    return {**manifest, "experiment_id": exp_id, "checkpoints": checkpoints}


class ExportSweep(StoreSweep):
    """A sweep in an export folder, checked whole before anything is written: runs read from a
    private copy of its sqlite store, artifacts and checkpoints from the folder."""

    def __init__(self, src: Path, tmp: Path):
        self.src = src
        manifest = read_manifest(src)
        files, carried = 0, 0
        for path, size in _walk(src):
            files += 1
            if files > MAX_FILES:
                raise UserError(f"{src}: more than {MAX_FILES} files and folders (the bound on an export)")
            if size and path.relative_to(src).parts[0] in ("artifacts", "checkpoints"):
                carried += size
        if carried > MAX_CARRIED_BYTES:
            raise UserError(f"{src}: artifacts and checkpoints of {carried} bytes exceed {MAX_CARRIED_BYTES} "
                            "(the bound on what an import copies)")
        self.budget = Budget(MAX_CARRIED_BYTES)
        db = tmp / "mlflow.db"
        _unpack_db(src, db)
        shown = src / ("mlflow.db.gz" if (src / "mlflow.db.gz").exists() else "mlflow.db")
        _check_sqlite(db, shown)
        try:   # the checkpoints are the folder's, never a path the store names
            super().__init__(client_for(f"sqlite:///{db}"), manifest["sweep"], str(shown), checkpoints={})
        except UserError:
            raise
        except Exception as err:  # noqa: BLE001 - whatever a crafted store makes MLflow raise
            raise UserError(f"{shown}: MLflow cannot read this store ({str(err).splitlines()[0]})") from None
        if self.experiment.experiment_id != manifest["experiment_id"]:
            raise UserError(f"{src / MANIFEST}: experiment_id {manifest['experiment_id']} but the store holds "
                            f"sweep {manifest['sweep']!r} as experiment {self.experiment.experiment_id}")
        ids = {r.info.run_id for r in self.runs}
        bad = sorted(i for i in ids if not RUN_ID.fullmatch(i))
        if bad:
            raise UserError(f"{shown}: run id {bad[0]!r} is not an MLflow run id (32 hex digits)")
        for sub, allowed in (("artifacts", ids), ("checkpoints", set(manifest["checkpoints"]))):
            folder = src / sub
            if folder.exists():
                if not folder.is_dir() or folder.is_symlink():
                    raise UserError(f"{folder}: not a folder")
                stray = sorted(p.name for p in folder.iterdir() if p.name not in allowed or not p.is_dir())
                if stray:
                    raise UserError(f"{folder / stray[0]}: not a run of sweep {manifest['sweep']!r} "
                                    f"({'its manifest' if sub == 'checkpoints' else 'its store'} names no such run)")
        for run_id in manifest["checkpoints"]:
            if run_id not in ids:
                raise UserError(f"{src / MANIFEST}: checkpoint of run {run_id}, which the store does not hold")
            if not (src / "checkpoints" / run_id).is_dir():
                raise UserError(f"{src / 'checkpoints' / run_id}: missing (the manifest lists it)")
        self.checkpoints = {rid: str(src / "checkpoints" / rid) for rid in manifest["checkpoints"]}
        self.manifest = manifest

    def artifacts(self, run, tmp: Path) -> Path | None:
        folder = self.src / "artifacts" / run.info.run_id / "artifacts"
        if not folder.is_dir():
            return None
        _safe_copytree(folder, tmp, self.budget)
        return tmp

    def copy_checkpoint(self, path: Path, dest: Path) -> None:
        _safe_copytree(path, dest, self.budget)
