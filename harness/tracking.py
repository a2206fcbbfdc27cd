"""MLflow bookkeeping: one experiment per study, a parent run per sweep shard, a child run per trial.

Only the sweep's driver process talks to MLflow; Ray workers report through Tune. So an
sqlite store never sees concurrent writers, and a cluster's workers need no access to it.

Runs and their tags:
- parent (tag role=parent): one per (sweep name, shard); params and tags record the study,
  the command and the hardware; experiment.json holds the whole validated experiment,
  which --resume compares against. At the end it receives the aggregated success counts
  (metrics success/OBJECTIVE/THRESHOLD) and the robustness tables (artifacts tables/).
- child (tag role=trial, nested through mlflow.parentRunId): one active run per trial,
  tagged trial_id, arch_id, objective, seed, status (ok/diverged/collapsed/failed),
  headline (the metric thresholds apply to); params = Trial.params(); metric curves;
  samples.png. A retried or resumed trial replaces its earlier attempt, which is ended
  and moved to MLflow's trash (deleted, recoverable), so every trial is counted once.
No run is left RUNNING by a sweep that ends or fails normally; a killed sweep's stale
runs are ended KILLED when it is resumed.
"""
from __future__ import annotations

import json
import logging
import numbers
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# trial statuses that a resumed sweep keeps; a failed trial gets another chance
KEPT_STATUSES = ("ok", "diverged", "collapsed")


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else an sqlite file mlflow.db in the current directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def get_client():
    """An MlflowClient on tracking_uri(), with MLflow's info chatter silenced."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow
    from mlflow import MlflowClient
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    return MlflowClient(tracking_uri=uri)


def experiment_id(client, name: str, create: bool = False) -> str | None:
    exp = client.get_experiment_by_name(name)
    if exp is not None and exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    if exp is None:
        return client.create_experiment(name) if create else None
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


def _now_ms() -> int:
    return int(time.time() * 1000)


def _metrics(values: dict, step: int, ts: int | None = None) -> list:
    from mlflow.entities import Metric
    ts = ts or _now_ms()
    out = []
    for k, v in values.items():
        if isinstance(v, (bool, str)) or not isinstance(v, numbers.Real):
            continue
        out.append(Metric(str(k), float(v), ts, int(step)))
    return out


def log_metrics(client, run_id: str, values: dict, step: int) -> None:
    batch = _metrics(values, step)
    for i in range(0, len(batch), 1000):
        client.log_batch(run_id, metrics=batch[i:i + 1000])


def log_params(client, run_id: str, params: dict) -> None:
    from mlflow.entities import Param
    items = [Param(str(k), json.dumps(v) if isinstance(v, (list, dict)) else str(v)[:6000])
             for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i:i + 100])


def set_tags(client, run_id: str, tags: dict) -> None:
    from mlflow.entities import RunTag
    items = [RunTag(str(k), str(v)[:8000]) for k, v in tags.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, tags=items[i:i + 100])


# ---- the parent run ----------------------------------------------------------------

def hardware() -> str:
    import platform
    text = f"{platform.node()} {platform.machine()} {os.cpu_count()} CPU cores"
    try:
        import torch
        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            text += ", GPUs: " + ", ".join(names)
    except Exception:  # noqa: BLE001 - hardware text is informative only
        pass
    return text


def versions() -> str:
    """The versions a result depends on, for the report beside its figures."""
    from importlib.metadata import PackageNotFoundError, version
    import platform
    parts = [f"python {platform.python_version()}"]
    for pkg in ("torch", "torchvision", "torch-fidelity", "ray", "mlflow", "pandas"):
        try:
            parts.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            pass
    return ", ".join(parts)


def start_parent(client, exp_id: str, sweep: str, shard: str, experiment: dict, n_trials: int,
                 experiment_file: str) -> str:
    run = client.create_run(exp_id, run_name=sweep if shard == "1/1" else f"{sweep} shard {shard}",
                            tags={"role": "parent", "sweep": sweep, "shard": shard,
                                  "command": " ".join(["python -m harness"] + sys.argv[1:]),
                                  "hardware": hardware(), "versions": versions(), "experiment_file": experiment_file})
    rid = run.info.run_id
    log_params(client, rid, {"dataset": experiment["dataset"], "objectives": experiment["objectives"],
                             "thresholds": experiment["thresholds"], "success_metric": experiment["success_metric"],
                             "reproduces": experiment["reproduces"], "n_trials_shard": n_trials,
                             "space": experiment["space"], "budget": experiment["budget"],
                             "eval": experiment["eval"], "seeds": experiment["seeds"]})
    client.log_dict(rid, experiment, "experiment.json")
    return rid


def load_experiment_dict(client, run_id: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, "experiment.json", tmp)
        return json.loads(Path(path).read_text())


def experiment_diff(old, new, prefix: str = "") -> list[str]:
    """Dotted names of the fields that differ, with both values: 'budget.iterations: 200 -> 400'."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                out.append(f"{where}: {old.get(key, '<absent>')!r} -> {new.get(key, '<absent>')!r}")
            else:
                out.extend(experiment_diff(old[key], new[key], where))
        return out
    return [] if old == new else [f"{prefix}: {old!r} -> {new!r}"]


def end_run(client, run_id: str, status: str) -> None:
    client.set_terminated(run_id, status=status, end_time=_now_ms())


def prepare_resume(client, exp_id: str, parent_id: str) -> set[str]:
    """Trial ids this parent already finished (kept); every other child run is ended and trashed."""
    kept = set()
    for run in sorted(children(client, exp_id, parent_id), key=lambda r: r.info.start_time or 0):
        tags = run.data.tags
        done = run.info.status == "FINISHED" and tags.get("status") in KEPT_STATUSES
        if done and tags.get("trial_id") not in kept:
            kept.add(tags["trial_id"])
            continue
        if run.info.status == "RUNNING":
            end_run(client, run.info.run_id, "KILLED")
        client.delete_run(run.info.run_id)
    return kept


# ---- child runs ----------------------------------------------------------------------

class ChildRuns:
    """The sweep's child runs, by trial id: created when Ray starts a trial, ended with it."""

    def __init__(self, client, exp_id: str, parent_id: str, sweep: str, shard: str):
        self.client, self.exp_id, self.parent_id = client, exp_id, parent_id
        self.sweep, self.shard = sweep, shard
        self.open: dict[str, str] = {}        # trial id -> run id of the running attempt
        self.attempts: dict[str, int] = {}
        self.errors: dict[str, str] = {}       # trial id -> last error (shown on the next attempt)

    def start(self, trial_id: str, params: dict) -> str:
        old = self.open.pop(trial_id, None)
        if old:   # a retry: the failed attempt's run goes to the trash, this one replaces it
            end_run(self.client, old, "FAILED")
            self.client.delete_run(old)
        attempt = self.attempts.get(trial_id, 0) + 1
        self.attempts[trial_id] = attempt
        tags = {"mlflow.parentRunId": self.parent_id, "role": "trial", "sweep": self.sweep,
                "shard": self.shard, "trial_id": trial_id, "arch_id": params["arch_id"],
                "objective": params["objective"], "seed": params["seed"], "status": "running",
                "attempt": attempt}
        if trial_id in self.errors:
            tags["previous_error"] = self.errors[trial_id]
        run = self.client.create_run(self.exp_id, run_name=trial_id,
                                     tags={k: str(v) for k, v in tags.items()})
        rid = run.info.run_id
        log_params(self.client, rid, params)
        self.open[trial_id] = rid
        return rid

    def log(self, trial_id: str, points) -> None:
        """points: [(step, {name: value})], written in one batch."""
        if trial_id not in self.open:
            return
        batch = [m for step, values in points for m in _metrics(values, step)]
        for i in range(0, len(batch), 1000):
            self.client.log_batch(self.open[trial_id], metrics=batch[i:i + 1000])

    def finish(self, trial_id: str, final: dict) -> None:
        """End a trial that returned a result: ok, diverged and collapsed are all FINISHED runs."""
        rid = self.open.pop(trial_id)
        summary = {k: final.get(k) for k in ("wall_time_s", "train_time_s", "its_per_s")}
        summary["eval_time_total_s"] = final.get("eval_time_s")
        log_metrics(self.client, rid, {**summary, **(final.get("metrics") or {})}, final.get("iterations") or 0)
        tags = {"status": final["status"], "headline": final.get("headline") or "",
                "iterations": final.get("iterations", 0)}
        if final.get("error"):
            tags["error"] = final["error"]
        set_tags(self.client, rid, tags)
        png = final.get("samples_png")
        if png:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "samples.png"
                path.write_bytes(png)
                self.client.log_artifact(rid, str(path))
        end_run(self.client, rid, "FINISHED")

    def error(self, trial_id: str, message: str, final: bool) -> None:
        """A raised trial: kept RUNNING for its retry, or ended FAILED with status failed."""
        self.errors[trial_id] = message
        rid = self.open.get(trial_id)
        if rid is None:
            return
        set_tags(self.client, rid, {"error": message})
        if final:
            set_tags(self.client, rid, {"status": "failed"})
            end_run(self.client, rid, "FAILED")
            self.open.pop(trial_id)

    def abort_all(self, status: str = "KILLED") -> None:
        for trial_id in list(self.open):
            rid = self.open.pop(trial_id)
            set_tags(self.client, rid, {"status": "killed"})
            end_run(self.client, rid, status)


# ---- aggregation onto the parent -------------------------------------------------------

def runs_frame(runs) -> "pandas.DataFrame":
    """Child runs -> one row per trial: tags, params (prefixed by nothing), final metrics (m:)."""
    import pandas as pd
    rows = []
    for run in runs:
        t, p = run.data.tags, run.data.params
        row = {"run_id": run.info.run_id, "parent_run_id": t.get("mlflow.parentRunId"),
               "run_status": run.info.status, "start_time": run.info.start_time}
        row.update({k: v for k, v in p.items()})
        for key in ("trial_id", "arch_id", "objective", "seed", "status", "headline", "shard", "attempt", "error"):
            row[key] = t.get(key)
        row.update({f"m:{k}": v for k, v in run.data.metrics.items()})
        rows.append(row)
    base = ["run_id", "parent_run_id", "run_status", "start_time", "trial_id", "arch_id", "objective", "seed",
            "status", "headline", "shard", "attempt", "error"]
    df = pd.DataFrame(rows, columns=None if rows else base)
    if df.empty:
        return df
    df["seed"] = pd.to_numeric(df["seed"], errors="coerce")
    # one row per trial even if two shards or attempts ever overlapped: keep the latest
    df = df.sort_values("start_time").drop_duplicates("trial_id", keep="last")
    return df.sort_values("trial_id").reset_index(drop=True)


def aggregate_onto_parent(client, parent_id: str, df, thresholds, objectives, prefix: str = "") -> dict:
    """Success counts as parent metrics, the robustness tables as parent artifacts. Returns the metrics."""
    from . import report
    counts = report.success_counts(df, thresholds, objectives)
    values = {}
    for thr in counts.index:
        for obj in counts.columns:
            values[f"{prefix}success/{obj}/{thr:g}"] = int(counts.loc[thr, obj])
    for obj in objectives:
        sub = df[df["objective"] == obj] if len(df) else df
        values[f"{prefix}trials/{obj}"] = len(sub)
        for status in ("ok", "diverged", "collapsed", "failed"):
            values[f"{prefix}status/{obj}/{status}"] = int((sub["status"] == status).sum()) if len(sub) else 0
    log_metrics(client, parent_id, values, 0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "tables"
        folder.mkdir()
        counts.to_csv(folder / "success_counts.csv")
        pairs = report.all_pair_tables(df, thresholds, objectives)
        pairs.to_csv(folder / "pairs.csv", index=False)
        (folder / "robustness.md").write_text(report.tables_markdown(df, thresholds, objectives))
        client.log_artifacts(parent_id, str(folder), f"{prefix}tables")
    return values


# ---- the UI --------------------------------------------------------------------------

def launch_ui(host: str = "127.0.0.1", port: int = 5000) -> int:
    """MLflow's UI (mlflow server) on the project's store; blocks until interrupted."""
    uri = tracking_uri()
    if uri.startswith("http"):
        print(f"MLFLOW_TRACKING_URI is a server already: open {uri}", file=sys.stderr)
        return 0
    exe = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which("mlflow")
    cmd = [exe, "server", "--backend-store-uri", uri, "--host", host, "--port", str(port)] if exe else \
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    print(f"MLflow UI on http://{host}:{port} (store {uri}); Ctrl-C stops it", file=sys.stderr)
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0
