"""The command line as a user meets it: exit codes, messages, what is written. One test runs
the real `python -m harness` entry point in a subprocess; the rest call `cli.main` in-process
(the same parsing and dispatch, without a Python and torch start-up each)."""
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from harness import cli


@pytest.fixture
def harness(capsys, monkeypatch):
    def run(*args, cwd=None):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = cli.main(list(args))
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)
    return run


def test_the_entry_point_runs_as_a_user_types_it():
    out = subprocess.run([sys.executable, "-m", "harness", "list", "datasets"], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0 and "ring8" in out.stdout
    out = subprocess.run([sys.executable, "-m", "harness", "train", "no-such.yaml"], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 2 and "error: experiment:" in out.stderr and "Traceback" not in out.stderr


def test_list_commands_name_the_registries(harness):
    out = harness("list", "objectives")
    assert out.returncode == 0
    for name in ("gan", "gan-minimax", "wgan-clip", "wgan-gp", "sngan", "lsgan", "fgan-js"):
        assert name in out.stdout
    assert "@SETTING=VALUE" in out.stdout and "n_critic" in out.stdout.split("settings:")[1]
    assert "ring8" in harness("list", "datasets").stdout
    assert "fmnist-classifier" in harness("list", "evaluators").stdout
    assert "resnet101" in harness("list", "presets").stdout


def test_space_prints_one_json_line_per_architecture(harness):
    out = harness("space", "--sample", "4", "--seed", "1")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 4 and len({r["id"] for r in rows}) == 4
    assert {"nonlin_g", "depth_d", "norm_g", "filters_d"} <= set(rows[0])


@pytest.mark.parametrize("yaml_text,field", [
    ("dataset: ring8\nobjectivs: [gan]\n", "objectivs"),
    ("dataset: ring8\nobjectives: [gan, bigan]\n", "objectives[1]"),
    ("dataset: ring8\nspace: {restrict: {depth_d: [7]}}\n", "space.restrict.depth_d"),
    ("dataset: ring8\nbudget: {iterations: -1}\n", "budget.iterations"),
    ("dataset: ring8\nthresholds: [one, two]\n", "thresholds[0]"),
    ("dataset: svhn\n", "dataset"),
    ("dataset: ring8\nspace: [\n", "experiment"),
])
def test_bad_experiment_exits_2_naming_the_field(harness, tmp_path, yaml_text, field):
    exp = tmp_path / "bad.yaml"
    exp.write_text(yaml_text)
    samples = tmp_path / "samples.png"   # what a good file would write (see the test below)
    out = harness("train", str(exp), "--samples", str(samples), cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert f"error: {field}:" in out.stderr
    assert list(tmp_path.iterdir()) == [exp]  # nothing written


def test_a_good_file_trains_and_writes_its_samples(harness, tmp_path):
    exp = tmp_path / "ok.yaml"
    exp.write_text("dataset: ring8\nobjectives: [gan]\nbudget: {iterations: 3, batch_size: 16}\n"
                   "eval: {n_samples: 100}\n")
    samples = tmp_path / "samples.png"
    out = harness("train", str(exp), "--samples", str(samples), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["iterations"] == 3 and summary["headline"] == "modes_covered"
    assert samples.read_bytes()[:4] == b"\x89PNG"


def test_unknown_names_on_the_command_line_exit_2(harness, tmp_path):
    exp = tmp_path / "ok.yaml"
    exp.write_text("dataset: ring8\nbudget: {iterations: 2}\n")
    out = harness("train", str(exp), "--objective", "wgan-lp")
    assert out.returncode == 2 and "valid" in out.stderr and "wgan-gp" in out.stderr
    out = harness("train", str(exp), "--arch", "nonexistent")
    assert out.returncode == 2 and "no architecture" in out.stderr
    out = harness("evaluator", "check", "mnist")
    assert out.returncode == 2 and "no shipped classifier" in out.stderr


@pytest.mark.parametrize("flags,field", [(["--device", "gpu"], "train.device"),
                                         (["--iterations", "0"], "budget.iterations"),
                                         (["--iterations", str(10**13)], "budget.iterations")])
def test_command_line_overrides_are_checked_like_the_files_own_values(harness, tmp_path, flags, field):
    exp = tmp_path / "ok.yaml"
    exp.write_text("dataset: ring8\nbudget: {iterations: 2}\n")
    out = harness("train", str(exp), *flags, cwd=tmp_path)
    assert out.returncode == 2 and f"error: {field}:" in out.stderr
    assert list(tmp_path.iterdir()) == [exp]
