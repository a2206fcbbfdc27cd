"""Printed commands run as typed: the interpreter is named the way a fresh shell reaches it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.hints import harness_command


def test_a_venv_below_the_current_folder_is_named_relative(tmp_path, monkeypatch):
    venv_python = tmp_path / ".venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    monkeypatch.setattr(sys, "executable", str(venv_python))
    monkeypatch.setenv("PATH", "/nonexistent")
    assert harness_command("report", "quick", cwd=tmp_path) == ".venv/bin/python -m harness report quick"


def test_an_interpreter_elsewhere_is_named_by_absolute_path_and_arguments_are_quoted(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", "/opt/py env/bin/python3")
    monkeypatch.setenv("PATH", "/nonexistent")
    got = harness_command("report", "my study", cwd=tmp_path)
    assert got == "'/opt/py env/bin/python3' -m harness report 'my study'"


def test_the_harness_script_on_path_of_this_interpreter_is_used(tmp_path, monkeypatch):
    bin_dir = tmp_path / "env" / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "harness"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.setenv("PATH", str(bin_dir))
    assert harness_command("ui", cwd=Path("/")) == "harness ui"


def test_the_printed_form_runs_in_a_fresh_shell(tmp_path):
    """What the harness prints for this interpreter starts the CLI from a shell with no venv."""
    cmd = harness_command("list", "presets", cwd=tmp_path)
    out = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "dcgan" in out.stdout
