"""Shared fixtures: an isolated project directory, experiment files, the CLI as a subprocess."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A scratch project directory as cwd, with its own sqlite MLflow store and a 2-CPU Ray."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("HARNESS_RAY_NUM_CPUS", "2")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    return tmp_path


@pytest.fixture
def write_experiment(tmp_path):
    """write_experiment(name, **settings) -> path of a YAML experiment file in the scratch dir."""
    def write(name: str, **settings) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"name": name, **settings}, sort_keys=False))
        return path
    return write


def harness_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "harness", *map(str, args)]


def run_harness(*args, timeout=600, **kw) -> subprocess.CompletedProcess:
    """The CLI in a subprocess (cwd and environment from the `project` fixture)."""
    return subprocess.run(harness_cmd(*args), capture_output=True, text=True, timeout=timeout, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_session(sid: int, sig) -> None:
    """Signal every process still in session `sid` (a process group this test started)."""
    out = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True).stdout
    for line in out.splitlines():
        pid, s = (int(x) for x in line.split())
        if s == sid and pid != os.getpid():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


@pytest.fixture
def tiny_fmnist() -> dict:
    """2 architectures x 2 objectives on 256 Fashion-MNIST images, a few iterations each."""
    return {
        "dataset": "fashion_mnist",
        "data": {"limit": 256},
        "space": {"mode": "sample", "n": 2, "seed": 0,
                  "restrict": {"depth_g": [4], "depth_d": [4], "filters_g": [32], "filters_d": [32]}},
        "objectives": ["gan", "wgan-gp"],
        "budget": {"iterations": 8, "batch_size": 16},
        "eval": {"evaluator": "fmnist-classifier", "n_samples": 100},
        "thresholds": [1.0, 1.1, 1.5, 2.0],
        "resources": {"cpus_per_trial": 1, "max_failures": 1},
    }


@pytest.fixture
def tiny_toy2d() -> dict:
    """2 architectures x 2 objectives on the 8-Gaussian ring, a few seconds per trial."""
    return {
        "dataset": "ring8",
        "space": {"mode": "sample", "n": 2, "seed": 0,
                  "restrict": {"depth_g": [4], "depth_d": [4], "filters_g": [32], "filters_d": [32]}},
        "objectives": ["gan", "wgan-gp"],
        "budget": {"iterations": 80, "batch_size": 64},
        "eval": {"evaluator": "toy2d", "n_samples": 500},
        "thresholds": [1.0, 2.0, 4.0],
        "resources": {"cpus_per_trial": 1, "max_failures": 1},
    }


@pytest.fixture(scope="session")
def fmnist_test():
    """Fashion-MNIST's test split. `make test` installs the data, so a missing copy is a
    failure here, not a skip."""
    from harness.data import load_images
    return load_images("fashion_mnist", "test")


GATE_SITECUSTOMIZE = '''"""Test-only (tests/conftest.py `hold_trials`): in every Python process started with this
folder on PYTHONPATH, harness.train.run_trial waits before training a trial named in
HARNESS_TEST_HOLD until the file HARNESS_TEST_GATE exists; with HARNESS_TEST_HOLD_AT=checkpoint
it waits instead right after the trial's first checkpoint was saved. A trial named in
HARNESS_TEST_CRASH raises right after its first checkpoint was saved, once (a marker file
beside the gate says it did), as a process dying mid-trial would. Ray's workers inherit it."""
import importlib.abc
import importlib.util
import os
import sys
import time

HOLD = set(filter(None, os.environ.get("HARNESS_TEST_HOLD", "").split(",")))
CRASH = set(filter(None, os.environ.get("HARNESS_TEST_CRASH", "").split(",")))
GATE = os.environ.get("HARNESS_TEST_GATE", "")
AT_CHECKPOINT = os.environ.get("HARNESS_TEST_HOLD_AT") == "checkpoint"


def _wait():
    while not os.path.exists(GATE):
        time.sleep(0.2)


def _after_checkpoint(trial_id, save):
    """on_checkpoint that saves, then crashes once or waits at the gate."""
    def save_then(iteration, state):
        save(iteration, state)
        crashed = f"{GATE}.crashed.{trial_id}"
        if trial_id in CRASH and not os.path.exists(crashed):
            open(crashed, "w").close()
            raise RuntimeError("test crash after a checkpoint")
        if trial_id in HOLD:
            _wait()
    return save_then


class _HoldTrials(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "harness.train":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            real = module.run_trial

            def held(trial, *args, **kwargs):
                at_checkpoint = trial.id in CRASH or (trial.id in HOLD and AT_CHECKPOINT)
                if at_checkpoint and kwargs.get("on_checkpoint"):
                    kwargs["on_checkpoint"] = _after_checkpoint(trial.id, kwargs["on_checkpoint"])
                elif trial.id in HOLD:
                    _wait()
                return real(trial, *args, **kwargs)
            module.run_trial = held
        spec.loader.exec_module = exec_module
        return spec


if HOLD or CRASH:
    sys.meta_path.insert(0, _HoldTrials())
'''


@pytest.fixture
def hold_trials(project, monkeypatch):
    """hold_trials(ids, at="start" | "checkpoint", crash=ids) -> gate file: subprocesses started
    afterwards (the sweep and its Ray workers) cannot finish the held trials until the test
    creates the gate file, and the `crash` trials raise once right after their first
    checkpoint. A test that needs a sweep caught mid-way uses it instead of racing the
    machine's speed."""
    folder = project / "gate"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(GATE_SITECUSTOMIZE)
    gate = project / "gate-open"

    def hold(ids, at: str = "start", crash=()) -> Path:
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), os.environ["PYTHONPATH"]]))
        monkeypatch.setenv("HARNESS_TEST_HOLD", ",".join(ids))
        monkeypatch.setenv("HARNESS_TEST_CRASH", ",".join(crash))
        monkeypatch.setenv("HARNESS_TEST_HOLD_AT", at)
        monkeypatch.setenv("HARNESS_TEST_GATE", str(gate))
        return gate
    return hold


# ---- the 2D estimator floors, stood in for report tests -------------------------------------
# Report tests build 2D (ring8) studies; the estimator floors behind their tables would run the
# real toy2d evaluator five times per build (tens of seconds). Report test modules use
# `stand_in_floors` (pytestmark), so the evaluation of the data is a stand-in with known values
# and a test sees what the report does with them; the real evaluator's floors are measured in
# tests/study/test_floors.py. (A fixture here, not in a tests/study/report/conftest.py: a second
# module named conftest would shadow this one for `from conftest import ...`.)
FLOOR_STAND_IN = {"modes_covered": 8.0, "modes_covered_strict": 8.0, "hq_share": 0.989, "reverse_kl": 0.001,
                  "reverse_kl_all": 0.001, "n_modes": 8.0, "w1_exact_2k": 0.1, "kl_data_gen_kde": 0.07,
                  "kl_gen_data_kde": -0.08, "js_kde": 0.0, "kde_bandwidth": 0.01}


def floor_stand_in(dataset: str, n_samples: int, seed: int) -> dict[str, float]:
    """The stand-in reading of draw `seed`: w1 0.1 + 0.01 * seed, the rest fixed."""
    return {**FLOOR_STAND_IN, "w1_exact_2k": 0.1 + 0.01 * seed}


@pytest.fixture
def stand_in_floors(monkeypatch):
    from harness.study import floors
    floors.estimator_floors.cache_clear()
    monkeypatch.setattr(floors, "_evaluate_data", floor_stand_in)
    yield
    floors.estimator_floors.cache_clear()


@pytest.fixture(autouse=True)
def forget_plugins():
    """Plugins a test loads (an experiment's `plugins:`, loaded in-process) are forgotten after
    it, their registry entries included, so no test sees another's names (a `ragan` objective
    or an `r2` penalty left behind by a test that loaded examples/)."""
    from harness import plugins
    before = set(plugins.LOADED)
    yield
    for name in set(plugins.LOADED) - before:
        plugins.unload(name)


def _worker_threads() -> int:
    """Torch threads per test process: under pytest-xdist (make test) the cores are shared
    out among the workers, so 2 workers on 2 cores run 1 thread each instead of 4 threads
    fighting for 2 cores; alone, torch's own default."""
    import torch
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 0)
    return max(1, (os.cpu_count() or 1) // workers) if workers else torch.get_num_threads()


@pytest.fixture(autouse=True)
def torch_threads():
    """Each test starts with its process's thread count, whatever an earlier test set (a
    trial's train.threads sets torch's count for the whole process)."""
    import torch
    torch.set_num_threads(THREADS)
    yield


THREADS = _worker_threads()


def pytest_collection_modifyitems(config, items):
    """Slow and browser tests first, the rest after them, each group in its collection order.
    Why: under pytest-xdist (make test-all runs both tiers on 2 workers) the long tests then
    start at once and the short ones fill the gaps while a sweep waits on Ray or a server,
    instead of one long sweep starting last and running alone (longest first, roughly)."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("slow") or item.get_closest_marker("browser") else 1)
