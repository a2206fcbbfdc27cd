"""Timing: warm-up, timed loops, the aggregate of concurrent processes, FLOPs per iteration."""
from __future__ import annotations

import contextlib
import time
from dataclasses import asdict

import torch

from .. import cost
from .plan import Plan
from .runners import make_runner, resident_images, sync


def timed_run(runner, n: int, device: torch.device) -> tuple[float, list]:
    """(seconds, ticks) of n iterations; ticks are (perf_counter, iterations done)."""
    sync(device)
    t0 = time.perf_counter()
    ticks = [(t0, 0)]
    runner.run(n, tick=lambda it: ticks.append((time.perf_counter(), it)))
    sync(device)
    t1 = time.perf_counter()
    if ticks[-1][1] != n:
        ticks.append((t1, n))
    return t1 - t0, ticks


def warm_up(runner, n: int, device: torch.device) -> float:
    """Run n iterations; return the seconds per iteration they took (an upper bound)."""
    sync(device)
    t0 = time.perf_counter()
    runner.run(n)
    sync(device)
    return (time.perf_counter() - t0) / max(n, 1)


def iterations_for(plan: Plan, rate: float, share: float = 1.0) -> int:
    """Timed iterations to fill about budget_s at `rate * share` it/s, within [min_iters, max_iters]."""
    return int(min(plan.max_iters, max(plan.min_iters, round(plan.budget_s * rate * share))))


def aggregate_rate(tick_lists: list[list]) -> dict:
    """Sum of iterations/s inside the common window [latest start, earliest end]."""
    start = max(t[0][0] for t in tick_lists)
    end = min(t[-1][0] for t in tick_lists)
    own = [t[-1][1] / (t[-1][0] - t[0][0]) for t in tick_lists]
    if end <= start:   # no overlap at all: the processes did not run together
        return {"its_per_s": sum(own), "window_s": 0.0, "overlap": False, "per_proc": own}

    def done_at(ticks, t):   # iterations done at time t, linear between ticks
        for (t_a, i_a), (t_b, i_b) in zip(ticks, ticks[1:]):
            if t_a <= t <= t_b:
                return i_a + (i_b - i_a) * (t - t_a) / max(t_b - t_a, 1e-12)
        return ticks[-1][1] if t > ticks[-1][0] else 0.0

    total = sum(done_at(t, end) - done_at(t, start) for t in tick_lists)
    return {"its_per_s": total / (end - start), "window_s": end - start, "overlap": True, "per_proc": own}


def _worker(rank: int, jobs: list, plan_dict: dict, barrier, queue) -> None:
    """One concurrent process: for each job build, warm up, wait for all, time, report."""
    plan = Plan(**plan_dict)
    if plan.threads_per_proc:
        torch.set_num_threads(plan.threads_per_proc)
    device = torch.device(plan.device)
    images = resident_images(device)
    for job in jobs:
        try:
            runner = make_runner(job["impl"], plan, job["config"], job["objective"], device, images)
            warm_up(runner, plan.warmup, device)
            barrier.wait(timeout=600)
            seconds, ticks = timed_run(runner, job["iters"], device)
            mem = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
            queue.put({"key": job["key"], "rank": rank, "ticks": ticks, "seconds": seconds, "max_mem": mem})
            del runner
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            barrier.wait(timeout=600)
        except Exception as err:  # noqa: BLE001 - reported to the parent, which fails the job
            queue.put({"key": job["key"], "rank": rank, "error": f"{type(err).__name__}: {err}"})
            with contextlib.suppress(Exception):
                barrier.abort()
            return


def run_concurrent(plan: Plan, n_procs: int, jobs: list, log) -> dict:
    """Run every job in n_procs spawned processes at once; key -> aggregate figures."""
    import multiprocessing as mp
    import queue as queue_mod
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(n_procs), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(r, jobs, asdict(plan), barrier, queue), daemon=True)
             for r in range(n_procs)]
    for p in procs:
        p.start()
    results: dict = {}
    try:
        for job in jobs:
            rows = []
            while len(rows) < n_procs:
                try:
                    rows.append(queue.get(timeout=900))
                except queue_mod.Empty:
                    raise RuntimeError(f"{n_procs} concurrent processes: no result for {job['key']} in 900 s") from None
                if "error" in rows[-1]:
                    raise RuntimeError(f"concurrent process {rows[-1]['rank']} failed on {rows[-1]['key']}: "
                                       f"{rows[-1]['error']}")
            agg = aggregate_rate([r["ticks"] for r in rows])
            agg.update(iters_per_proc=job["iters"], max_mem_mib=max(r["max_mem"] for r in rows) / 2**20)
            results[job["key"]] = agg
            log(f"  {n_procs} processes {job['key']}: {agg['its_per_s']:.2f} it/s aggregate "
                f"(window {agg['window_s']:.1f} s)")
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.terminate()
    return results


def count_flops(runner) -> int:
    """FLOPs of one generator iteration (n_critic D steps + the G step, forward and backward)."""
    return cost.count_flops(lambda: runner.run(1))
