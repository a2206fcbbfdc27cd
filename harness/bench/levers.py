"""The levers the profile names, each timed against the path trials take on this CPU.

`harness bench --only profile` times, for gan and wgan-gp at the quick study's size on one
thread, the harness on `precision: auto` (what a trial runs here) with one change at a time,
in interleaved rounds (cpu_speed.rates), beside the plain fp32 reference loop:

- channels_last for the fp32 path (oneDNN's NHWC kernels; auto uses it only with bf16);
- flushing denormals to zero (torch.set_flush_denormal): slow subnormal arithmetic in
  small late-training gradients would show here;
- oneDNN off (torch.backends.mkldnn): PyTorch's own convolution kernels instead;
- Adam with foreach kernels instead of the fused one the harness uses;
- losses read back every 25 steps instead of every step (a CPU read is no device sync,
  but each is a Python call and a small tensor op);
- wgan-gp only, where the CPU has bf16 units: the penalty under autocast
  (train.penalty_precision: autocast).

A lever "pays" when it is faster than the baseline by more than the rounds' spread; the
report gives both, the decision what to keep is made in the code (device.py, train.py) and
documented in docs/benchmark.md with the figure.
"""
from __future__ import annotations

import contextlib

import torch

from ..device import native_bf16_cpu, torch_threads
from .cpu_speed import ARCH, BATCH
from .plan import bench_arch
from .runners import HarnessRunner, ReferenceRunner


class Lever:
    """A runner whose every `run` happens inside `context()`, after `setup(runner)` once."""

    def __init__(self, runner, setup=None, context=contextlib.nullcontext):
        self.runner, self.context = runner, context
        if setup:
            setup(runner)

    def run(self, n: int, tick=None) -> None:
        with self.context():
            self.runner.run(n, tick)


def _channels_last(r: HarnessRunner) -> None:
    s = r.session
    s.data.channels_last = True
    s.step.G.to(memory_format=torch.channels_last)
    s.step.D.to(memory_format=torch.channels_last)


def _foreach_adam(r: HarnessRunner) -> None:
    step = r.session.step
    for name in ("opt_g", "opt_d"):
        opt = getattr(step, name)
        group = opt.param_groups[0]
        setattr(step, name, torch.optim.Adam(group["params"], lr=group["lr"], betas=group["betas"],
                                             weight_decay=group["weight_decay"], foreach=True, fused=False))


def _read_every_25(r: HarnessRunner) -> None:
    r.session.losses.every = 25


def _penalty_autocast(r: HarnessRunner) -> None:
    r.session.step.penalty_dtype = r.session.amp_dtype


@contextlib.contextmanager
def _flush_denormal():
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def levers_for(objective: str, channels_last_already: bool) -> dict:
    """name -> (setup, context) of each lever that applies to this path."""
    out = {}
    if not channels_last_already:
        out["channels_last"] = (_channels_last, contextlib.nullcontext)
    out["flush denormals"] = (None, _flush_denormal)
    out["oneDNN off"] = (None, lambda: torch.backends.mkldnn.flags(enabled=False))
    out["foreach Adam (not fused)"] = (_foreach_adam, contextlib.nullcontext)
    out["losses read every 25 steps"] = (_read_every_25, contextlib.nullcontext)
    if objective == "wgan-gp" and native_bf16_cpu():
        out["penalty under autocast"] = (_penalty_autocast, contextlib.nullcontext)
    return out


def measure_levers(images, log, objectives=("gan", "wgan-gp"), seconds_per_block: float = 2.0,
                   rounds: int = 5) -> dict:
    """Best and worst it/s over interleaved rounds of the baseline (harness, precision auto),
    each lever on it, and the fp32 reference; one thread."""
    import time

    from .cpu_speed import rates
    with torch_threads(1):
        arch, dev = bench_arch(*ARCH), torch.device("cpu")
        out = {"rounds": rounds, "objectives": {}}
        for obj in objectives:
            base = HarnessRunner(arch, obj, BATCH, dev, images, precision="auto")
            runners = {"baseline": Lever(base), "reference fp32": Lever(ReferenceRunner(arch, obj, BATCH, dev, images))}
            for name, (setup, ctx) in levers_for(obj, base.session.data.channels_last).items():
                runners[name] = Lever(HarnessRunner(arch, obj, BATCH, dev, images, precision="auto"), setup, ctx)
            n = {}
            for k, r in runners.items():
                r.run(1)
                t0 = time.perf_counter()
                r.run(1)
                n[k] = max(2, int(seconds_per_block / (time.perf_counter() - t0)))
            per_round = []
            for _ in range(rounds):
                per_round.append(rates(runners, n, 1))
            rows = {}
            for k in runners:
                xs = [p[k] for p in per_round]
                ratio = [p[k] / p["baseline"] for p in per_round]    # same round: same load on the machine
                rows[k] = {"its_per_s": max(xs), "min_its_per_s": min(xs), "over_baseline": sorted(ratio),
                           "median_over_baseline": sorted(ratio)[len(ratio) // 2]}
                log(f"lever {obj} {k}: {max(xs):.2f} it/s, x{rows[k]['median_over_baseline']:.2f} of the baseline "
                    f"(rounds {', '.join(f'{x:.2f}' for x in sorted(ratio))})")
            out["objectives"][obj] = {"baseline_precision": base.precision + (
                "+channels_last" if base.session.data.channels_last else ""), "iterations": n, "levers": rows}
        return out


def levers_markdown(r: dict) -> list[str]:
    lines = ["", "## Levers, one at a time (interleaved rounds, one thread)", "",
             "Each row changes one thing on the harness's `precision: auto` path (the baseline: what a trial "
             "runs on this CPU); its speed over the baseline is taken within each round, so load on the machine "
             "affects both alike, and the median and range over the rounds are given (harness/bench/levers.py).",
             "", "| objective | baseline | lever | best it/s | median x baseline | range over rounds |",
             "|---|---|---|---|---|---|"]
    for obj, o in r["objectives"].items():
        for k, x in o["levers"].items():
            rng = x["over_baseline"]
            lines.append(f"| {obj} | {o['baseline_precision']} | {k} | {x['its_per_s']:.2f} | "
                         f"{x['median_over_baseline']:.2f} | {rng[0]:.2f}-{rng[-1]:.2f} |")
    return lines
