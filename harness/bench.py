"""`python -m harness bench`: how fast the harness trains, against a plain PyTorch loop.

For each reference configuration (DCGAN-based G and D, relu G / lrelu D, norm on, base
filters 64 depth 8 and base filters 128 depth 20; objectives gan and wgan-gp; batch 64;
32x32x1 data) it measures, in one run:

- generator iterations/s of one harness trial alone: `train.GANStep`, the step the
  harness trains with, driven like `train._train` drives it (n_critic D steps, one G step,
  real batches by random index from a uint8 tensor resident on the device via
  `train.RealData.batch`, losses accumulated on the device and read back every
  `check_every` steps), timed after warm-up;
- the same for a plain PyTorch reference loop: fp32, the same networks (built by
  harness.nets), the same hyperparameters, written as a user would write it (D forward on
  real and fake, loss.backward(), opt.step(), G step through a D that is not frozen,
  .item() every step) and sharing no other harness code;
- the aggregate of N concurrent trials (separate spawned processes sharing the device,
  started together at a barrier after warm-up, each timing a fixed number of iterations):
  the sum of their iterations inside the common window [last start, first end] divided by
  the window's length, for both the harness and the reference;
- FLOPs of one generator iteration (n_critic D steps + the G step) with
  torch.utils.flop_counter, hence achieved TFLOP/s and a share of the device's peak;
- evaluation cost: IS/FID/KID of the fmnist-classifier evaluator on n generated samples
  with the real features already cached (and the one-off real-feature extraction);
- the share of a real trial's wall time spent outside training (`run_trial`: setup,
  evaluation, sample grid); the sweep path's own overhead (Ray, MLflow) is not measured;
- on CUDA (full mode), torch.compile: compile time against the speed gain.

On a machine without a GPU it runs a reduced CPU version (filters and batch scaled
down, 2 processes, a few iterations) that checks the machinery, not the targets. Results
go to results/bench/<device>[-quick].md and .json, the device named as it really is.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import platform
import re
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from .data import get_dataset_spec
from .nets import build_discriminator, build_generator
from .objectives import get_objective
from .space import FILTERS, Arch
from .train import RealData, build_step, resolve_precision
from .errors import UnknownName

SHAPE = (1, 32, 32)
Z_DIM = 128
N_IMAGES = 60_000            # a Fashion-MNIST-sized resident uint8 tensor
OBJECTIVES = ("gan", "wgan-gp")
# name -> (base filters, depth) of both G and D
CONFIGS = {"f64-d8": (64, 8), "f128-d20": (128, 20)}

# Dense (no sparsity) peak TFLOP/s from NVIDIA's data sheets: bf16 tensor core, fp32 (no TF32).
PEAK_TFLOPS = {
    "H200": {"bf16": 989.4, "fp32": 66.9},
    "H100 SXM": {"bf16": 989.4, "fp32": 66.9},
    "H100 NVL": {"bf16": 835.5, "fp32": 60.0},
    "H100 PCIe": {"bf16": 756.5, "fp32": 51.2},
    "A100": {"bf16": 312.0, "fp32": 19.5},
}


def peak_for(device_name: str) -> tuple[str, dict] | tuple[None, None]:
    """The peak table entry for a CUDA device name, or (None, None) when unknown."""
    n = device_name.upper()
    if "H200" in n:
        key = "H200"
    elif "H100" in n:
        key = "H100 PCIe" if "PCIE" in n else "H100 NVL" if "NVL" in n else "H100 SXM"
    elif "A100" in n:
        key = "A100"
    else:
        return None, None
    return key, PEAK_TFLOPS[key]


# ----------------------------------------------------------------------------- plan


@dataclass
class Plan:
    """What one bench run measures; the CPU plans shrink the networks, not the method."""
    device: str
    quick: bool
    filter_div: int = 1          # base filters are divided by this (CPU only)
    batch: int = 64
    procs: tuple = (8, 16)
    warmup: int = 10
    budget_s: float = 10.0       # seconds each timed loop aims at
    min_iters: int = 10
    max_iters: int = 2000
    eval_n: int = 10_000
    trial_iters: int = 500
    compile: bool = True
    configs: tuple = tuple(CONFIGS)
    threads_per_proc: int = 0    # torch threads in each concurrent process; 0 = torch's default

    def config_arch(self, name: str) -> Arch:
        filters, depth = CONFIGS[name]
        return bench_arch(max(1, filters // self.filter_div), depth)


def make_plan(quick: bool, device: torch.device, **overrides) -> Plan:
    if device.type == "cuda":
        plan = Plan(str(device), quick)
        if quick:
            plan = Plan(str(device), quick, procs=(2,), warmup=3, budget_s=3.0, min_iters=3, eval_n=1000,
                        trial_iters=50, compile=False)
    elif quick:
        plan = Plan(str(device), quick, filter_div=16, batch=16, procs=(2,), warmup=1, budget_s=1.5,
                    min_iters=2, eval_n=500, trial_iters=4, compile=False, threads_per_proc=1)
    else:
        plan = Plan(str(device), quick, filter_div=8, batch=32, procs=(2,), warmup=2, budget_s=8.0,
                    min_iters=3, eval_n=2000, trial_iters=20, compile=False, threads_per_proc=1)
    for k, v in overrides.items():
        if not hasattr(plan, k):
            raise UnknownName(f"unknown bench plan field {k!r}; valid: {sorted(asdict(plan))}")
        setattr(plan, k, v)
    return plan


def bench_arch(filters: int, depth: int) -> Arch:
    """The reference architecture; filters outside the space only for the reduced CPU version."""
    arch = Arch(nonlin_g="relu", nonlin_d="lrelu", depth_g=depth, depth_d=depth, norm_g=True, norm_d=True,
                filters_g=64, filters_d=64)
    if filters not in FILTERS:   # Arch validates against the space; the CPU version is off-grid
        object.__setattr__(arch, "filters_g", filters)
        object.__setattr__(arch, "filters_d", filters)
    else:
        arch = Arch(**{**arch.to_dict(), "filters_g": filters, "filters_d": filters})
    return arch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _resident_images(device: torch.device, seed: int = 0) -> torch.Tensor:
    """A uint8 N x 1 x 32 x 32 tensor on the device: Fashion-MNIST's size; contents do not change timing."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (N_IMAGES, *SHAPE), generator=g, dtype=torch.uint8).to(device)


def _real_data(images: torch.Tensor, device: torch.device, gen: torch.Generator, channels_last: bool) -> RealData:
    """`train.RealData` around an existing tensor, so batches come from the harness's own code."""
    return RealData(get_dataset_spec("fashion_mnist"), images, device, gen, channels_last)


# ----------------------------------------------------------------------------- the two loops


class HarnessRunner:
    """The harness's trial step, driven as train._train drives it (minus logging/eval)."""

    impl = "harness"

    def __init__(self, arch: Arch, objective: str, batch: int, device: torch.device, images: torch.Tensor,
                 seed: int = 0, precision: str = "auto"):
        self.device, self.batch = device, batch
        torch.manual_seed(seed)
        self.gen = torch.Generator(device=device).manual_seed(seed)
        self.amp_dtype = resolve_precision(precision, device)
        channels_last = device.type == "cuda"
        self.data = _real_data(images, device, self.gen, channels_last)
        self.objective = get_objective(objective)
        self.step = build_step(arch, self.objective, SHAPE, Z_DIM, device, self.amp_dtype, channels_last)
        self.n_critic = self.objective.settings.n_critic
        self.check_every = 1 if device.type == "cpu" else 25
        self.loss_sum = torch.zeros(2, device=device)
        self.since = 0

    @property
    def precision(self) -> str:
        return "bf16-autocast" if self.amp_dtype == torch.bfloat16 else "fp32"

    def iteration(self) -> None:
        b, dev, gen = self.batch, self.device, self.gen
        for _ in range(self.n_critic):
            loss_d = self.step.discriminator(self.data.batch(b), torch.randn(b, Z_DIM, device=dev, generator=gen))
        loss_g = self.step.generator(torch.randn(b, Z_DIM, device=dev, generator=gen))
        self.loss_sum += torch.stack([loss_d.detach(), loss_g.detach()])
        self.since += 1

    def read_back(self) -> None:
        means = (self.loss_sum / max(self.since, 1)).tolist()   # the loop's only host sync
        self.loss_sum.zero_()
        self.since = 0
        if not all(map(math.isfinite, means)):
            raise FloatingPointError(f"non-finite loss in the benchmark: {means}")

    def run(self, n: int, tick=None) -> None:
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True    # as train._train sets it (process-wide)
        for it in range(1, n + 1):
            self.iteration()
            if it % self.check_every == 0 or it == n:
                self.read_back()
                if tick:
                    tick(it)

    def nets(self):
        return self.step.G, self.step.D


class ReferenceRunner:
    """A textbook fp32 PyTorch GAN loop over the same networks; no harness code but the builders."""

    impl = "reference"
    precision = "fp32"

    def __init__(self, arch: Arch, objective: str, batch: int, device: torch.device, images: torch.Tensor,
                 seed: int = 0):
        s = get_objective(objective).settings      # hyperparameters only
        torch.manual_seed(seed)
        self.device, self.batch, self.images = device, batch, images
        self.G = build_generator(arch, SHAPE, Z_DIM).to(device)
        self.D = build_discriminator(arch, SHAPE, s.d_norm, spectral=s.spectral_norm).to(device)
        wd = s.d_weight_decay if arch.norm_d else 0.0
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=s.lr_g, betas=(s.beta1, s.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=s.lr_d, betas=(s.beta1, s.beta2), weight_decay=wd)
        self.wgan, self.gp_weight, self.n_critic = objective.startswith("wgan"), s.gp_weight, s.n_critic
        self.ones = torch.ones(batch, 1, device=device)
        self.zeros = torch.zeros(batch, 1, device=device)

    def iteration(self) -> None:
        G, D, b, dev = self.G, self.D, self.batch, self.device
        for _ in range(self.n_critic):
            real = self.images[torch.randint(len(self.images), (b,), device=dev)].float() / 127.5 - 1
            fake = G(torch.randn(b, Z_DIM, device=dev)).detach()
            d_real, d_fake = D(real), D(fake)
            if self.wgan:
                loss_d = d_fake.mean() - d_real.mean()
                alpha = torch.rand(b, 1, 1, 1, device=dev)
                x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
                grad = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)[0]
                loss_d = loss_d + self.gp_weight * ((grad.view(b, -1).norm(2, dim=1) - 1) ** 2).mean()
            else:
                loss_d = (F.binary_cross_entropy_with_logits(d_real, self.ones)
                          + F.binary_cross_entropy_with_logits(d_fake, self.zeros))
            self.opt_d.zero_grad()
            loss_d.backward()
            self.opt_d.step()
            loss_d.item()
        out = D(G(torch.randn(b, Z_DIM, device=dev)))
        loss_g = -out.mean() if self.wgan else F.binary_cross_entropy_with_logits(out, self.ones)
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()
        if not math.isfinite(loss_g.item()):
            raise FloatingPointError("non-finite loss in the reference loop")

    def run(self, n: int, tick=None) -> None:
        torch.backends.cudnn.benchmark = True    # as pytorch/examples' dcgan sets it: the stronger baseline
        for it in range(1, n + 1):
            self.iteration()
            if tick:
                tick(it)

    def nets(self):
        return self.G, self.D


RUNNERS = {"harness": HarnessRunner, "reference": ReferenceRunner}


def make_runner(impl: str, plan: Plan, config: str, objective: str, device: torch.device, images):
    return RUNNERS[impl](plan.config_arch(config), objective, plan.batch, device, images)


# ----------------------------------------------------------------------------- timing


def timed_run(runner, n: int, device: torch.device) -> tuple[float, list]:
    """(seconds, ticks) of n iterations; ticks are (perf_counter, iterations done)."""
    _sync(device)
    t0 = time.perf_counter()
    ticks = [(t0, 0)]
    runner.run(n, tick=lambda it: ticks.append((time.perf_counter(), it)))
    _sync(device)
    t1 = time.perf_counter()
    if ticks[-1][1] != n:
        ticks.append((t1, n))
    return t1 - t0, ticks


def warm_up(runner, n: int, device: torch.device) -> float:
    """Run n iterations; return the seconds per iteration they took (an upper bound)."""
    _sync(device)
    t0 = time.perf_counter()
    runner.run(n)
    _sync(device)
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
    images = _resident_images(device)
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


# ----------------------------------------------------------------------------- FLOPs


class _GlobalOnly:
    """Stands in for FlopCounterMode's ModuleTracker, whose backward hooks break
    torch.autograd.grad (the gradient penalty): 'A leaf node was passed to
    _will_engine_execute_node ...'. Totals are unaffected; per-module breakdowns are lost."""

    parents = {"Global"}

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False


def count_flops(runner) -> int:
    """FLOPs of one generator iteration (n_critic D steps + the G step, forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()
    with counter:
        runner.run(1)
    return int(counter.get_total_flops())


# ----------------------------------------------------------------------------- the other figures


def _classifier_weights(tmp: Path) -> tuple[str | None, str]:
    """The shipped classifier weights, or an untrained stand-in (cost does not depend on weights)."""
    from .evaluate.classifier import SmallCNN, default_weights_path
    shipped = default_weights_path("fashion_mnist")
    if shipped.exists():
        return None, "shipped"
    path = tmp / "standin_classifier.pt"
    torch.manual_seed(0)
    torch.save(SmallCNN().state_dict(), path)
    return str(path), "untrained stand-in (shipped weights missing; cost only)"


def measure_eval_cost(plan: Plan, device: torch.device, weights_path, cache_dir: Path) -> dict:
    from .evaluate import make_evaluator
    ev = make_evaluator("fmnist-classifier", "fashion_mnist", plan.eval_n, real_split="train", device=str(device),
                        weights_path=weights_path, cache_dir=cache_dir)
    t0 = time.perf_counter()
    ev.prepare()
    t_real = time.perf_counter() - t0
    G = build_generator(plan.config_arch(plan.configs[0]), SHAPE, Z_DIM).to(device).eval()
    amp = resolve_precision("auto", device)
    gen = torch.Generator(device=device).manual_seed(0)

    def sample_fn(n):
        z = torch.randn(n, Z_DIM, device=device, generator=gen)
        with torch.no_grad(), (torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext()):
            return G(z).float()

    _sync(device)
    t0 = time.perf_counter()
    metrics = ev.evaluate(sample_fn)
    _sync(device)
    t_eval = time.perf_counter() - t0
    return {"n_samples": plan.eval_n, "seconds": t_eval, "real_features_once_s": t_real,
            "metrics": sorted(metrics), "generator": plan.configs[0]}


def measure_trial_overhead(plan: Plan, device: torch.device, weights_path, cache_dir: Path) -> dict:
    """A short run_trial with evaluation (real features already cached): wall vs train time."""
    from .config import Trial, from_dict
    from .train import run_trial
    iters = plan.trial_iters
    exp = from_dict({"name": "bench-overhead", "dataset": "fashion_mnist", "objectives": ["gan"],
                     "budget": {"iterations": iters, "batch_size": plan.batch},
                     "eval": {"n_samples": plan.eval_n, "every": max(1, iters // 2), "weights_path": weights_path},
                     "train": {"device": str(device)}})
    trial = Trial(exp, plan.config_arch(plan.configs[0]), "gan", 0)
    old = os.environ.get("HARNESS_CACHE")
    os.environ["HARNESS_CACHE"] = str(cache_dir.parent)   # evaluator cache: <HARNESS_CACHE>/fidelity
    try:
        r = run_trial(trial)
    finally:
        if old is None:
            os.environ.pop("HARNESS_CACHE", None)
        else:
            os.environ["HARNESS_CACHE"] = old
    if r.status == "failed":
        raise RuntimeError(f"run_trial failed: {(r.error or '').splitlines()[0]}")
    outside = r.wall_time_s - r.train_time_s
    return {"iterations": r.iterations, "evaluations": len(r.history), "eval_n": plan.eval_n,
            "wall_time_s": r.wall_time_s, "train_time_s": r.train_time_s, "eval_time_s": r.eval_time_s,
            "setup_and_rest_s": outside - r.eval_time_s, "outside_training_share": outside / r.wall_time_s,
            "trial_its_per_s": r.its_per_s, "status": r.status, "config": plan.configs[0], "objective": "gan"}


def measure_compile(plan: Plan, device: torch.device, images, log) -> dict:
    """torch.compile of G and D inside the harness step: compile seconds vs steady-state gain."""
    out = {}
    for config in plan.configs:
        for objective in OBJECTIVES:
            for mode in ("default", "reduce-overhead"):
                key = f"{config}/{objective}/{mode}"
                try:
                    torch._dynamo.reset()
                    eager = make_runner("harness", plan, config, objective, device, images)
                    warm_up(eager, plan.warmup, device)
                    n = iterations_for(plan, 1 / warm_up(eager, 2, device))
                    r_eager = n / timed_run(eager, n, device)[0]
                    del eager
                    comp = make_runner("harness", plan, config, objective, device, images)
                    comp.step.G = torch.compile(comp.step.G, mode=mode)
                    comp.step.D = torch.compile(comp.step.D, mode=mode)
                    t_first = warm_up(comp, plan.warmup, device) * plan.warmup
                    r_comp = n / timed_run(comp, n, device)[0]
                    compile_s = max(0.0, t_first - plan.warmup / r_comp)
                    saved = 1 / r_eager - 1 / r_comp
                    out[key] = {"eager_its_per_s": r_eager, "compiled_its_per_s": r_comp, "speedup": r_comp / r_eager,
                                "compile_s": compile_s,
                                "break_even_iters": compile_s / saved if saved > 0 else None}
                    log(f"  compile {key}: x{r_comp / r_eager:.2f}, {compile_s:.0f} s to compile")
                except Exception as err:  # noqa: BLE001 - e.g. double backward through compiled D
                    out[key] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
                    log(f"  compile {key}: failed ({out[key]['error']})")
    torch._dynamo.reset()
    return out


# ----------------------------------------------------------------------------- run


def device_slug(device: torch.device) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = "cpu-" + _cpu_model()
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def hardware(device: torch.device) -> dict:
    hw = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
          else _cpu_model(), "cpu_model": _cpu_model(), "cpu_count": os.cpu_count(),
          "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
          "python": platform.python_version(),
          "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
          "command": " ".join(["python -m harness"] + sys.argv[1:]) if sys.argv and "harness" in " ".join(sys.argv)
          else "harness.bench.run_bench"}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        hw.update(gpu_memory_gib=props.total_memory / 2**30, sm_count=props.multi_processor_count)
        key, peak = peak_for(hw["device_name"])
        hw.update(peak_key=key, peak_tflops=peak)
    else:
        hw.update(peak_key=None, peak_tflops=None)
    return hw


def _share(tflops: float, peak: dict | None, precision: str) -> float | None:
    if not peak:
        return None
    return tflops / peak["bf16" if precision.startswith("bf16") else "fp32"]


def run_bench(quick: bool = False, out_dir: str = "results/bench", device: str | None = None,
              log=None, **plan_overrides) -> int:
    """Measure everything, write <out_dir>/<device>[-quick].md and .json; 0 on success."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    plan = make_plan(quick, dev, **plan_overrides)
    hw = hardware(dev)
    t_start = time.perf_counter()
    log(f"bench on {hw['device_name']} ({'quick' if quick else 'full'}; "
        f"{'reference sizes' if plan.filter_div == 1 else f'REDUCED CPU version: filters / {plan.filter_div}'}, "
        f"batch {plan.batch}, {list(plan.procs)} concurrent processes)")
    images = _resident_images(dev)
    threads_before = torch.get_num_threads()
    if plan.threads_per_proc:   # alone runs get what each concurrent process gets (CPU: 1 thread)
        torch.set_num_threads(plan.threads_per_proc)
    report: dict = {"hardware": hw, "plan": asdict(plan), "configs": {}, "notes": []}
    report["notes"].append("fp32 means PyTorch's defaults (cuDNN may use TF32 for convolutions); both the reference "
                           "and the harness run with cudnn.benchmark on (pytorch/examples' dcgan does too).")
    if dev.type == "cpu":
        report["notes"].append(
            f"CPU figures from a reduced configuration (base filters / {plan.filter_div}, batch {plan.batch}, "
            f"{plan.procs} processes): they test the machinery and are not comparable to the GPU targets.")

    # 1. alone: harness and reference, FLOPs
    for config in plan.configs:
        for objective in OBJECTIVES:
            key = f"{config}/{objective}"
            row = {"config": config, "objective": objective, "filters": plan.config_arch(config).filters_g,
                   "depth": CONFIGS[config][1], "batch": plan.batch}
            for impl in ("harness", "reference"):
                runner = make_runner(impl, plan, config, objective, dev, images)
                sec_per_it = warm_up(runner, plan.warmup, dev)
                n = iterations_for(plan, 1 / sec_per_it)
                seconds, _ = timed_run(runner, n, dev)
                flops = count_flops(runner)
                rate = n / seconds
                row[impl] = {"precision": runner.precision, "alone_its_per_s": rate, "alone_iters": n,
                             "flops_per_iter": flops, "alone_tflops": flops * rate / 1e12}
                row[impl]["alone_peak_share"] = _share(row[impl]["alone_tflops"], hw["peak_tflops"], runner.precision)
                G, D = runner.nets()
                row["params_g"], row["params_d"] = (sum(p.numel() for p in m.parameters()) for m in (G, D))
                log(f"{key} {impl}: {rate:.2f} it/s alone ({n} its), {flops / 1e9:.2f} GFLOP/it, "
                    f"{row[impl]['alone_tflops']:.3f} TFLOP/s")
                del runner
            row["ratio_alone"] = row["harness"]["alone_its_per_s"] / row["reference"]["alone_its_per_s"]
            report["configs"][key] = row
    if dev.type == "cuda":
        torch.cuda.empty_cache()

    # 2. concurrency: one pool of processes per N runs every (config, impl) job in turn
    for n_procs in plan.procs:
        jobs = []
        for key, row in report["configs"].items():
            for impl in ("harness", "reference"):
                jobs.append({"key": f"{key}/{impl}", "config": row["config"], "objective": row["objective"],
                             "impl": impl, "iters": iterations_for(plan, row[impl]["alone_its_per_s"], 1.5 / n_procs)})
        log(f"{n_procs} concurrent processes: {len(jobs)} jobs")
        res = run_concurrent(plan, n_procs, jobs, log)
        for key, row in report["configs"].items():
            for impl in ("harness", "reference"):
                agg = res[f"{key}/{impl}"]
                tflops = row[impl]["flops_per_iter"] * agg["its_per_s"] / 1e12
                row[impl][f"aggregate_{n_procs}"] = {**agg, "tflops": tflops,
                                                     "peak_share": _share(tflops, hw["peak_tflops"], row[impl]["precision"])}
            row[f"ratio_aggregate_{n_procs}"] = (row["harness"][f"aggregate_{n_procs}"]["its_per_s"]
                                                 / row["reference"][f"aggregate_{n_procs}"]["its_per_s"])

    # 3. evaluation cost and trial overhead, in a private evaluator cache
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as tmp:
        tmp = Path(tmp)
        cache = tmp / "fidelity"
        weights_path, weights_note = _classifier_weights(tmp)
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

    # 4. torch.compile (CUDA only)
    if plan.compile and dev.type == "cuda":
        report["compile"] = measure_compile(plan, dev, images, log)
    else:
        report["compile"] = {"skipped": "torch.compile / CUDA graphs are measured on CUDA in full mode only"}

    torch.set_num_threads(threads_before)
    report["bench_seconds"] = time.perf_counter() - t_start
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = device_slug(dev) + ("-quick" if quick else "")
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / f"{stem}.md").write_text(to_markdown(report))
    log(f"bench written to {out / stem}.md and .json in {report['bench_seconds']:.0f} s")
    return 0


# ----------------------------------------------------------------------------- markdown


def _f(x, digits=2):
    if x is None:
        return "-"
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return f"{x:.{digits}f}"


def to_markdown(r: dict) -> str:
    hw, plan = r["hardware"], r["plan"]
    lines = [f"# Benchmark: {hw['device_name']}{' (CPU, reduced configuration)' if hw['device'] == 'cpu' else ''}", ""]
    lines += [f"- device: {hw['device']} — {hw['device_name']}; CPU: {hw['cpu_model']}, {hw['cpu_count']} cores",
              f"- torch {hw['torch']}, CUDA {hw['cuda']}, cuDNN {hw['cudnn']}, Python {hw['python']}",
              f"- date: {hw['date']}; command: `{hw['command']}`; took {r['bench_seconds']:.0f} s",
              f"- mode: {'quick' if plan['quick'] else 'full'}; batch {plan['batch']}; base filters / "
              f"{plan['filter_div']}; concurrent processes {plan['procs']}; peak table: {hw['peak_key'] or 'unknown device'}",
              ""]
    lines += [f"> {n}" for n in r["notes"]] + ([""] if r["notes"] else [])
    procs = plan["procs"]
    head = ["config", "objective", "impl", "precision", "alone it/s"] + [f"{n} procs it/s" for n in procs] + \
           ["GFLOP/it", "alone TFLOP/s", "peak share alone"] + [f"peak share {n}" for n in procs]
    lines += ["Generator iterations per second (n_critic D steps + 1 G step each):", "",
              "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in r["configs"].values():
        for impl in ("harness", "reference"):
            x = row[impl]
            cells = [f"{row['config']} (f{row['filters']} d{row['depth']})", row["objective"], impl, x["precision"],
                     _f(x["alone_its_per_s"])]
            cells += [_f(x[f"aggregate_{n}"]["its_per_s"]) for n in procs]
            cells += [_f(x["flops_per_iter"] / 1e9), _f(x["alone_tflops"], 3), _pct(x["alone_peak_share"])]
            cells += [_pct(x[f"aggregate_{n}"]["peak_share"]) for n in procs]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += ["", "Ratios harness / reference (same run):", "",
              "| config | objective | alone | " + " | ".join(f"{n} procs" for n in procs) + " |",
              "|---|---|---|" + "---|" * len(procs)]
    for row in r["configs"].values():
        lines.append(f"| {row['config']} | {row['objective']} | {_f(row['ratio_alone'])} | "
                     + " | ".join(_f(row[f'ratio_aggregate_{n}']) for n in procs) + " |")
    ev, ov = r.get("eval_cost", {}), r.get("trial_overhead", {})
    lines += ["", "Evaluation and overhead:", ""]
    if "error" in ev:
        lines.append(f"- evaluation cost: not measured ({ev['error']})")
    else:
        lines.append(f"- evaluation (IS/FID/KID, fmnist-classifier, {ev['n_samples']} generated samples, real "
                     f"features cached): {_f(ev['seconds'])} s; one-off real-feature extraction "
                     f"{_f(ev['real_features_once_s'])} s; weights: {ev['classifier_weights']}")
    if "error" in ov:
        lines.append(f"- trial overhead: not measured ({ov['error']})")
    else:
        lines.append(f"- a {ov['iterations']}-iteration run_trial ({ov['config']}/gan, {ov['evaluations']} evaluations "
                     f"of {ov['eval_n']} samples): wall {_f(ov['wall_time_s'])} s, training {_f(ov['train_time_s'])} s, "
                     f"evaluation {_f(ov['eval_time_s'])} s, setup and the rest {_f(ov['setup_and_rest_s'])} s: "
                     f"{_pct(ov['outside_training_share'])} of the wall time outside training")
    sw = r.get("sweep_overhead", {})
    lines.append(f"- sweep path (Ray, MLflow): {sw.get('note', json.dumps(sw))}")
    comp = r.get("compile", {})
    if "skipped" in comp:
        lines.append(f"- torch.compile: skipped ({comp['skipped']})")
    else:
        lines += ["", "| torch.compile | speedup | compile s | break-even iterations |", "|---|---|---|---|"]
        for k, v in comp.items():
            lines.append(f"| {k} | " + (f"failed: {v['error']} | | |" if "error" in v else
                                        f"{_f(v['speedup'])} | {_f(v['compile_s'], 0)} | {_f(v['break_even_iters'], 0)} |"))
    return "\n".join(lines) + "\n"


def _pct(x):
    return "-" if x is None else f"{100 * x:.1f} %"
