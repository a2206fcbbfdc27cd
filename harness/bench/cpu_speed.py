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


def matmul_gflops(dtype: torch.dtype, seconds: float = 1.0, n: int | None = None) -> float:
    """GFLOP/s of an n x n matmul on this thread, best of repeated timed blocks. Without bf16
    units a bf16 matmul is emulated, hundreds of times slower: 1024^2 would take a minute, so
    it is timed at 256^2 (the rate is what matters, and it is far below fp32's at any size)."""
    if n is None:
        n = MATMUL_N if dtype != torch.bfloat16 or native_bf16_cpu() else 256
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best, end = 0.0, time.perf_counter() + seconds
    while True:
        t0 = CLOCK()   # one thread: its CPU time (see CLOCK)
        for _ in range(3):
            a @ b
        best = max(best, 3 * 2 * n ** 3 / max(CLOCK() - t0, 1e-9) / 1e9)
        if time.perf_counter() >= end:
            return best


# One thread does all of a single-thread run's work (torch.set_num_threads(1); autograd runs
# on the calling thread on a CPU), so its CPU time is the run's own time: on a machine shared
# with other work (this project's 2 cores often carry a load of 8-12) the wall clock also
# counts the time the thread waited for a core. Both are kept; the CPU time is the figure.
CLOCK = time.thread_time


def rates(runners: dict, n: dict, rounds: int, wall: dict | None = None) -> dict:
    """Best it/s of each runner over `rounds` interleaved timed blocks, by the thread's CPU
    time (CLOCK); interleaving spreads what load remains evenly over the paths compared.
    `wall`, when given, receives each runner's best wall-clock it/s."""
    best = {k: 0.0 for k in runners}
    for _ in range(rounds):
        for k, r in runners.items():
            t0, c0 = time.perf_counter(), CLOCK()
            r.run(n[k])
            c1, t1 = CLOCK(), time.perf_counter()
            best[k] = max(best[k], n[k] / max(c1 - c0, 1e-9))
            if wall is not None:
                wall[k] = max(wall.get(k, 0.0), n[k] / (t1 - t0))
    return best


def measure_cpu_speed(images, log, objectives=("gan", "wgan-gp"), seconds_per_block: float = 3.0,
                      rounds: int = 3) -> dict:
    """it/s, GFLOP/s and shares of the matmul rates for each path and objective; one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        peak = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
        log(f"matmul {MATMUL_N}^2 on one thread: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.3g} GFLOP/s")
        arch = bench_arch(*ARCH)
        out = {"arch": f"DCGAN depth {ARCH[1]}, {ARCH[0]} filters, batch {BATCH}", "threads": 1,
               "native_bf16": native_bf16_cpu(), "matmul_gflops": peak, "objectives": {},
               "clock": "the thread's CPU time (time.thread_time)"}
        for obj in objectives:
            runners = {k: make(arch, obj, images) for k, make in PATHS.items()}
            per_it = {}
            for k, r in runners.items():
                t0 = time.perf_counter()
                r.run(2)
                per_it[k] = (time.perf_counter() - t0) / 2
            n = {k: max(2, int(seconds_per_block / per_it[k])) for k in runners}
            wall: dict = {}
            best = rates(runners, n, rounds, wall)
            rows = {}
            for k, r in runners.items():
                flops = count_flops(r)
                precision = r.precision + ("+channels_last" if k != "reference" and
                                           r.session.data.channels_last else "")
                unit = "bf16" if precision.startswith("bf16") else "fp32"
                gflops = flops * best[k] / 1e9
                rows[k] = {"precision": precision, "its_per_s": best[k], "wall_its_per_s": wall[k],
                           "gflop_per_it": flops / 1e9,
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
             f"bf16 {r['matmul_gflops']['bf16']:.3g} GFLOP/s"
             + ("" if r["native_bf16"] else " (at 256x256: emulated, this CPU has no bf16 units)")
             + f"; native bf16: {r['native_bf16']}.", "",
             f"Rates by {r.get('clock', 'the wall clock')} (the best of interleaved rounds); the wall clock's "
             "best beside them, which on a loaded machine also counts the waits for a core.", "",
             "| objective | path | precision | it/s | wall-clock it/s | GFLOP/it | GFLOP/s | share of the matmul rate |",
             "|---|---|---|---|---|---|---|---|"]
    for obj, o in r["objectives"].items():
        for k, x in o["paths"].items():
            wall = f"{x['wall_its_per_s']:.2f}" if "wall_its_per_s" in x else "-"
            lines.append(f"| {obj} | {k} | {x['precision']} | {x['its_per_s']:.2f} | {wall} | {x['gflop_per_it']:.2f} | "
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
