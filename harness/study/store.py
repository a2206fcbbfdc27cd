"""MLflow: one experiment per sweep name, a parent run per shard, a child run per trial.

Only the sweep's driver process talks to MLflow; Ray workers report through Tune. So a
cluster's workers need no access to the store, and a sweep shard has one writer: its
driver holds a lease on it (sweep/lease.py). Writes from the driver go through `Retrying`,
so a passing store error costs a retry, not a trial.

Runs and their tags:
- parent (tag role=parent): one per (sweep name, shard); params and tags record the study,
  the command and the hardware; experiment.json holds the whole validated experiment,
  which --resume compares against. At the end it receives the aggregated success counts
  (metrics success/OBJECTIVE/THRESHOLD) and the robustness tables (artifacts tables/).
- child (tag role=trial, nested through mlflow.parentRunId): one active run per trial,
  tagged trial_id, arch_id, objective, seed, status, headline; params = Trial.params();
  metric curves; the record's summary as final metrics; samples.png. A retried or resumed
  trial replaces its earlier attempt, which is ended and moved to MLflow's trash (deleted,
  recoverable), so every trial is counted once.
No run is left RUNNING by a sweep that ends or fails normally; a killed sweep's stale
runs are ended KILLED when it is resumed. Reading (`find_experiment`, `read_records`)
never changes the store.
"""
from __future__ import annotations

import json
import logging
import numbers
import os
import sys
import tempfile
import time
from pathlib import Path

from .. import provenance
from ..record import ANSWERS, FAILED, TrialRecord

from .store_retry import Retrying, is_permanent, retrying  # noqa: F401 - the store's calls, retried

RUNNING, KILLED = "running", "killed"   # child-run states besides the trial outcomes
BATCH = 1000                            # MLflow's limit of metrics per log_batch
PARAM_BATCH = 100                       # ... and of params and tags
LOST_TAG = "lost_attempt_s"               # on a retried trial's run: seconds of its failed attempts


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else an sqlite file mlflow.db in the current directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def sqlite_file(uri: str | None = None) -> Path | None:
    """The file of a local sqlite store (`sqlite:///PATH`), else None (a server, another database)."""
    uri = uri or tracking_uri()
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?")[0]
    return None if path in ("", ":memory:") else Path(path)


def store_exists() -> bool:
    """Whether there is a store to read: False only for a local sqlite file not created yet, so a
    read-only check need not create it (opening an sqlite store creates the file and its tables)."""
    path = sqlite_file()
    return path is None or path.exists()


def get_client():
    """An MlflowClient on tracking_uri(), with MLflow's info chatter silenced.

    Opening a new sqlite file creates MLflow's tables by running its migrations; two sweeps
    started together on a fresh file both ran them and one died ("duplicate column name:
    step"). So a local sqlite store is opened under a file lock beside it (FILE.lock): the
    second process waits, then finds the tables made."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow
    from mlflow import MlflowClient
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    path = sqlite_file(uri)
    if path is None or not path.parent.is_dir():    # a missing folder: MLflow's own error names it
        return MlflowClient(tracking_uri=uri)
    from filelock import FileLock
    with FileLock(f"{path}.lock"):
        return MlflowClient(tracking_uri=uri)      # creates (and migrates) the store, once


def find_experiment(client, name: str):
    """The MLflow experiment of sweep `name` (active or in the trash), or None. Read-only."""
    return client.get_experiment_by_name(name)


def latest_sweep(client) -> str:
    """The name of the sweep whose parent run started or ended last in this store: what
    `harness report` (and `make report`) rebuild when no name is given. Read-only."""
    from ..errors import UserError
    exps = {e.experiment_id: e.name for e in client.search_experiments()}
    best, when = None, -1
    for exp_id, name in exps.items():
        for run in search_all(client, exp_id, "tags.role = 'parent'"):
            t = max(run.info.start_time or 0, run.info.end_time or 0)
            if t > when:
                best, when = name, t
    if best is None:
        raise UserError(f"no sweep in {tracking_uri()}: run one first (make sweep), or name one")
    return best


def open_experiment(client, name: str) -> str:
    """The id of sweep `name`'s MLflow experiment, created, or restored from the trash (MLflow
    refuses a new experiment under a deleted one's name)."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return client.create_experiment(name)
        except Exception as err:
            exp = client.get_experiment_by_name(name)   # another driver created it meanwhile
            if exp is None:
                raise err from None
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    return exp.experiment_id


def search_all(client, exp_id: str, filter_string: str) -> list:
    """Every active run matching the filter, across pages."""
    runs, token = [], None
    while True:
        page = client.search_runs([exp_id], filter_string, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def parents(client, exp_id: str) -> list:
    return search_all(client, exp_id, "tags.role = 'parent'")


def children(client, exp_id: str, parent_id: str | None = None) -> list:
    f = "tags.role = 'trial'"
    if parent_id:
        f += f" and tags.`mlflow.parentRunId` = '{parent_id}'"
    return search_all(client, exp_id, f)


# ---- writing -------------------------------------------------------------------------

def _now_ms() -> int:
    return int(time.time() * 1000)


def _metrics(values: dict, step: int, ts: int | None = None) -> list:
    from mlflow.entities import Metric
    ts = ts or _now_ms()
    return [Metric(str(k), float(v), ts, int(step)) for k, v in values.items()
            if isinstance(v, numbers.Real) and not isinstance(v, bool)]


def log_points(client, run_id: str, points) -> None:
    """points: [(step, {name: value})], written in batches."""
    batch = [m for step, values in points for m in _metrics(values, step)]
    for i in range(0, len(batch), BATCH):
        client.log_batch(run_id, metrics=batch[i:i + BATCH])


def log_params(client, run_id: str, params: dict) -> None:
    from mlflow.entities import Param
    items = [Param(str(k), json.dumps(v) if isinstance(v, (list, dict)) else str(v)[:6000])
             for k, v in params.items()]
    for i in range(0, len(items), PARAM_BATCH):
        client.log_batch(run_id, params=items[i:i + PARAM_BATCH])


def set_tags(client, run_id: str, tags: dict) -> None:
    from mlflow.entities import RunTag
    items = [RunTag(str(k), str(v)[:8000]) for k, v in tags.items()]
    for i in range(0, len(items), PARAM_BATCH):
        client.log_batch(run_id, tags=items[i:i + PARAM_BATCH])


def end_run(client, run_id: str, status: str) -> None:
    client.set_terminated(run_id, status=status, end_time=_now_ms())


SWEEP_RUN_METRIC = "sweep_run_s"    # on the parent: wall seconds of each sweep run (step 0, 1, ...)
SWEEP_CLOCK_S = 60.0                # how often a running sweep logs it (a killed run's is short by at most this)


def next_sweep_run(client, parent_id: str) -> int:
    """The step under which this sweep run (the first, or a --resume) logs its wall time."""
    return len({m.step for m in client.get_metric_history(parent_id, SWEEP_RUN_METRIC)})


def log_sweep_run(client, parent_id: str, step: int, seconds: float) -> None:
    """Sweep run `step` of this shard has been going for `seconds` of wall time: logged as it
    runs and once more at its end, so a sweep killed outright leaves its time up to its last
    log."""
    client.log_metric(parent_id, SWEEP_RUN_METRIC, float(seconds), step=step)


def sweep_run_seconds(client, parent) -> list[float]:
    """Wall seconds of each sweep run of this shard (the latest value logged for each). A
    parent from before that metric: its start-to-end span if it ran once; nothing if it was
    resumed (its span would count the pause between the runs)."""
    history = client.get_metric_history(parent.info.run_id, SWEEP_RUN_METRIC)
    if history:
        latest: dict[int, float] = {}
        for m in history:
            latest[m.step] = max(latest.get(m.step, 0.0), m.value)
        return [latest[step] for step in sorted(latest)]
    info = parent.info
    if info.start_time and info.end_time and "resumed" not in parent.data.tags:
        return [(info.end_time - info.start_time) / 1000.0]
    return []


def start_parent(client, exp_id: str, sweep: str, shard: str, experiment: dict, n_trials: int,
                 experiment_file: str, extra_params: dict | None = None) -> str:
    run = client.create_run(exp_id, run_name=sweep if shard == "1/1" else f"{sweep} shard {shard}",
                            tags={"role": "parent", "sweep": sweep, "shard": shard,
                                  "command": provenance.command_line(), "hardware": provenance.hardware(),
                                  "versions": provenance.versions(), "experiment_file": experiment_file})
    rid = run.info.run_id
    keys = ("dataset", "objectives", "thresholds", "success_metric", "reproduces", "space", "budget", "eval", "seeds")
    log_params(client, rid, {**{k: experiment[k] for k in keys}, "n_trials_shard": n_trials, **(extra_params or {})})
    client.log_dict(rid, experiment, "experiment.json")
    return rid


def load_experiment_dict(client, run_id: str) -> dict:
    """The validated experiment a parent run began with (its experiment.json)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, "experiment.json", tmp)
        return json.loads(Path(path).read_text())


def answered_trials(client, exp_id: str, parent_id: str) -> dict[str, str]:
    """trial id -> run id of the first FINISHED child run with an answer (ok, diverged,
    collapsed): what --resume keeps. Read-only."""
    kept: dict[str, str] = {}
    for run in sorted(children(client, exp_id, parent_id), key=lambda r: r.info.start_time or 0):
        tags = run.data.tags
        if run.info.status == "FINISHED" and tags.get("status") in ANSWERS:
            kept.setdefault(tags.get("trial_id"), run.info.run_id)
    return kept


def latest_checkpoints(client, exp_id: str, parent_id: str, kept: dict[str, str]) -> dict[str, dict]:
    """trial id -> {"path", "iteration"} of the newest checkpoint an unanswered child run of
    the parent recorded (tags `checkpoint`, `checkpoint_iteration`): where --resume continues
    those trials from. Read before `discard_unanswered` trashes the runs. Read-only."""
    found: dict[str, dict] = {}
    for run in children(client, exp_id, parent_id):
        t = run.data.tags
        tid = t.get("trial_id")
        if tid in kept or not t.get("checkpoint"):
            continue
        it = int(t.get("checkpoint_iteration") or 0)
        if it > found.get(tid, {}).get("iteration", -1):
            found[tid] = {"path": t["checkpoint"], "iteration": it}
    return found


def discard_unanswered(client, exp_id: str, parent_id: str, kept: dict[str, str]) -> None:
    """End (KILLED) and trash every child run of the parent that is not kept, before a resume."""
    keep = set(kept.values())
    for run in children(client, exp_id, parent_id):
        if run.info.run_id in keep:
            continue
        if run.info.status == "RUNNING":
            end_run(client, run.info.run_id, "KILLED")
        client.delete_run(run.info.run_id)


def trial_label(objective: str, seed, arch_id: str, status: str, metric: str | None = None,
                value: float | None = None) -> str:
    """A child run's name as the MLflow runs list shows it, the one column always visible:
    method, seed, architecture, outcome and headline score, e.g.
    'wgan-gp · seed 1 · 8eff0f51 · ok · is1k_fmnistclf 4.31'."""
    parts = [str(objective), f"seed {seed}", str(arch_id), str(status)]
    if metric and isinstance(value, numbers.Real):
        parts.append(f"{metric} {value:.3g}")
    return " · ".join(parts)[:250]


class ChildRuns:
    """The sweep's child runs, by trial id: created when Ray starts a trial, ended with it."""

    def __init__(self, client, exp_id: str, parent_id: str, sweep: str, shard: str):
        self.client, self.exp_id, self.parent_id = retrying(client), exp_id, parent_id
        self.sweep, self.shard = sweep, shard
        self.open: dict[str, str] = {}        # trial id -> run id of the running attempt
        self.attempts: dict[str, int] = {}
        self.errors: dict[str, str] = {}      # trial id -> last error (shown on the next attempt)
        self.started_ms: dict[str, int] = {}  # trial id -> when its running attempt's run began
        self.lost_s: dict[str, float] = {}    # trial id -> seconds of its failed attempts (their runs deleted)

    def start(self, trial_id: str, params: dict) -> str:
        old = self.open.pop(trial_id, None)
        if old:   # a retry: the failed attempt's run goes to the trash, this one replaces it, carrying its time
            self.lost_s[trial_id] = self.lost_s.get(trial_id, 0.0) + (_now_ms() - self.started_ms.pop(trial_id)) / 1000
            end_run(self.client, old, "FAILED")
            self.client.delete_run(old)
        attempt = self.attempts.get(trial_id, 0) + 1
        self.attempts[trial_id] = attempt
        tags = {"mlflow.parentRunId": self.parent_id, "role": "trial", "sweep": self.sweep,
                "shard": self.shard, "trial_id": trial_id, "arch_id": params["arch_id"],
                "objective": params["objective"], "seed": params["seed"], "status": RUNNING,
                "attempt": attempt}
        if trial_id in self.errors:
            tags["previous_error"] = self.errors[trial_id]
        if self.lost_s.get(trial_id):
            tags[LOST_TAG] = f"{self.lost_s[trial_id]:.1f}"
        run = self.client.create_run(self.exp_id, run_name=trial_label(params["objective"], params["seed"],
                                                                       params["arch_id"], RUNNING),
                                     tags={k: str(v) for k, v in tags.items()})
        self.started_ms[trial_id] = run.info.start_time or _now_ms()
        self.open[trial_id] = run.info.run_id      # before its params: a failure there leaves it open, not lost
        log_params(self.client, run.info.run_id, params)
        return run.info.run_id

    def tag(self, trial_id: str, tags: dict) -> None:
        if trial_id in self.open:
            set_tags(self.client, self.open[trial_id], tags)

    def _delete_tags(self, rid: str, keys) -> None:
        """Delete those of `keys` the run has (an earlier attempt's run may have held them)."""
        present = self.client.get_run(rid).data.tags if keys else {}
        for key in keys:
            if key in present:
                self.client.delete_tag(rid, key)

    def log(self, trial_id: str, points) -> None:
        if trial_id in self.open:
            log_points(self.client, self.open[trial_id], points)

    def finish(self, record: TrialRecord, samples_png: bytes | None = None, drop_tags=()) -> bool:
        """End a trial that returned a record: ok, diverged and collapsed are all FINISHED runs.
        drop_tags: tags to delete once the run has ended (a checkpoint pointer whose files are
        about to go; until the run is FINISHED it is what --resume continues from). The run
        stays open until it has ended, so a call that fails can be made again. Returns whether
        the tags were dropped too (the run is FINISHED either way)."""
        rid = self.open[record.trial_id]
        tags, values = record.to_mlflow()
        log_points(self.client, rid, [(record.iterations, values)])
        set_tags(self.client, rid, tags)
        value = record.metrics.get(record.headline) if record.headline else None
        self.client.update_run(rid, name=trial_label(record.objective, record.seed, record.arch_id, record.status,
                                                     record.headline, value))
        if samples_png:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "samples.png"
                path.write_bytes(samples_png)
                self.client.log_artifact(rid, str(path))
        end_run(self.client, rid, "FINISHED")
        self.open.pop(record.trial_id, None)
        try:
            self._delete_tags(rid, drop_tags)
        except Exception as err:  # noqa: BLE001 - the record is in; a stale pointer is only kept
            print(f"[{record.trial_id}] recorded, but could not drop its tags {list(drop_tags)}: {err}", file=sys.stderr)
            return False
        return True

    def error(self, trial_id: str, message: str, final: bool) -> None:
        """A raised trial: kept RUNNING for its retry, or ended FAILED with status failed."""
        self.errors[trial_id] = message
        rid = self.open.get(trial_id)
        if rid is None:
            return
        set_tags(self.client, rid, {"error": message, **({"status": FAILED} if final else {})})
        if final:
            end_run(self.client, rid, "FAILED")
            self.open.pop(trial_id)

    def abort_all(self, status: str = "KILLED") -> None:
        for trial_id in list(self.open):
            rid = self.open.pop(trial_id, None)   # None: ended meanwhile (a sweep stopping from another thread)
            if rid is None:
                continue
            set_tags(self.client, rid, {"status": KILLED})
            end_run(self.client, rid, status)


# ---- reading -------------------------------------------------------------------------

def record_from_run(run) -> TrialRecord:
    """A child run back as the TrialRecord it was written from (TrialRecord.from_mlflow), with
    where the store keeps it: run ids, status, times, shard, attempt and any lost attempts' time."""
    t = run.data.tags
    tracking = {"run_id": run.info.run_id, "parent_run_id": t.get("mlflow.parentRunId"),
                "run_status": run.info.status, "start_time": run.info.start_time, "end_time": run.info.end_time,
                "shard": t.get("shard"), "attempt": int(t["attempt"]) if t.get("attempt") else None,
                # only where an attempt was lost, so stores without one keep their columns
                **({LOST_TAG: float(t[LOST_TAG])} if t.get(LOST_TAG) else {})}
    return TrialRecord.from_mlflow(t, run.data.metrics, run.data.params, tracking)


def read_records(client, exp_id: str, parent_id: str | None = None) -> list[TrialRecord]:
    return [record_from_run(run) for run in children(client, exp_id, parent_id)]
