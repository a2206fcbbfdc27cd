"""`store import` of a crafted export folder (issue 23): an export is a file someone sends
you, so every id, path and size in it is hostile. Each refusal exits 2 with a message naming
the file, and nothing is written anywhere: not the store, not ./mlruns, not the checkpoints,
not a path the export names."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import sqlite3
import zlib
from pathlib import Path

import pytest
from carry_sweeps import carried  # noqa: F401 - fixture

from harness.cli import main
from harness.errors import UserError
from harness.study import carry, carry_checks, carry_copy


@pytest.fixture
def sent(project, carried) -> Path:
    """A private copy of a real export, to tamper with."""
    return Path(shutil.copytree(carried["folder"], project / "sent"))


@pytest.fixture
def marker(project) -> Path:
    """A path outside the target that a crafted export aims at; it must never appear."""
    path = project.parent / f"{project.name}-marker"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def refused(project, folder: Path, capsys, match: str) -> str:
    """Import `folder` through the CLI: exit 2, the message matches, nothing was written."""
    assert main(["store", "import", str(folder)]) == 2
    err = capsys.readouterr().err
    assert match in err, err
    assert sorted(p.name for p in project.iterdir()) == ["sent"]       # no store, no mlruns, no checkpoints
    return err


def edit_manifest(folder: Path, **changes) -> None:
    path = folder / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def edit_store(folder: Path, *statements) -> None:
    """Run SQL on the export's sqlite store and pack it again."""
    plain = folder / "mlflow.db"
    plain.write_bytes(gzip.decompress((folder / "mlflow.db.gz").read_bytes()))
    con = sqlite3.connect(plain)
    with con:
        for sql in statements:
            con.execute(sql)
    con.close()
    (folder / "mlflow.db.gz").write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()


def run_with_checkpoint(folder: Path) -> str:
    (run_id,) = json.loads((folder / "manifest.json").read_text())["checkpoints"]
    return run_id


@pytest.mark.parametrize("field", ["experiment_id", "checkpoints", "sweep"])
@pytest.mark.parametrize("aim", ["absolute", "relative"])
def test_ids_that_would_write_outside_the_target_are_refused(project, sent, marker, capsys, field, aim):
    """The crafted export of the issue: an absolute path or ../.. as the experiment id, or as a
    run id (a checkpoint's folder name), made the old import write artifacts or checkpoints there."""
    path = str(marker) if aim == "absolute" else "../" * 12 + str(marker).lstrip("/")
    if field == "checkpoints":
        (sent / "checkpoints" / run_with_checkpoint(sent)).rename(sent / "checkpoints" / marker.name)
        value = {path: "/anywhere"}
    else:
        value = path
    edit_manifest(sent, **{field: value})
    err = refused(project, sent, capsys, "manifest.json")
    assert field in err
    assert not marker.exists()


def test_a_run_id_in_the_store_that_is_not_mlflows_is_refused(project, sent, marker, capsys):
    run_id = run_with_checkpoint(sent)
    bad = "../" * 8 + marker.name
    edit_store(sent, f"UPDATE runs SET run_uuid = '{bad}' WHERE run_uuid = '{run_id}'",
               f"UPDATE tags SET run_uuid = '{bad}' WHERE run_uuid = '{run_id}'")
    refused(project, sent, capsys, "is not an MLflow run id (32 hex digits)")
    assert not marker.exists()


@pytest.mark.parametrize("what", ["artifact", "checkpoint folder", "store", "manifest", "fifo"])
def test_symlinks_and_special_files_are_refused_not_followed(project, sent, capsys, what):
    """A link to a system file would be copied in as a regular file; a link to a folder would
    carry someone else's files. Neither is followed."""
    outside = project.parent / f"{project.name}-outside"
    outside.mkdir(exist_ok=True)
    if what == "artifact":
        (png,) = (sent / "artifacts").rglob("samples.png")
        png.unlink()
        png.symlink_to("/etc/passwd")
    elif what == "checkpoint folder":
        folder = sent / "checkpoints" / run_with_checkpoint(sent)
        shutil.rmtree(folder)
        folder.symlink_to(outside, target_is_directory=True)
    elif what == "store":
        (sent / "mlflow.db.gz").rename(outside / "mlflow.db.gz")
        (sent / "mlflow.db.gz").symlink_to(outside / "mlflow.db.gz")
    elif what == "manifest":
        (sent / "manifest.json").rename(outside / "manifest.json")
        (sent / "manifest.json").symlink_to(outside / "manifest.json")
    else:
        os.mkfifo(next((sent / "artifacts").iterdir()) / "pipe")
    err = refused(project, sent, capsys, "an export holds only regular files and folders")
    assert "symlink" in err or what == "fifo"


def test_a_gzip_bomb_stops_at_the_bound(project, sent, capsys, monkeypatch):
    """A few KB that unpack to 64 MB, against a bound of 4 MB (the real one is MAX_DB_BYTES):
    unpacking stops at the bound with a message naming the file and the bound."""
    monkeypatch.setattr(carry_checks, "MAX_DB_BYTES", 4 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)                  # 31: a gzip stream
    zeros = bytes(1 << 20)
    bomb = b"".join(packer.compress(zeros) for _ in range(64)) + packer.flush()
    assert len(bomb) < 100_000 and len(gzip.decompress(bomb)) == 64 << 20
    (sent / "mlflow.db.gz").write_bytes(bomb)
    read = []
    real_read = gzip.GzipFile.read
    monkeypatch.setattr(gzip.GzipFile, "read", lambda self, n=-1: read.append(n) or real_read(self, n))
    err = refused(project, sent, capsys, f"unpacks to more than {4 << 20} bytes")
    assert "mlflow.db.gz" in err
    assert len(read) * carry_checks.CHUNK <= (4 << 20) + 2 * carry_checks.CHUNK       # read no further than the bound


@pytest.mark.parametrize("bound, value, match", [("MAX_FILES", 5, "more than 5 files"),
                                                 ("MAX_CARRIED_BYTES", 10, "exceed 10"),
                                                 ("MAX_MANIFEST_BYTES", 10, "larger than 10 bytes")])
def test_sizes_and_counts_are_bounded(project, sent, capsys, monkeypatch, bound, value, match):
    monkeypatch.setattr(carry_checks, bound, value)
    refused(project, sent, capsys, match)


@pytest.mark.parametrize("change, match", [
    ("CREATE VIEW spy AS SELECT * FROM runs", "holds view 'spy'"),
    ("CREATE TRIGGER t AFTER INSERT ON runs BEGIN DELETE FROM tags; END", "holds trigger 't'"),
    ("DROP TABLE alembic_version", "not an MLflow store"),
])
def test_a_store_with_more_than_mlflows_schema_is_refused(project, sent, capsys, change, match):
    edit_store(sent, change)
    refused(project, sent, capsys, match)


def test_damaged_and_inconsistent_folders_are_refused(project, sent, capsys):
    (sent / "mlflow.db.gz").write_bytes(gzip.compress(b"not sqlite at all" * 100))
    refused(project, sent, capsys, "not an sqlite store")
    (sent / "mlflow.db.gz").write_bytes(b"\x1f\x8b\x08 broken")
    refused(project, sent, capsys, "not a readable gzip file")


def test_folders_the_store_does_not_name_are_refused(project, carried, capsys):
    sent = Path(shutil.copytree(carried["folder"], project / "sent"))
    stray = sent / "artifacts" / ("0" * 32) / "artifacts"
    stray.mkdir(parents=True)
    refused(project, sent, capsys, "names no such run")
    shutil.rmtree(stray.parent)
    shutil.rmtree(sent / "checkpoints" / run_with_checkpoint(sent))
    refused(project, sent, capsys, "missing (the manifest lists it)")
    edit_manifest(sent, experiment_id="7")
    refused(project, sent, capsys, "but the store holds")


def test_what_an_export_names_is_never_a_place_written_to(project, sent, marker):
    """The manifest's paths (artifact location, the checkpoints' original places) and the
    store's checkpoint tags are information only: a successful import writes under its own
    targets and points the tags there."""
    run_id = run_with_checkpoint(sent)
    edit_manifest(sent, artifact_location=str(marker), checkpoints={run_id: str(marker)})
    edit_store(sent, f"UPDATE tags SET value = '{marker}' WHERE key = 'checkpoint'")
    done = carry.import_store(sent)
    assert not marker.exists()
    client = carry_copy.client_for(f"sqlite:///{project / 'mlflow.db'}")
    tags = [r.data.tags.get("checkpoint") for r in carry_copy.all_runs(client, done["experiment_id"])]
    assert [t for t in tags if t] == [str(project / ".ray_results" / "carried" / done["ids"][run_id])]
    assert sorted(p.name for p in project.iterdir()) == [".ray_results", "mlflow.db", "mlruns", "sent"]
    with pytest.raises(UserError, match="already holds"):
        carry.import_store(sent)
