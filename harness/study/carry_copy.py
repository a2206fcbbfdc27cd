"""The copy routine of `store copy / export / import` (carry.py): one sweep from any MLflow
store to any other through MLflow's client API (search_runs, get_metric_history, create_run
with the start time, log_batch, log_artifacts, set_terminated with the end time, delete_run),
so an sqlite file, an `mlflow server` over HTTP and PostgreSQL are all the same to it.

A copy keeps params, tags (trial_id, role, status, checkpoint ...), full metric histories
(values, steps, timestamps, in the source's key order), run names, statuses, start and end
times, artifacts and parent-child links (tag mlflow.parentRunId, rewritten to the new
parent); runs in MLflow's trash are copied and trashed again, so they never come back as
active. MLflow gives every created run a new id (its API cannot choose one), so run ids are
the one thing that differs between copies; `copy_sweep` returns the map.
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ..errors import UserError
from . import store

RUN_ID = re.compile(r"[0-9a-f]{32}")          # MLflow's run ids: uuid4().hex


def redact(uri: str) -> str:
    """A tracking URI fit to print or record: any password replaced by ***."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def scrub(text: str, uri: str) -> str:
    """`text` (an error MLflow raised about `uri`, which quotes the URL) without the URI's password."""
    password = urlsplit(uri).password
    return text.replace(password, "***") if password else text


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
            raise UserError(f"cannot reach the MLflow store {redact(uri)}: {scrub(str(err).splitlines()[0], uri)}") from None
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
    """Copy every run of `source` into a new experiment at `target`, parents first; on any
    failure the target is undone (Target.discard).

    checkpoints_to: copy each unfinished run's checkpoint to CHECKPOINTS_TO/NEW_RUN_ID;
    retag_checkpoints: point the runs' `checkpoint` tags at those copies (and drop the tags of
    runs whose checkpoint did not travel: a path on another machine). Returns the run id map
    (source -> copy) and the copied checkpoints (copy's run id -> original path)."""
    exp_tags = {k: v for k, v in source.experiment.tags.items() if not k.startswith("mlflow.")}
    ids: dict[str, str] = {}
    copied: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="harness-carry-") as tmp:
        try:
            exp_id = target.create(exp_tags, artifact_location)
            for n, run in enumerate(source.runs):
                rid = _copy_run(source, target, exp_id, run, ids, Path(tmp) / str(n), drop_checkpoint=retag_checkpoints)
                checkpoint = source.checkpoint(run)
                if checkpoint is not None and checkpoints_to is not None:
                    if not RUN_ID.fullmatch(rid):      # a folder name: only MLflow's shape of id
                        raise UserError(f"{redact(target.uri)} gave run id {rid!r}, not an MLflow run id")
                    dest = checkpoints_to / rid
                    target.made.append(dest)
                    source.copy_checkpoint(checkpoint, dest)
                    copied[rid] = str(checkpoint)
                    if retag_checkpoints:
                        target.client.set_tag(rid, "checkpoint", str(dest))
                _end_like(target.client, rid, run)
            target.commit()
        except BaseException:
            target.discard()
            raise
    return {"experiment_id": exp_id, "ids": ids, "checkpoints": copied,
            "runs": sum(r.info.lifecycle_stage == "active" for r in source.runs),
            "trashed": sum(r.info.lifecycle_stage == "deleted" for r in source.runs)}


def _copy_run(source: StoreSweep, target: Target, exp_id: str, run, ids: dict[str, str], tmp: Path,
              drop_checkpoint: bool) -> str:
    """One run's name, start time, tags (its parent link mapped through `ids`), params, metric
    histories and artifacts, as a new run of `exp_id`; its id, also entered in `ids`."""
    from mlflow.entities import Metric, Param
    src, dst, info = source.client, target.client, run.info
    tags = {k: v for k, v in run.data.tags.items() if k not in ("mlflow.runName", "mlflow.parentRunId")}
    parent = run.data.tags.get("mlflow.parentRunId")
    if parent in ids:
        tags["mlflow.parentRunId"] = ids[parent]
    if drop_checkpoint:
        tags.pop("checkpoint", None)
    rid = dst.create_run(exp_id, start_time=info.start_time, tags=tags, run_name=info.run_name).info.run_id
    ids[info.run_id] = rid
    for batch in _batches([Param(k, v) for k, v in run.data.params.items()], store.PARAM_BATCH):
        dst.log_batch(rid, params=batch)
    history = [Metric(m.key, m.value, m.timestamp, m.step)
               for key in run.data.metrics for m in src.get_metric_history(info.run_id, key)]
    for batch in _batches(history, store.BATCH):
        dst.log_batch(rid, metrics=batch)
    files = source.artifacts(run, tmp)
    if files is not None:
        dst.log_artifacts(rid, str(files))
        shutil.rmtree(files, ignore_errors=True)
    return rid


def _end_like(client, rid: str, run) -> None:
    """The copy ends as the source did (status, end time) and goes to the trash if it was there;
    a run still RUNNING stays so (a resumed sweep ends it KILLED)."""
    if run.info.status in ("FINISHED", "FAILED", "KILLED"):
        client.set_terminated(rid, run.info.status, end_time=run.info.end_time)
    if run.info.lifecycle_stage == "deleted":
        client.delete_run(rid)
