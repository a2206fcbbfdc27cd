"""Run every measurement of a bench plan and write results/bench/<device>[-quick].md and .json."""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

import torch

from .. import provenance
from ..device import torch_threads
from ..errors import UsageError
from .cpu_speed import measure_cpu_speed
from .figures import classifier_weights, measure_compile, measure_eval_cost, measure_trial_overhead
from .markdown import to_markdown
from .plan import CONFIGS, OBJECTIVES, Plan, make_plan, peak_for
from .runners import make_runner, resident_images
from .timing import count_flops, iterations_for, run_concurrent, timed_run, warm_up

IMPLS = ("harness", "reference")


def device_slug(device: torch.device) -> str:
    """The device as files name it. A CPU's model name alone does not tell its vector units
    apart (this project has run on 'AMD EPYC' cores with AVX512-BF16 and with AVX2 only, whose
    bf16 figures differ a hundredfold), so a CPU's slug adds torch's capability and bf16."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        from ..device import native_bf16_cpu
        name = f"cpu-{provenance.cpu_model()}-{torch.backends.cpu.get_cpu_capability()}" + (
            "-bf16" if native_bf16_cpu() else "")
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def hardware(device: torch.device) -> dict:
    cpu = provenance.cpu_model()
    hw = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu,
          "cpu_model": cpu, "cpu_count": os.cpu_count(),
          "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
          "python": sys.version.split()[0],
          "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
          "command": provenance.command_line() if "harness" in " ".join(sys.argv) else "harness.bench.run_bench",
          "peak_key": None, "peak_tflops": None,
          "load_average_1m": os.getloadavg()[0]}   # other work on the machine skews every figure
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        hw.update(gpu_memory_gib=props.total_memory / 2**30, sm_count=props.multi_processor_count)
        hw["peak_key"], hw["peak_tflops"] = peak_for(hw["device_name"])
    return hw


def _share(tflops: float, peak: dict | None, precision: str) -> float | None:
    if not peak:
        return None
    return tflops / peak["bf16" if precision.startswith("bf16") else "fp32"]


def measure_alone(plan: Plan, dev: torch.device, images, hw: dict, log) -> dict:
    """Each (config, objective): harness and reference alone, with FLOPs per iteration."""
    configs = {}
    for config in plan.configs:
        for objective in OBJECTIVES:
            key = f"{config}/{objective}"
            row = {"config": config, "objective": objective, "filters": plan.config_arch(config).filters_g,
                   "depth": CONFIGS[config][1], "batch": plan.batch}
            for impl in IMPLS:
                runner = make_runner(impl, plan, config, objective, dev, images)
                n = iterations_for(plan, 1 / warm_up(runner, plan.warmup, dev))
                rate = n / timed_run(runner, n, dev)[0]
                flops = count_flops(runner)
                row[impl] = {"precision": runner.precision, "alone_its_per_s": rate, "alone_iters": n,
                             "flops_per_iter": flops, "alone_tflops": flops * rate / 1e12}
                row[impl]["alone_peak_share"] = _share(row[impl]["alone_tflops"], hw["peak_tflops"], runner.precision)
                row["params_g"], row["params_d"] = (sum(p.numel() for p in m.parameters()) for m in runner.nets())
                log(f"{key} {impl}: {rate:.2f} it/s alone ({n} its), {flops / 1e9:.2f} GFLOP/it, "
                    f"{row[impl]['alone_tflops']:.3f} TFLOP/s")
                del runner
            row["ratio_alone"] = row["harness"]["alone_its_per_s"] / row["reference"]["alone_its_per_s"]
            configs[key] = row
    return configs


def measure_concurrency(plan: Plan, configs: dict, hw: dict, log) -> None:
    """One pool of processes per N runs every (config, impl) job in turn; adds aggregate figures to `configs`."""
    for n_procs in plan.procs:
        jobs = [{"key": f"{key}/{impl}", "config": row["config"], "objective": row["objective"], "impl": impl,
                 "iters": iterations_for(plan, row[impl]["alone_its_per_s"], 1.5 / n_procs)}
                for key, row in configs.items() for impl in IMPLS]
        log(f"{n_procs} concurrent processes: {len(jobs)} jobs")
        res = run_concurrent(plan, n_procs, jobs, log)
        for key, row in configs.items():
            for impl in IMPLS:
                agg = res[f"{key}/{impl}"]
                tflops = row[impl]["flops_per_iter"] * agg["its_per_s"] / 1e12
                row[impl][f"aggregate_{n_procs}"] = {
                    **agg, "tflops": tflops, "peak_share": _share(tflops, hw["peak_tflops"], row[impl]["precision"])}
            row[f"ratio_aggregate_{n_procs}"] = (row["harness"][f"aggregate_{n_procs}"]["its_per_s"]
                                                 / row["reference"][f"aggregate_{n_procs}"]["its_per_s"])


def measure_outside_training(plan: Plan, dev: torch.device, report: dict, log) -> None:
    """Evaluation cost and a trial's overhead, in a private evaluator cache."""
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as tmp:
        tmp = Path(tmp)
        cache = tmp / "fidelity"
        weights_path, weights_note = classifier_weights(tmp)
        for name, fn in (("eval_cost", lambda: measure_eval_cost(plan, dev, weights_path, cache)),
                         ("trial_overhead", lambda: measure_trial_overhead(plan, dev, weights_path, cache))):
            try:
                report[name] = {**fn(), "classifier_weights": weights_note}
            except Exception as err:  # noqa: BLE001 - e.g. Fashion-MNIST missing: say so, keep the rest
                report[name] = {"error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc(limit=3)}
            log(f"{name}: " + json.dumps({k: (round(v, 3) if isinstance(v, float) else v)
                                          for k, v in report[name].items() if k not in ("trace", "metrics")}))
    report["sweep_overhead"] = {
        "measured": False, "note": "not measured by the bench: Ray start-up and MLflow logging per trial are "
                                   "not timed here (run_trial's figure above excludes them)"}


def _cpu_speed(dev, log) -> dict:
    if dev.type != "cpu":
        raise UsageError("bench --only cpu-speed measures a CPU; this run's device is " + str(dev))
    return {"cpu_speed": measure_cpu_speed(resident_images(dev), log)}


def _penalty_precision(dev, log) -> dict:
    from .penalty_precision import measure_penalty_precision
    return {"penalty_precision": measure_penalty_precision(log)}


def _w1_solver(dev, log) -> dict:
    from .w1_solver import measure_w1_solver
    return {"w1_solver": measure_w1_solver(log)}


# `bench --only NAME`: one measurement, its file named after the CPU (all but cpu-speed run on
# the CPU whatever the device). `dry-run-check` prices studies, so it lives in the study layer
# (harness/study/sweep/dry_run_check.py) and the CLI sends it there.
ONLY = {"cpu-speed": _cpu_speed,                                    # the real-size CPU section
        "w1-solver": _w1_solver,                                    # the 2D evaluator's exact-W1 solvers
        "profile": lambda dev, log: measure_profile_and_levers(log),  # where a CPU iteration's time goes
        "penalty-precision": _penalty_precision}                    # the penalty under bf16 against fp32


def run_bench(quick: bool = False, out_dir: str = "results/bench", device: str | None = None,
              log=None, only: str | None = None, **plan_overrides) -> int:
    """Measure everything, write <out_dir>/<device>[-quick].md and .json; 0 on success.
    only: one measurement of ONLY, into <cpu>-<only>.md / .json."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    t_start = time.perf_counter()
    if only is not None:
        if only not in ONLY:
            raise UsageError(f"bench --only {only!r}: one of {', '.join(ONLY)}")
        cpu = torch.device("cpu")
        report = {"hardware": hardware(dev if only == "cpu-speed" else cpu), "notes": [], **ONLY[only](dev, log)}
        return write_report(report, Path(out_dir), device_slug(dev if only == "cpu-speed" else cpu) + "-" + only,
                            t_start, log)
    plan = make_plan(quick, dev, **plan_overrides)
    hw = hardware(dev)
    log(f"bench on {hw['device_name']} ({'quick' if quick else 'full'}; "
        f"{'reference sizes' if plan.filter_div == 1 else f'REDUCED CPU version: filters / {plan.filter_div}'}, "
        f"batch {plan.batch}, {list(plan.procs)} concurrent processes)")
    images = resident_images(dev)
    threads_before = torch.get_num_threads()
    if plan.threads_per_proc:   # alone runs get what each concurrent process gets (CPU: 1 thread)
        torch.set_num_threads(plan.threads_per_proc)
    report: dict = {"hardware": hw, "plan": asdict(plan), "notes": [
        "fp32 means PyTorch's defaults (cuDNN may use TF32 for convolutions); both the reference "
        "and the harness run with cudnn.benchmark on (pytorch/examples' dcgan does too)."]}
    if dev.type == "cpu":
        report["notes"].append(
            f"CPU figures from a reduced configuration (base filters / {plan.filter_div}, batch {plan.batch}, "
            f"{plan.procs} processes): they test the machinery and are not comparable to the GPU targets.")
    try:
        report["configs"] = measure_alone(plan, dev, images, hw, log)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        measure_concurrency(plan, report["configs"], hw, log)
        measure_outside_training(plan, dev, report, log)
        report["compile"] = measure_compile(plan, dev, images, log) if plan.compile and dev.type == "cuda" else \
            {"skipped": "torch.compile / CUDA graphs are measured on CUDA in full mode only"}
        if plan.cpu_speed and dev.type == "cpu":
            report["cpu_speed"] = measure_cpu_speed(images, log)
    finally:
        torch.set_num_threads(threads_before)
    return write_report(report, Path(out_dir), device_slug(dev) + ("-quick" if quick else ""), t_start, log)


def measure_profile_and_levers(log) -> dict:
    """The profile of a gan and a wgan-gp iteration (profile.py), the levers it names
    (levers.py), with this core's bf16 / fp32 matmul ratio for the Amdahl ceilings."""
    from .cpu_speed import matmul_gflops
    from .levers import measure_levers
    from .profile import measure_profile
    with torch_threads(1):
        peak = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16, seconds=0.5)}
    images = resident_images(torch.device("cpu"))
    profile = measure_profile(images, log, unit_speedup=peak["bf16"] / peak["fp32"], fp32_matmul_gflops=peak["fp32"])
    return {"matmul_gflops": peak, "profile": profile, "levers": measure_levers(images, log)}


def write_report(report: dict, out: Path, stem: str, t_start: float, log, render=to_markdown) -> int:
    report["bench_seconds"] = time.perf_counter() - t_start
    report["load_average_end_1m"] = os.getloadavg()[0]   # the load can change during a long run
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / f"{stem}.md").write_text(render(report))
    log(f"bench written to {out / stem}.md and .json in {report['bench_seconds']:.0f} s")
    return 0
