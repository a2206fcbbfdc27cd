"""What a figure was measured on: the machine, the versions and the command, in one place.

Reports (sweep parent runs, the benchmark) print these beside their numbers, so a reader
can tell which hardware and which library versions produced them.
"""
from __future__ import annotations

import contextlib
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("torch", "torchvision", "torch-fidelity", "ray", "mlflow", "pandas")


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def gpu_names() -> list[str]:
    try:
        import torch
        if torch.cuda.is_available():
            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - hardware text is informative only
        pass
    return []


def hardware() -> str:
    """'host x86_64, AMD EPYC ..., 2 CPU cores, GPUs: ...'."""
    text = f"{platform.node()} {platform.machine()}, {cpu_model()}, {os.cpu_count()} CPU cores"
    gpus = gpu_names()
    return text + (", GPUs: " + ", ".join(gpus) if gpus else "")


def versions() -> str:
    """The versions a result depends on, for the report beside its figures."""
    parts = [f"python {platform.python_version()}"]
    for pkg in PACKAGES:
        with contextlib.suppress(PackageNotFoundError):
            parts.append(f"{pkg} {version(pkg)}")
    return ", ".join(parts)


def command_line() -> str:
    """The harness command that is running, as a user would type it."""
    return " ".join(["python -m harness"] + sys.argv[1:])
