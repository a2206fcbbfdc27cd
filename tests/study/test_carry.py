"""Carrying a sweep between stores and machines: what --resume and the report need arrives
intact, at the new places, through MLflow's client API; a refused or failed step leaves
nothing behind. (Hostile export folders: test_carry_hostile.py; a real `mlflow server` and
PostgreSQL: test_carry_backends.py.)"""
from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from carry_sweeps import carried, made_store, make_sweep, snapshot, translate  # noqa: F401 - fixture

from harness.cli import main
from harness.errors import UserError
from harness.study import carry, carry_copy, store


@pytest.fixture
def cut_off_sweep(project):
    """The sweep of carry_sweeps.make_sweep in the project's store (made from the template)."""
    made_store(project / "mlflow.db")
    return make_sweep(project)


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


def test_a_carried_store_resumes_and_reports_from_its_new_places(project, carried):
    done, cut = carried["done"], carried["cut"]
    manifest = json.loads((carried["folder"] / "manifest.json").read_text())
    assert len(manifest["checkpoints"]) == 1 and Path(*manifest["checkpoints"].values()).name == "checkpoint_000001"
    assert (carried["folder"] / "mlflow.db.gz").is_file() and not (carried["folder"] / "mlflow.db").exists()
    home = project
    imported = carry.import_store(carried["folder"])          # a new sqlite file: built aside, moved in
    assert (imported["runs"], imported["trashed"], len(imported["checkpoints"])) == (3, 1, 1)
    assert sorted(p.name for p in home.iterdir()) == [".ray_results", "mlflow.db", "mlruns"]

    client = store.get_client()
    exp = store.find_experiment(client, "cs")
    assert exp.artifact_location == str(home / "mlruns" / imported["experiment_id"])
    (pid,) = [r.info.run_id for r in store.parents(client, exp.experiment_id)]
    assert store.load_experiment_dict(client, pid)["name"] == "cs"      # artifacts read from the new place
    kept = store.answered_trials(client, exp.experiment_id, pid)
    assert list(kept) == [done.id]
    records = {r.trial_id: r for r in store.read_records(client, exp.experiment_id, pid)}
    assert records[done.id].metrics["modes_covered"] == 8.0
    assert [(m.step, m.value) for m in client.get_metric_history(kept[done.id], "loss_d")] == [(5, 1.25), (10, 0.5)]
    found = store.latest_checkpoints(client, exp.experiment_id, pid, kept)
    assert found[cut.id]["iteration"] == 40
    assert Path(found[cut.id]["path"]).parent == home / ".ray_results" / "carried"
    assert (Path(found[cut.id]["path"]) / "state.pt").read_bytes() == b"the trial's state"
    png = client.download_artifacts(kept[done.id], "samples.png", str(home))
    assert Path(png).read_bytes() == b"\x89PNG fake"
    runs = carry_copy.all_runs(client, exp.experiment_id)                     # the retried attempt: still trashed
    assert sorted(r.info.lifecycle_stage for r in runs) == ["active", "active", "active", "deleted"]


def test_an_older_export_with_a_plain_sqlite_file_still_imports(project, carried):
    before = snapshot(carry_copy.client_for(carried["uri"]), "cs", project / "a")
    folder = shutil.copytree(carried["folder"], project / "carried")
    packed = folder / "mlflow.db.gz"
    (folder / "mlflow.db").write_bytes(gzip.decompress(packed.read_bytes()))
    packed.unlink()
    made_store(project / "mlflow.db")                     # an existing store takes it too
    done = carry.import_store(folder)
    after = snapshot(store.get_client(), "cs", project / "b")
    assert sorted((r["name"], r["stage"], r["status"], r["start"], r["end"]) for r in after.values()) == \
        sorted((r["name"], r["stage"], r["status"], r["start"], r["end"]) for r in before.values())
    assert len(done["ids"]) == len(before) == 4


def test_a_copy_between_two_sqlite_stores_keeps_every_run_whole(project, cut_off_sweep, monkeypatch,
                                                                 capsys):
    """The in-process twin of the mlflow server / PostgreSQL round trips (test_carry_backends.py)."""
    source = snapshot(cut_off_sweep["client"], "cs", project / "a")
    other = made_store(project / "other" / "mlflow.db")
    done = carry.copy_store("cs", other, artifact_location=str(project / "other" / "artifacts"))
    copied = snapshot(carry_copy.client_for(other), "cs", project / "b")
    assert copied == translate(source, done["ids"])           # ids aside, every field of every run
    assert len(set(done["ids"].values())) == len(source) == 4
    assert all(r["tags"].get("checkpoint") in (None, str(cut_off_sweep["checkpoint"])) for r in copied.values())

    monkeypatch.setenv("MLFLOW_TRACKING_URI", other)                    # and back, into a new file
    back = f"sqlite:///{project / 'back' / 'mlflow.db'}"
    assert main(["store", "copy", "cs", "--to", back]) == 2       # its default ./mlruns/1 is the source's
    assert "exists and is not empty" in capsys.readouterr().err
    assert not (project / "back" / "mlflow.db").exists()
    again = carry.copy_store("cs", back, artifact_location=str(project / "back" / "artifacts"))
    returned = snapshot(carry_copy.client_for(back), "cs", project / "c")
    assert returned == translate(source, {old: again["ids"][new] for old, new in done["ids"].items()})
    assert main(["store", "copy", "cs", "--to", back]) == 2                    # the name is taken now
    assert "already holds a sweep named 'cs'" in capsys.readouterr().err


def test_a_new_export_replaces_the_old_one_whole(project, cut_off_sweep):
    client, exp_id, pid = cut_off_sweep["client"], cut_off_sweep["exp_id"], cut_off_sweep["parent"]
    dest = project / "carried"
    carry.export_store("cs", dest)
    (dest / "stale.txt").write_text("from an earlier export")
    for run in store.children(client, exp_id, pid):
        store.end_run(client, run.info.run_id, "FINISHED")
    assert carry.export_store("cs", dest)["checkpoints"] == {}            # finished runs carry no checkpoint
    assert not (dest / "stale.txt").exists() and not (dest / "checkpoints").exists()
    assert json.loads((dest / "manifest.json").read_text())["checkpoints"] == {}
    assert [p.name for p in project.iterdir() if p.name.startswith(".carried")] == []


def test_refusals_write_nothing(project, cut_off_sweep, monkeypatch):
    with pytest.raises(UserError, match="no sweep named 'other'"):
        carry.export_store("other", project / "out")
    assert not (project / "out").exists()
    carry.export_store("cs", project / "carried")
    with pytest.raises(UserError, match="already holds a sweep named 'cs'"):   # the old store still has it
        carry.import_store(project / "carried", artifact_location=str(project / "fresh"))
    assert not (project / "fresh").exists()
    with pytest.raises(UserError, match="not a folder written by"):
        carry.import_store(project)
    with pytest.raises(UserError, match="is the store the sweep is read from"):
        carry.copy_store("cs", store.tracking_uri())
    team = "postgresql+psycopg2://me:secret@127.0.0.1:1/none"             # refused before any connection
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team)
    with pytest.raises(UserError, match=r"me:\*\*\*@127.0.0.1:1/none is the store") as err:
        carry.copy_store("cs", team)
    assert "secret" not in str(err.value)                                 # no password in any message
    assert carry_copy.redact("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_an_import_that_fails_midway_leaves_nothing(project, carried, monkeypatch):
    from mlflow import MlflowClient
    home = project
    calls = []

    def broken(self, run_id, local_dir, artifact_path=None):
        calls.append(run_id)
        raise OSError("disk full")
    monkeypatch.setattr(MlflowClient, "log_artifacts", broken)
    with pytest.raises(OSError, match="disk full"):                      # into a new sqlite file
        carry.import_store(carried["folder"])
    assert calls and [p for p in home.rglob("*")] == []

    uri = made_store(home / "mlflow.db")                   # into an existing store
    with pytest.raises(OSError, match="disk full"):
        carry.import_store(carried["folder"], checkpoints_root=home / "ckpt")
    client = carry_copy.client_for(uri)
    assert client.get_experiment_by_name("cs") is None                  # the name is free for the next try
    assert [e.name for e in client.search_experiments()] == ["Default"]
    assert sorted(p.name for p in home.iterdir()) == ["mlflow.db"]      # no artifacts, no checkpoints


def test_the_cli_exports_imports_and_copies(project, cut_off_sweep, monkeypatch, capsys):
    assert main(["store", "export", "cs", str(project / "carried")]) == 0
    assert "the checkpoints of 1 unfinished trials" in capsys.readouterr().out
    assert main(["store", "export", "nope", str(project / "x")]) == 2
    new_machine(project, monkeypatch)
    assert main(["store", "import", str(project / "carried")]) == 0
    out = capsys.readouterr().out
    assert "3 runs (+1 in the trash)" in out and "continue with: python -m harness sweep FILE --resume" in out
    assert main(["store", "import", str(project / "carried")]) == 2     # the sweep is there now
    assert "already holds a sweep named 'cs'" in capsys.readouterr().err


def test_an_unreachable_store_is_refused_without_its_password(project, cut_off_sweep, monkeypatch, capsys):
    from conftest import free_port
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    dead = f"http://me:secret@127.0.0.1:{free_port()}"
    assert main(["store", "copy", "cs", "--to", dead]) == 2
    assert main(["store", "copy", "cs", "--from", dead, "--to", f"sqlite:///{project / 'new.db'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("cannot reach the MLflow store http://me:***@127.0.0.1") == 1
    assert err.count("cannot read the MLflow store http://me:***@127.0.0.1") == 1
    assert "secret" not in err and not (project / "new.db").exists()
