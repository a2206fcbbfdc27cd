"""Commands the harness prints for a person to type next, in a form that runs as typed.

After `make sweep` the harness lives in the project's venv, which a fresh shell has not
activated: a printed `python -m harness report quick` would fail there with
`ModuleNotFoundError: torch`. So every printed command names the interpreter the way the
person can reach it from where they stand: `.venv/bin/python -m harness ...` when this
process runs from a venv below the current directory, the bare `harness` script when the
one on PATH belongs to this interpreter (an activated venv, a pip install), else the
interpreter's absolute path.
"""
from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path


def _interpreter(cwd: Path | None = None) -> str:
    """How to call this Python from `cwd` in a fresh shell."""
    cwd = (cwd or Path.cwd()).resolve()
    exe = Path(sys.executable)
    on_path = shutil.which("harness")
    if on_path and Path(on_path).parent.resolve() == exe.parent.resolve():
        return "harness"
    try:
        rel = exe.parent.parent.resolve().relative_to(cwd)   # the venv's root, relative to cwd
        return f"{rel / 'bin' / exe.name} -m harness"
    except ValueError:
        return f"{shlex.quote(str(exe))} -m harness"


def harness_command(*args: str, cwd: Path | None = None) -> str:
    """`harness_command("report", "quick")` -> '.venv/bin/python -m harness report quick'
    (or 'harness report quick' where that runs). Arguments are shell-quoted."""
    parts = [_interpreter(cwd)] + [shlex.quote(str(a)) for a in args]
    return " ".join(parts)
