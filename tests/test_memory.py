"""A trial's estimated peak memory (harness/memory.py): conservative against what is measured,
and what cannot fit the machine is refused by field before anything runs or is written."""
from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness import cli, memory
from harness.config import ConfigError, from_dict
from harness.remedies.base import samples_per_input
from harness.space import Arch
from harness.study.sweep import driver
from harness.step import build_step
from harness.train import run_trial
from harness.trial import Trial, data_shape, trials_of, z_dim

GB = 2**30
MLP = Arch(depth_g=4, depth_d=4, filters_g=128, filters_d=128)   # 512-wide, 3 hidden layers


def toy(method="gan", batch=64, n_samples=80, iterations=2, **extra):
    e = from_dict({"dataset": "ring8", "objectives": [method], "budget": {"iterations": iterations, "batch_size": batch},
                   "eval": {"n_samples": n_samples}, "train": {"threads": 1}, **extra})
    return Trial(e, MLP, method, 0)


def _saved_bytes(fn) -> int:
    """Bytes of every tensor autograd saves for backward while fn runs (meta tensors: no memory)."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total


@pytest.mark.parametrize("method", ["gan", "wgan-gp", "gan+pack:4", "gan+unrolled:3", "gan+feature-matching",
                                    "gan+minibatch-stddev"])
def test_the_training_term_covers_what_autograd_saves(method):
    """The harness's own D and G steps run on the meta device at the real batch; every tensor
    they save for backward is counted exactly. The estimate's graphs (before its headroom) and
    the lookahead's weight copies must hold them."""
    trial = toy(method, batch=256)
    objective = trial.make_objective()
    step = build_step(trial.arch, objective, data_shape(trial.experiment), z_dim(trial.experiment),
                      torch.device("meta"))
    draw = 256 * samples_per_input(objective.remedies)
    real = torch.empty(draw, *data_shape(trial.experiment), device="meta")
    z = torch.empty(draw, z_dim(trial.experiment), device="meta")
    exact = max(_saved_bytes(lambda: step.discriminator(real, z)), _saved_bytes(lambda: step.generator(z, real=real)))
    est = memory.estimate(trial, "cpu", objective)
    unrolled = 2 * memory._unrolled_steps(objective) * memory._sizes(trial, objective).params_d * memory.FLOAT_BYTES
    graphs = est.host["training activations"] / memory.TRAINING_HEADROOM
    assert exact <= graphs + unrolled <= 3 * exact


def _rss() -> tuple[int, int]:
    status = open("/proc/self/status").read()
    return tuple(int(status.split(f"{k}:")[1].split()[0]) * 1024 for k in ("VmRSS", "VmHWM"))


def measure_peak(method: str, batch: int) -> dict:
    """One trial's peak RSS above where it started, and its estimate, in this process: freed
    heap returned first with malloc_trim, the peak reset through /proc/self/clear_refs, a
    1-iteration trial run first so imports and one-time buffers are not counted."""
    run_trial(toy(method, batch=64, iterations=1))
    trial = toy(method, batch=batch)
    est = memory.estimate(trial)
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _rss()[0]
    record = run_trial(trial)
    return {"peak": _rss()[1] - before, "status": record.status, "error": record.error,
            "estimated": est.host_bytes - est.host["process"], "terms": est.host}


@pytest.mark.slow
@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's resettable peak RSS")
@pytest.mark.parametrize("method,batch", [("gan", 8192), ("wgan-gp", 4096), ("gan+pack:4", 2048)])
def test_the_estimate_is_conservative_against_a_measured_peak(method, batch):
    """One small trial whose memory is its training batch: its peak RSS over the trial is at
    most the estimate without the process term, and at least a third of it. Measured in a
    fresh Python process: a test worker that ran other tests first (make test-all's xdist
    workers) holds their allocations and heap, which the peak would count."""
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"from test_memory import measure_peak; print(json.dumps(measure_peak({method!r}, {batch})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    m = json.loads(out.stdout.strip().splitlines()[-1])
    assert m["status"] in ("ok", "collapsed"), m["error"]
    peak, estimated = m["peak"], m["estimated"]
    assert peak <= estimated <= 3 * peak, (peak / 2**20, {k: v / 2**20 for k, v in m["terms"].items()})


@pytest.fixture
def no_ray(monkeypatch):
    import ray

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started")
    monkeypatch.setattr(driver, "start_ray", refuse)
    monkeypatch.setattr(ray, "init", refuse)


@pytest.mark.parametrize("settings,field", [
    ({"budget": {"iterations": 5, "batch_size": 10**9}}, "budget.batch_size"),
    ({"budget": {"iterations": 5, "batch_size": 10**7}}, "budget.batch_size"),
    ({"eval": {"n_samples": 10**9}}, "eval.n_samples"),
    ({"objectives": ["gan", "gan+pack:100000"]}, "objectives[1]"),
    ({"objectives": ["gan+unrolled:100"], "budget": {"iterations": 5, "batch_size": 10**5}}, "objectives[0]"),
])
@pytest.mark.parametrize("command", [["sweep", "--dry-run"], ["sweep"], ["train"]])
def test_what_cannot_fit_exits_2_naming_the_field_before_ray_or_the_store(tmp_path, monkeypatch, capsys, no_ray,
                                                                          settings, field, command):
    """budget.batch_size 1e9, eval.n_samples 1e9 and gan+pack:100000 took the machine's RAM within
    seconds; a workstation's 64 GB (HARNESS_RAM_GB, so the test holds on any machine) fits none."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("HARNESS_RAM_GB", "64")
    monkeypatch.delenv("HARNESS_GPU_MEMORY_GB", raising=False)
    path = tmp_path / "big.yaml"
    path.write_text(json.dumps({"dataset": "ring8", "space": {"n": 1}, "budget": {"iterations": 5},
                                "train": {"device": "cpu"}, **settings}))
    method = ["--objective", settings["objectives"][-1]] if command == ["train"] and "objectives" in settings else []
    assert cli.main([command[0], str(path), *command[1:], *method]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {field}: trial ") and "GiB of RAM at its peak" in err and "this machine has 64 GiB" in err, err
    assert [p.name for p in tmp_path.iterdir()] == ["big.yaml"]


def test_the_refusal_follows_the_machine():
    """The same trial fits a machine with its estimate's RAM and is refused with a little less."""
    e = from_dict({"dataset": "ring8", "objectives": ["gan"], "space": {"n": 1}, "budget": {"batch_size": 4096}})
    need = memory.check_fits(e, ram_bytes=10**15).host_bytes
    enough = int(need / memory.USABLE_RAM_SHARE) + 1
    assert memory.check_fits(e, ram_bytes=enough).host_bytes == need
    with pytest.raises(ConfigError) as err:
        memory.check_fits(e, ram_bytes=enough - 2**20)
    assert err.value.field == "budget.batch_size" and "Lower budget.batch_size (4096)" in str(err.value)


def test_a_trial_that_fits_no_gpu_is_refused_for_gpu_memory():
    from harness.study.sweep.packing import CUDA_CONTEXT_BYTES
    e = from_dict({"dataset": "fashion_mnist", "objectives": ["gan"], "space": {"mode": "presets", "presets": ["dcgan"]},
                   "budget": {"batch_size": 2**16}})
    est = memory.check_fits(e, ram_bytes=10**15, gpu_bytes=10**15)
    assert est.device["CUDA context"] == CUDA_CONTEXT_BYTES and est.device["data"] == 60_000 * 32 * 32
    assert "evaluation samples" in est.host and "training activations" not in est.host
    with pytest.raises(ConfigError) as err:
        memory.check_fits(e, ram_bytes=10**15, gpu_bytes=est.device_bytes)
    assert err.value.field == "budget.batch_size" and "of GPU memory at its peak" in str(err.value)


@pytest.mark.parametrize("change,term", [
    ({"budget": {"batch_size": 512}}, "training activations"),
    ({"objectives": ["gan+pack:8"]}, "training activations"),
    ({"objectives": ["wgan-gp"]}, "training activations"),
    ({"eval": {"n_samples": 20_000}}, "evaluation samples"),
    ({"train": {"z_dim": 4096}}, "nets"),
])
def test_each_setting_that_decides_memory_moves_its_term(change, term):
    base = {"dataset": "ring8", "objectives": ["gan"], "space": {"mode": "ids", "ids": ["dcgan"]},
            "budget": {"batch_size": 64}, "eval": {"n_samples": 2500}}
    before = memory.estimate(trials_of(from_dict(base))[0]).host
    after = memory.estimate(trials_of(from_dict({**base, **change}))[0]).host
    assert after[term] > before[term]
    # a pack widens D's first layer, z G's; n_samples sizes the evaluator's matrices too
    coupled = {"evaluation samples": "evaluator buffers", "nets": "training activations", "training activations": "nets"}
    assert all(after[k] == before[k] for k in before if k not in (term, coupled.get(term)))


def test_image_data_kept_in_memory_counts_and_data_limit_lowers_it():
    e = from_dict({"dataset": "fashion_mnist", "objectives": ["gan"], "space": {"mode": "presets", "presets": ["dcgan"]}})
    limited = from_dict({**e.to_dict(), "data": {"limit": 1000}})
    assert memory.estimate(trials_of(e)[0]).host["data"] == 60_000 * 32 * 32
    assert memory.estimate(trials_of(limited)[0]).host["data"] == 1000 * 32 * 32


# ---- the dry run: evaluation priced, a long seed list cheap ----------------------------------------

def _price(settings: dict) -> dict:
    """The dry run's summary; every printed line is its trial's full params."""
    import io

    from harness.study.sweep.dry_run import dry_run
    e, out = from_dict(settings), io.StringIO()
    trials = trials_of(e)
    summary = dry_run(e, trials, {"cpu": 1}, {"CPU": 1}, e.thresholds, out=out)
    lines = out.getvalue().splitlines()[:-1]
    assert [json.loads(line) for line in lines[:3]] == [t.params() for t in trials[:3]] and len(lines) == len(trials)
    return summary


def test_evaluation_flops_grow_with_the_samples_and_the_evaluations(tiny_fmnist):
    """eval.n_samples 1e9 was priced at 0.0 h: an evaluation is n_samples through G and the
    evaluator's network, at every evaluation."""
    from harness.cost import evaluation_flops, evaluations_per_trial, extractor_flops, forward_flops
    base = {**tiny_fmnist, "objectives": ["gan"], "space": {**tiny_fmnist["space"], "n": 1}}
    one, more, often = (trials_of(from_dict(d))[0] for d in (
        base, {**base, "eval": {**base["eval"], "n_samples": 200}}, {**base, "eval": {**base["eval"], "every": 3}}))
    per_sample = extractor_flops("fmnist-classifier")
    assert per_sample > 0 and extractor_flops("toy2d") == 0
    assert evaluation_flops(one, per_sample) == 100 * (forward_flops(one)[0] + per_sample)
    assert evaluation_flops(more, per_sample) == 2 * evaluation_flops(one, per_sample)
    assert evaluations_per_trial(often.experiment) == 3 and evaluations_per_trial(one.experiment) == 1   # 3, 6, 8
    assert evaluation_flops(often, per_sample) == 3 * evaluation_flops(one, per_sample)


@pytest.mark.slow
def test_the_dry_run_prices_evaluation_through_the_evaluator(tiny_fmnist):
    """The summary's evaluation FLOPs: every trial's evaluations, and the real side once."""
    from harness.cost import extractor_flops
    base = {**tiny_fmnist, "objectives": ["gan"], "space": {**tiny_fmnist["space"], "n": 1}}
    one = _price(base)
    more = _price({**base, "eval": {**base["eval"], "n_samples": 200}})
    real_side = base["eval"]["n_samples"] * extractor_flops("fmnist-classifier")   # once per sweep, cached
    assert one["evaluations_per_trial"] == 1 and one["evaluation_flop"] > real_side
    assert more["evaluation_flop"] == 2 * one["evaluation_flop"]
    assert one["estimated_hours"] >= one["estimated_training_hours"] and "evaluation" in one["note"]
    assert one["peak_memory_gib"] > 0 and one["peak_memory_trial"]


@pytest.mark.slow
def test_the_dry_run_times_toy2d_metrics_which_have_no_network(tiny_toy2d):
    summary = _price({**tiny_toy2d, "objectives": ["gan"], "space": {**tiny_toy2d["space"], "n": 1}})
    assert summary["evaluator"] == "toy2d" and summary["measured_seconds_per_evaluation"]["gan"] > 0
    assert "toy2d metrics timed on the mixture" in summary["note"]


def test_a_long_seed_list_prices_each_architecture_and_method_once(monkeypatch, tiny_toy2d):
    """A 100,000-seed list kept --dry-run busy for minutes: a method's seeds cost the same."""
    from harness.study.sweep import dry_run
    counted = []
    real = dry_run.iteration_flops
    monkeypatch.setattr(dry_run, "iteration_flops", lambda t: counted.append(t.id) or real(t))
    monkeypatch.setattr(dry_run, "seconds_per_iteration", lambda trial, threads: 0.01)   # timing: the slow tests
    monkeypatch.setattr(dry_run, "seconds_per_toy_evaluation", lambda exp, trials, threads: {"gan": 0.5, "wgan-gp": 0.5})
    summary = _price({**tiny_toy2d, "seeds": list(range(500)), "space": {**tiny_toy2d["space"], "n": 1}})
    assert summary["trials"] == 500 * 2 and len(counted) == 2
    assert summary["estimated_evaluation_hours"] == round(0.5 * 1000 / 3600, 2)
