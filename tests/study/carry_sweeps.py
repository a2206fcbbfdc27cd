"""A small sweep to carry, and a backend-neutral picture of a sweep to compare copies by
(tests of harness/study/carry*.py: test_carry*.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import from_dict
from harness.record import TrialRecord
from harness.study import carry, carry_copy, store
from harness.trial import trials_of


def made_store(path: Path) -> str:
    """An existing empty store at `path` (carry's copy of an empty store, which spares each
    test MLflow's migrations); its tracking URI."""
    path.parent.mkdir(parents=True, exist_ok=True)
    carry_copy.new_sqlite_store(path)
    return f"sqlite:///{path}"


def make_sweep(root: Path, name: str = "cs") -> dict:
    """In MLFLOW_TRACKING_URI, with cwd `root`: one shard with a finished trial that was retried
    once (its first attempt FAILED and trashed), a metric curve, samples.png, and a second
    trial cut off after checkpointing (its folder under root/.ray_results)."""
    exp = from_dict({"name": name, "dataset": "ring8", "objectives": ["gan", "wgan-gp"], "space": {"n": 1, "seed": 0}})
    client = store.get_client()
    exp_id = store.open_experiment(client, name)
    pid = store.start_parent(client, exp_id, name, "1/1", exp.to_dict(), 2, f"{name}.yaml")
    runs = store.ChildRuns(client, exp_id, pid, name, "1/1")
    done, cut = trials_of(exp)[:2]
    runs.start(done.id, done.params())
    runs.error(done.id, "a passing failure", final=False)
    runs.start(done.id, done.params())                      # the retry trashes the first attempt
    runs.log(done.id, [(5, {"loss_d": 1.25}), (10, {"loss_d": 0.5})])
    runs.finish(TrialRecord(done.id, done.arch.id, done.objective, done.seed, status="ok", headline="modes_covered",
                            metrics={"modes_covered": 8.0}, iterations=10, wall_time_s=3.0, train_time_s=2.0,
                            eval_time_s=0.5, its_per_s=5.0, params=done.params()), samples_png=b"\x89PNG fake")
    ckpt = root / ".ray_results" / f"{name}-run" / cut.id / "checkpoint_000001"
    ckpt.mkdir(parents=True)
    (ckpt / "state.pt").write_bytes(b"the trial's state")
    runs.start(cut.id, cut.params())
    runs.tag(cut.id, {"checkpoint": str(ckpt), "checkpoint_iteration": 40})
    return {"client": client, "exp_id": exp_id, "parent": pid, "done": done, "cut": cut, "checkpoint": ckpt}


def snapshot(client, name: str, tmp: Path) -> dict:
    """run id -> everything a copy must keep of the run: name, status, lifecycle stage, start
    and end times, params, tags, full metric histories (step, timestamp, value), artifact bytes."""
    exp = client.get_experiment_by_name(name)
    out = {}
    for run in carry_copy.all_runs(client, exp.experiment_id):
        rid = run.info.run_id
        files = {}
        if client.list_artifacts(rid):
            folder = Path(client.download_artifacts(rid, "", str(tmp / rid)))
            files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        out[rid] = {"name": run.info.run_name, "status": run.info.status, "stage": run.info.lifecycle_stage,
                    "start": run.info.start_time, "end": run.info.end_time, "params": dict(run.data.params),
                    "tags": dict(run.data.tags), "artifacts": files,
                    "metrics": {k: sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(rid, k))
                                for k in run.data.metrics}}
    return out


def translate(snap: dict, ids: dict[str, str]) -> dict:
    """A snapshot with run ids (keys and parent links) mapped through a copy's id map."""
    out = {}
    for rid, run in snap.items():
        tags = dict(run["tags"])
        if "mlflow.parentRunId" in tags:
            tags["mlflow.parentRunId"] = ids[tags["mlflow.parentRunId"]]
        out[ids[rid]] = {**run, "tags": tags}
    return out


@pytest.fixture(scope="module")
def carried(tmp_path_factory) -> dict:
    """make_sweep's sweep exported once per test module (an export makes a new sqlite store,
    seconds of MLflow migrations): the folder, the source store's URI, the trials. A test
    that changes the folder copies it first."""
    root = tmp_path_factory.mktemp("carried-from")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        uri = made_store(root / "mlflow.db")
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        sweep = make_sweep(root)
        carry.export_store("cs", root / "export")
    return {"folder": root / "export", "uri": uri, "done": sweep["done"], "cut": sweep["cut"]}
