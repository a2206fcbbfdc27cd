"""The CPU at real size: the quick study's architecture (DCGAN depth 4, 32 filters, batch 32)
on one thread, through the harness's fp32 and `precision: auto` paths and the reference
loop, against this core's own matmul rates in fp32 and bf16. Also what a checkpoint costs.

Why a matmul: a GAN iteration here is convolutions and small matmuls, so a large square
matmul on the same core is the practical ceiling of each precision; the share of it a
training step reaches says how much headroom is left (and where: fp32 or bf16 units).
"""
from __future__ import annotations

import time

import torch

from .. import checkpoint
from ..device import native_bf16_cpu
from ..train import start_record
from .plan import bench_arch
from .runners import HarnessRunner, ReferenceRunner
from .timing import count_flops

ARCH = (32, 4)               # (base filters, depth) of the quick study (experiments/quick.yaml)
BATCH = 32
MATMUL_N = 1024
PATHS = {"reference": lambda arch, obj, images: ReferenceRunner(arch, obj, BATCH, torch.device("cpu"), images),
         "harness fp32": lambda arch, obj, images: HarnessRunner(arch, obj, BATCH, torch.device("cpu"), images,
                                                                 precision="fp32"),
         "harness auto": lambda arch, obj, images: HarnessRunner(arch, obj, BATCH, torch.device("cpu"), images,
                                                                 precision="auto")}


def matmul_gflops(dtype: torch.dtype, seconds: float = 1.0) -> float:
    """GFLOP/s of an N x N matmul on this thread, best of repeated timed blocks."""
    a, b = torch.randn(MATMUL_N, MATMUL_N, dtype=dtype), torch.randn(MATMUL_N, MATMUL_N, dtype=dtype)
    for _ in range(3):
        a @ b
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        for _ in range(5):
            a @ b
        best = max(best, 5 * 2 * MATMUL_N ** 3 / (time.perf_counter() - t0) / 1e9)
    return best


def rates(runners: dict, n: dict, rounds: int) -> dict:
    """Best it/s of each runner over `rounds` interleaved timed blocks: interleaving spreads
    any load on the machine evenly over the paths being compared."""
    best = {k: 0.0 for k in runners}
    for _ in range(rounds):
        for k, r in runners.items():
            t0 = time.perf_counter()
            r.run(n[k])
            best[k] = max(best[k], n[k] / (time.perf_counter() - t0))
    return best


def measure_cpu_speed(images, log, objectives=("gan", "wgan-gp"), seconds_per_block: float = 3.0,
                      rounds: int = 3) -> dict:
    """it/s, GFLOP/s and shares of the matmul rates for each path and objective; one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        peak = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
        log(f"matmul {MATMUL_N}^2 on one thread: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s")
        arch = bench_arch(*ARCH)
        out = {"arch": f"DCGAN depth {ARCH[1]}, {ARCH[0]} filters, batch {BATCH}", "threads": 1,
               "native_bf16": native_bf16_cpu(), "matmul_gflops": peak, "objectives": {}}
        for obj in objectives:
            runners = {k: make(arch, obj, images) for k, make in PATHS.items()}
            per_it = {}
            for k, r in runners.items():
                t0 = time.perf_counter()
                r.run(2)
                per_it[k] = (time.perf_counter() - t0) / 2
            n = {k: max(2, int(seconds_per_block / per_it[k])) for k in runners}
            best = rates(runners, n, rounds)
            rows = {}
            for k, r in runners.items():
                flops = count_flops(r)
                precision = r.precision + ("+channels_last" if k != "reference" and
                                           r.session.data.channels_last else "")
                unit = "bf16" if precision.startswith("bf16") else "fp32"
                gflops = flops * best[k] / 1e9
                rows[k] = {"precision": precision, "its_per_s": best[k], "gflop_per_it": flops / 1e9,
                           "gflop_per_s": gflops, "share_of_matmul": gflops / peak[unit], "matmul_unit": unit}
                log(f"{obj} {k} ({precision}): {best[k]:.2f} it/s, {gflops:.0f} GFLOP/s, "
                    f"{100 * rows[k]['share_of_matmul']:.0f} % of the {unit} matmul rate")
            out["objectives"][obj] = {
                "paths": rows,
                "auto_over_fp32": rows["harness auto"]["its_per_s"] / rows["harness fp32"]["its_per_s"],
                "harness_fp32_over_reference": rows["harness fp32"]["its_per_s"] / rows["reference"]["its_per_s"],
                "auto_over_reference": rows["harness auto"]["its_per_s"] / rows["reference"]["its_per_s"]}
        session = runners["harness auto"].session
        size, secs = checkpoint.size_and_seconds(session, start_record(session.trial))
        out["checkpoint"] = {"bytes": size, "seconds": secs, "objective": objectives[-1],
                             "per_iteration_s": 1 / out["objectives"][objectives[-1]]["paths"]["harness auto"]["its_per_s"]}
        log(f"checkpoint of a {objectives[-1]} trial: {size / 1e6:.2f} MB in {secs * 1e3:.1f} ms")
        return out
    finally:
        torch.set_num_threads(threads)


def cpu_speed_markdown(r: dict) -> list[str]:
    lines = ["", f"## CPU at real size: {r['arch']}, {r['threads']} thread", "",
             f"This core's {MATMUL_N}x{MATMUL_N} matmul: fp32 {r['matmul_gflops']['fp32']:.0f} GFLOP/s, "
             f"bf16 {r['matmul_gflops']['bf16']:.0f} GFLOP/s; native bf16: {r['native_bf16']}.", "",
             "| objective | path | precision | it/s | GFLOP/it | GFLOP/s | share of the matmul rate |",
             "|---|---|---|---|---|---|---|"]
    for obj, o in r["objectives"].items():
        for k, x in o["paths"].items():
            lines.append(f"| {obj} | {k} | {x['precision']} | {x['its_per_s']:.2f} | {x['gflop_per_it']:.2f} | "
                         f"{x['gflop_per_s']:.0f} | {100 * x['share_of_matmul']:.0f} % ({x['matmul_unit']}) |")
    lines += ["", "| objective | auto / fp32 | harness fp32 / reference | auto / reference |", "|---|---|---|---|"]
    for obj, o in r["objectives"].items():
        lines.append(f"| {obj} | {o['auto_over_fp32']:.2f} | {o['harness_fp32_over_reference']:.2f} | "
                     f"{o['auto_over_reference']:.2f} |")
    c = r["checkpoint"]
    lines += ["", f"A checkpoint of a {c['objective']} trial (G, D, both Adam states, generators): "
                  f"{c['bytes'] / 1e6:.2f} MB, {c['seconds'] * 1e3:.1f} ms to capture and serialize, "
                  f"{c['seconds'] / c['per_iteration_s']:.2f} iterations' worth (the copy into Tune's storage is extra)."]
    return lines
