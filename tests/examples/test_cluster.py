"""A plugin's code reaches a Ray worker on another node: a two-node Ray cluster on loopback
(two `ray start`s, each with its own temp folder, the second marked with a resource of its
own), joined the way a sweep joins RAY_ADDRESS's cluster (driver.join_cluster, which hands
Ray the plugins' runtime environment); a task placed on the second node imports the plugins
as the sweep's worker does (plugins.activate) and finds them in that node's own folder."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import free_port, kill_session

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RAY = Path(sys.executable).parent / "ray"
START_S = 180


def _active_nodes(address: str, env: dict) -> int:
    out = subprocess.run([str(RAY), "status", "--address", address], capture_output=True, text=True, env=env,
                         timeout=60)
    if out.returncode != 0:
        return 0
    active = out.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0]
    return len(re.findall(r"^\s*\d+ node_", active, re.M))


def _stop(procs) -> None:
    """Only the processes these `ray start`s made: each ran in a session of its own."""
    for p in procs:
        kill_session(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    time.sleep(2)
    for p in procs:
        kill_session(p.pid, signal.SIGKILL)


@pytest.mark.slow
def test_a_plugin_reaches_a_worker_on_a_second_node(tmp_path, monkeypatch):
    if not RAY.exists():
        pytest.skip(f"no ray command beside {sys.executable}")
    shutil.copytree(EXAMPLES, tmp_path / "study", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    port = free_port()
    address = f"127.0.0.1:{port}"
    folders = [tempfile.mkdtemp(prefix="rh-", dir="/tmp") for _ in range(2)]   # short: socket paths
    common = ["--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
    procs = []
    ray = None
    try:
        logs = [tmp_path / "head.log", tmp_path / "second.log"]
        procs.append(subprocess.Popen([str(RAY), "start", "--head", "--port", str(port), "--include-dashboard=false",
                                       "--temp-dir", folders[0], *common], env=env, start_new_session=True,
                                      stdout=logs[0].open("w"), stderr=subprocess.STDOUT))
        deadline = time.monotonic() + START_S
        while _active_nodes(address, env) < 1:
            if time.monotonic() > deadline or procs[0].poll() is not None:
                pytest.skip(f"Ray cannot start a head node here: {logs[0].read_text()[-500:]}")
            time.sleep(2)
        procs.append(subprocess.Popen([str(RAY), "start", "--address", address, "--temp-dir", folders[1],
                                       "--resources", '{"second": 1}', *common], env=env, start_new_session=True,
                                      stdout=logs[1].open("w"), stderr=subprocess.STDOUT))
        while _active_nodes(address, env) < 2:
            if time.monotonic() > deadline or procs[1].poll() is not None:
                pytest.skip(f"Ray cannot start a second node beside the first here: {logs[1].read_text()[-500:]}")
            time.sleep(2)

        from harness.config import load_experiment
        from harness.study.sweep import driver
        exp = load_experiment(tmp_path / "study" / "ragan-vs-gan.yaml")
        monkeypatch.setenv("RAY_ADDRESS", address)
        monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
        ray = driver.join_cluster()                       # as a sweep joins RAY_ADDRESS's cluster
        second = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("second"))

        @ray.remote(num_cpus=0, resources={"second": 1})
        def probe(experiment: dict):
            import sys

            import ray as worker_ray

            from harness import plugins
            from harness.evaluate import EVALUATORS
            from harness.objectives import OBJECTIVES
            loaded = plugins.activate(experiment)          # what the sweep's worker does first
            return {"node": worker_ray.get_runtime_context().get_node_id(), "file": sys.modules["ragan"].__file__,
                    "names": ["ragan" in OBJECTIVES, "toy2d-nearest" in EVALUATORS],
                    "sha256": {p.spec: p.sha256 for p in loaded}}

        got = ray.get(probe.remote(exp.to_dict()), timeout=300)
        assert got["node"] == second and got["names"] == [True, True]
        assert got["file"].startswith(folders[1] + os.sep)   # unpacked into the second node's own folder
        assert got["sha256"] == exp.to_dict()["plugins_sha256"]
    finally:
        if ray is not None:
            ray.shutdown()
        _stop(procs)
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
