"""Carrying a sweep's store to another machine: what --resume and the report need arrives intact,
at the new places, and a refused or failed step leaves nothing behind."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.config import from_dict
from harness.errors import UserError
from harness.record import TrialRecord
from harness.study import carry, store
from harness.trial import trials_of


@pytest.fixture
def cut_off_sweep(project):
    """A shard with one finished trial and one cut off after checkpointing (its folder under .ray_results)."""
    exp = from_dict({"name": "cs", "dataset": "ring8", "objectives": ["gan", "wgan-gp"], "space": {"n": 1, "seed": 0}})
    client = store.get_client()
    exp_id = store.open_experiment(client, "cs")
    pid = store.start_parent(client, exp_id, "cs", "1/1", exp.to_dict(), 2, "cs.yaml")
    runs = store.ChildRuns(client, exp_id, pid, "cs", "1/1")
    done, cut = trials_of(exp)[:2]
    runs.start(done.id, done.params())
    runs.finish(TrialRecord(done.id, done.arch.id, done.objective, done.seed, status="ok", headline="modes_covered",
                            metrics={"modes_covered": 8.0}, iterations=10, wall_time_s=3.0, train_time_s=2.0,
                            eval_time_s=0.5, its_per_s=5.0, params=done.params()), samples_png=b"\x89PNG fake")
    ckpt = project / ".ray_results" / "cs-run" / cut.id / "checkpoint_000001"
    ckpt.mkdir(parents=True)
    (ckpt / "state.pt").write_bytes(b"the trial's state")
    runs.start(cut.id, cut.params())
    runs.tag(cut.id, {"checkpoint": str(ckpt), "checkpoint_iteration": 40})
    return client, exp_id, pid, done, cut


def new_machine(project, monkeypatch) -> Path:
    """Another working directory and store; the old machine's files gone."""
    home = project / "elsewhere"
    home.mkdir()
    monkeypatch.chdir(home)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    shutil.rmtree(project / "mlruns")
    shutil.rmtree(project / ".ray_results")
    (project / "mlflow.db").unlink()
    return home


def test_a_carried_store_resumes_and_reports_from_its_new_places(project, cut_off_sweep, monkeypatch):
    _, exp_id, pid, done, cut = cut_off_sweep
    exported = carry.export_store("cs", project / "carried")
    assert exported["checkpoints"] == 1 and exported["runs"] == 3
    assert (project / "carried" / "mlflow.db.gz").is_file() and not (project / "carried" / "mlflow.db").exists()
    home = new_machine(project, monkeypatch)
    carry.import_store(project / "carried")

    client = store.get_client()
    assert store.find_experiment(client, "cs").artifact_location == str(home / "mlruns" / exp_id)
    assert store.load_experiment_dict(client, pid)["name"] == "cs"            # artifacts read from the new place
    kept = store.answered_trials(client, exp_id, pid)
    assert list(kept) == [done.id]
    records = {r.trial_id: r for r in store.read_records(client, exp_id, pid)}
    assert records[done.id].metrics["modes_covered"] == 8.0
    found = store.latest_checkpoints(client, exp_id, pid, kept)
    assert found[cut.id]["iteration"] == 40
    assert Path(found[cut.id]["path"]).parent == home / ".ray_results" / "carried"
    assert (Path(found[cut.id]["path"]) / "state.pt").read_bytes() == b"the trial's state"
    png = client.download_artifacts(kept[done.id], "samples.png", str(home))
    assert Path(png).read_bytes() == b"\x89PNG fake"


def test_an_older_export_with_a_plain_sqlite_file_still_imports(project, cut_off_sweep, monkeypatch):
    import gzip
    client, exp_id = cut_off_sweep[:2]
    before = sorted(r.info.run_id for r in store.children(client, exp_id))
    carry.export_store("cs", project / "carried")
    packed = project / "carried" / "mlflow.db.gz"
    (project / "carried" / "mlflow.db").write_bytes(gzip.decompress(packed.read_bytes()))
    packed.unlink()
    new_machine(project, monkeypatch)
    carry.import_store(project / "carried")
    assert sorted(r.info.run_id for r in store.children(store.get_client(), exp_id)) == before


def test_a_new_export_replaces_the_old_one_whole(project, cut_off_sweep):
    client, exp_id, pid, _, _ = cut_off_sweep
    dest = project / "carried"
    carry.export_store("cs", dest)
    (dest / "stale.txt").write_text("from an earlier export")
    for run in store.children(client, exp_id, pid):
        store.end_run(client, run.info.run_id, "FINISHED")
    assert carry.export_store("cs", dest)["checkpoints"] == 0                # finished runs carry no checkpoint
    assert not (dest / "stale.txt").exists() and not (dest / "checkpoints").exists()
    assert json.loads((dest / "manifest.json").read_text())["checkpoints"] == {}
    assert [p.name for p in project.iterdir() if p.name.startswith(".carried")] == []


def test_refusals_write_nothing(project, cut_off_sweep, monkeypatch):
    with pytest.raises(UserError, match="no sweep named 'other'"):
        carry.export_store("other", project / "out")
    assert not (project / "out").exists()
    carry.export_store("cs", project / "carried")
    with pytest.raises(UserError, match="exists: import makes a new store"):   # the old store is still there
        carry.import_store(project / "carried", artifacts_root=project / "fresh")
    assert not (project / "fresh").exists()
    with pytest.raises(UserError, match="not a folder written by"):
        carry.import_store(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    with pytest.raises(UserError, match="sqlite stores only"):
        carry.export_store("cs", project / "out")


def test_an_import_that_fails_midway_leaves_nothing(project, cut_off_sweep, monkeypatch):
    carry.export_store("cs", project / "carried")
    (run_id,) = json.loads((project / "carried" / "manifest.json").read_text())["checkpoints"]
    shutil.rmtree(project / "carried" / "checkpoints" / run_id)         # a damaged copy
    home = new_machine(project, monkeypatch)
    with pytest.raises(FileNotFoundError):
        carry.import_store(project / "carried")
    assert [p for p in home.rglob("*") if p.is_file()] == []


def test_the_cli_exports_and_imports(project, cut_off_sweep, monkeypatch, capsys):
    assert main(["store", "export", "cs", str(project / "carried")]) == 0
    assert "the checkpoints of 1 unfinished trials" in capsys.readouterr().out
    assert main(["store", "export", "nope", str(project / "x")]) == 2
    new_machine(project, monkeypatch)
    assert main(["store", "import", str(project / "carried")]) == 0
    assert "continue with: python -m harness sweep FILE --resume" in capsys.readouterr().out
