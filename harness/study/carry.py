"""Carry one sweep between MLflow stores and machines: `python -m harness store export / import / copy`.

A long study outlives a working session, a session may start on a fresh machine, and a team
keeps its sweeps on one tracking server. What the next machine needs is the sweep's runs, their
artifacts, and the latest checkpoint of every trial that was cut off, so `--resume` continues
those trials instead of starting them over.

Every copy goes through MLflow's client API (search_runs, get_metric_history, create_run with
the start time, log_batch, log_artifacts, set_terminated with the end time, delete_run), so it
works between any two backends: an sqlite file, an `mlflow server` over HTTP, PostgreSQL. It
keeps params, tags (trial_id, role, status, checkpoint ...), full metric histories (values,
steps, timestamps), run names, statuses, start and end times, artifacts and parent-child links
(tag mlflow.parentRunId, rewritten to the new parent); runs in MLflow's trash are copied and
trashed again, so they never come back as active. MLflow gives every created run a new id
(its API cannot choose one), so only run ids differ between the copies.

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
checks the whole folder before it writes anything anywhere: ids must have MLflow's shapes
(experiment ids digits, run ids 32 hex digits) and are the only names it derives paths from;
only regular files and folders are read (a symlink, fifo or device is refused, and files are
opened without following links); the unpacked sqlite store, the bytes of artifacts and
checkpoints and the number of files are bounded (MAX_*); the sqlite file must pass
`quick_check` and hold no views nor triggers beyond MLflow's own kind (ones that only RAISE).
It is opened as a private temporary copy, never in place.
"""
from __future__ import annotations

import atexit
import errno
import gzip
import json
import os
import re
import shutil
import sqlite3
import stat
import tempfile
import time
import uuid
import zlib
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ..config import check_name
from ..errors import UserError
from . import store

FORMAT = 1
MANIFEST = "manifest.json"
RUN_ID = re.compile(r"[0-9a-f]{32}")          # MLflow's run ids: uuid4().hex
EXPERIMENT_ID = re.compile(r"[0-9]{1,18}")    # MLflow's experiment ids: integers
# Bounds on what an imported folder may hold (a study of ~100 trials is ~20 MB of sqlite and
# ~10 MB of artifacts; checkpoints are a few MB each).
MAX_MANIFEST_BYTES = 1 << 20
MAX_DB_BYTES = 2 << 30            # the unpacked sqlite store
MAX_CARRIED_BYTES = 16 << 30      # artifacts + checkpoints
MAX_FILES = 200_000               # every file and folder of the export
CHUNK = 1 << 20
_ONLY_RAISE = re.compile(r"\bBEGIN\s+(SELECT\s+RAISE\s*\(\s*\w+\s*,\s*'[^']*'\s*\)\s*;\s*)+END\s*$", re.I | re.S)


# ---- stores and clients ------------------------------------------------------------------

def redact(uri: str) -> str:
    """A tracking URI fit to print or record: any password replaced by ***."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def client_for(uri: str):
    """An MlflowClient on `uri`, MLflow's info chatter silenced; unlike store.get_client it
    neither changes the global tracking URI nor opens MLFLOW_TRACKING_URI's store."""
    import logging
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from mlflow import MlflowClient
    return MlflowClient(tracking_uri=uri)


_EMPTY_STORE: list[Path] = []


def new_sqlite_store(path: Path) -> None:
    """An empty MLflow sqlite store at `path`. MLflow makes one by running all its migrations
    (seconds, more on a busy machine), so that is done once per process, in a private temporary
    folder, and later stores are copies of it."""
    if not _EMPTY_STORE or not _EMPTY_STORE[0].is_file():
        folder = Path(tempfile.mkdtemp(prefix="harness-empty-store-"))
        atexit.register(shutil.rmtree, folder, True)
        client_for(f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
        _EMPTY_STORE[:] = [folder / "mlflow.db"]
    shutil.copyfile(_EMPTY_STORE[0], path)


def sqlite_file(uri: str) -> Path | None:
    """The file of an sqlite tracking URI, None for any other backend (or an in-memory one)."""
    path = uri[len("sqlite:///"):].split("?")[0] if uri.startswith("sqlite:///") else ""
    return Path(path) if path not in ("", ":memory:") else None


def all_runs(client, exp_id: str) -> list:
    """Every run of the experiment, active and trashed, parents before their children."""
    from mlflow.entities import ViewType
    runs, token = [], None
    while True:
        page = client.search_runs([exp_id], "", run_view_type=ViewType.ALL, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    runs.sort(key=lambda r: (r.info.start_time or 0, r.info.run_id))
    ids = {r.info.run_id for r in runs}
    ordered, placed, pending = [], set(), runs
    while pending:
        waiting = ids - placed
        ready = [r for r in pending if r.data.tags.get("mlflow.parentRunId") not in waiting]
        ready = ready or pending            # a cycle (a crafted store): its links cannot all be kept
        ordered += ready
        placed |= {r.info.run_id for r in ready}
        pending = [r for r in pending if r.info.run_id not in placed]
    return ordered


def local_dir(location: str | None) -> Path | None:
    """A local folder from a path or file:// URI; None for a remote location."""
    if not location:
        return None
    parsed = urlsplit(location)
    if parsed.scheme == "file":
        return Path(parsed.path)
    return Path(location) if not parsed.scheme else None


def unfinished_checkpoints(client, exp_id: str) -> dict[str, str]:
    """run id -> checkpoint folder, for every active child run that has not finished and whose
    `checkpoint` tag names a folder on this machine: what --resume would continue from."""
    found = {}
    for run in store.children(client, exp_id):
        path = run.data.tags.get("checkpoint")
        if run.info.status != "FINISHED" and path and not urlsplit(path).scheme and Path(path).is_dir():
            found[run.info.run_id] = path
    return found


class StoreSweep:
    """A sweep in a live store: runs through the client, artifacts downloaded through it,
    checkpoints where the unfinished runs' tags say."""

    def __init__(self, client, name: str, where: str, checkpoints: dict[str, str] | None = None):
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise UserError(f"no sweep named {name!r} in {where}")
        if exp.lifecycle_stage == "deleted":
            raise UserError(f"sweep {name!r} is in MLflow's trash in {where}; restore it first "
                            f"(mlflow experiments restore --experiment-id {exp.experiment_id})")
        self.client, self.name, self.experiment = client, name, exp
        self.runs = all_runs(client, exp.experiment_id)
        self.checkpoints = unfinished_checkpoints(client, exp.experiment_id) if checkpoints is None else checkpoints

    def artifacts(self, run, tmp: Path) -> Path | None:
        """A local folder with the run's artifacts, None when it has none."""
        if not self.client.list_artifacts(run.info.run_id):
            return None
        tmp.mkdir(parents=True)
        return Path(self.client.download_artifacts(run.info.run_id, "", str(tmp)))

    def checkpoint(self, run) -> Path | None:
        path = self.checkpoints.get(run.info.run_id)
        return Path(path) if path else None

    def copy_checkpoint(self, path: Path, dest: Path) -> None:
        shutil.copytree(path, dest)


# ---- reading an export folder, which may be hostile ---------------------------------------

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


# ---- writing: one copy routine for every direction -----------------------------------------

def _batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


class Target:
    """Where a copy goes: a tracking URI without a sweep of that name. A new sqlite file is
    built aside and moved into place at the end; in any other store a failed copy's
    experiment is renamed and trashed, so the name stays free for the next try."""

    def __init__(self, uri: str, name: str):
        self.uri, self.name = uri, name
        self.exp_id = None
        self.made: list[Path] = []     # local folders this copy created
        self.file = sqlite_file(uri)
        self.aside = None
        if self.file is not None and not self.file.exists():
            self.file.parent.mkdir(parents=True, exist_ok=True)
            self.aside = self.file.with_name(f".{self.file.name}.partial-{uuid.uuid4().hex[:8]}")
            new_sqlite_store(self.aside)
        self.client = client_for(f"sqlite:///{self.aside.resolve()}" if self.aside else uri)
        from mlflow.exceptions import MlflowException
        try:
            exists = self.client.get_experiment_by_name(name)
        except (MlflowException, OSError) as err:
            self.discard()
            raise UserError(f"cannot reach the MLflow store {redact(uri)}: {str(err).splitlines()[0]}") from None
        if exists is not None:
            self.discard()
            where = " (in MLflow's trash)" if exists.lifecycle_stage == "deleted" else ""
            raise UserError(f"{redact(uri)} already holds a sweep named {name!r}{where}; a copy makes a new one")

    def create(self, tags: dict, artifact_location: str | None) -> str:
        location = artifact_location
        if location and not urlsplit(location).scheme:
            location = str(Path(location).resolve())
        folder = local_dir(location)
        if folder is not None and folder.exists() and any(folder.iterdir()):
            raise UserError(f"{folder} exists and is not empty: a copy writes artifacts only to a new folder")
        self.exp_id = self.client.create_experiment(self.name, artifact_location=location, tags=tags or None)
        folder = local_dir(self.client.get_experiment(self.exp_id).artifact_location)
        if folder is not None:
            if folder.exists() and any(folder.iterdir()):
                raise UserError(f"{folder} (the new sweep's artifact location) exists and is not empty: "
                                "pass --artifacts with a new folder")
            self.made.append(folder)
        return self.exp_id

    def commit(self) -> None:
        if self.aside is not None:
            if self.file.exists():
                raise UserError(f"{self.file} appeared while copying; the copy is left at {self.aside}")
            os.rename(self.aside, self.file)
            self.aside = None

    def discard(self) -> None:
        """Undo a copy that failed: nothing of it is left as an active sweep."""
        for folder in self.made:
            shutil.rmtree(folder, ignore_errors=True)
        if self.aside is not None:
            self.aside.unlink(missing_ok=True)
        elif self.exp_id is not None:
            try:
                self.client.rename_experiment(self.exp_id, f"{self.name}.failed-copy-{uuid.uuid4().hex[:8]}")
                self.client.delete_experiment(self.exp_id)
            except Exception:  # noqa: BLE001 - the copy's own error is the one to report
                pass


def copy_sweep(source: StoreSweep, target: Target, artifact_location: str | None = None,
               checkpoints_to: Path | None = None, retag_checkpoints: bool = False) -> dict:
    """Copy every run of `source` into a new experiment at `target`, parents first.

    checkpoints_to: copy each unfinished run's checkpoint to CHECKPOINTS_TO/NEW_RUN_ID;
    retag_checkpoints: point the runs' `checkpoint` tags at those copies (and drop the tags of
    runs whose checkpoint did not travel: a path on another machine). Returns the run id map."""
    from mlflow.entities import Metric, Param, RunTag
    src, dst = source.client, target.client
    exp_tags = {k: v for k, v in source.experiment.tags.items() if not k.startswith("mlflow.")}
    ids: dict[str, str] = {}
    copied_checkpoints: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="harness-carry-") as tmp:
        try:
            exp_id = target.create(exp_tags, artifact_location)
            for n, run in enumerate(source.runs):
                info, tags = run.info, dict(run.data.tags)
                tags.pop("mlflow.runName", None)
                parent = tags.pop("mlflow.parentRunId", None)
                if parent in ids:
                    tags["mlflow.parentRunId"] = ids[parent]
                checkpoint = source.checkpoint(run)
                if retag_checkpoints:
                    tags.pop("checkpoint", None)
                new = dst.create_run(exp_id, start_time=info.start_time, tags=tags, run_name=info.run_name)
                rid = new.info.run_id
                ids[info.run_id] = rid
                if checkpoint is not None and checkpoints_to is not None:
                    dest = checkpoints_to / rid
                    target.made.append(dest)
                    source.copy_checkpoint(checkpoint, dest)
                    copied_checkpoints[rid] = str(checkpoint)
                    if retag_checkpoints:
                        dst.set_tag(rid, "checkpoint", str(dest))
                params = [Param(k, v) for k, v in run.data.params.items()]
                for batch in _batches(params, store.PARAM_BATCH):
                    dst.log_batch(rid, params=batch)
                history = [Metric(m.key, m.value, m.timestamp, m.step)
                           for key in run.data.metrics for m in src.get_metric_history(info.run_id, key)]
                for batch in _batches(history, store.BATCH):
                    dst.log_batch(rid, metrics=batch)
                files = source.artifacts(run, Path(tmp) / str(n))
                if files is not None:
                    dst.log_artifacts(rid, str(files))
                    shutil.rmtree(files, ignore_errors=True)
                if info.status in ("FINISHED", "FAILED", "KILLED"):
                    dst.set_terminated(rid, info.status, end_time=info.end_time)
                if info.lifecycle_stage == "deleted":
                    dst.delete_run(rid)
            target.commit()
        except BaseException:
            target.discard()
            raise
    return {"experiment_id": exp_id, "ids": ids, "checkpoints": copied_checkpoints,
            "runs": sum(r.info.lifecycle_stage == "active" for r in source.runs),
            "trashed": sum(r.info.lifecycle_stage == "deleted" for r in source.runs)}


# ---- the three commands -------------------------------------------------------------------

def copy_store(name: str, to_uri: str, from_uri: str | None = None, artifact_location: str | None = None) -> dict:
    """Copy sweep `name` from FROM_URI (default MLFLOW_TRACKING_URI) to TO_URI, e.g. a local
    sweep onto the team's server; checkpoints stay where their tags say."""
    from_uri = from_uri or store.tracking_uri()
    if to_uri == from_uri:
        raise UserError(f"--to {redact(to_uri)} is the store the sweep is read from")
    source = StoreSweep(client_for(from_uri), name, redact(from_uri))
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
    source = StoreSweep(client_for(uri), name, redact(uri))
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
