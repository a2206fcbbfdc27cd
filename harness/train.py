"""One trial: build G and D, train them with an objective, evaluate, classify the outcome.

Kept free of Ray and MLflow: the sweep and the tracker observe a trial through the
`on_metrics` callback, so `python -m harness train` runs the very same code alone.

Outcome rules:
- diverged: a loss or a weight is NaN/inf. Training stops at once (losses are read
  back every `check_every` steps, weights at each evaluation); metrics so far are kept.
- collapsed: the final evaluation's coverage rule says so (`Evaluator.collapsed`).
- failed: an exception; its message is kept.
- ok: otherwise. Success at a threshold is decided later, from the metrics.
"""
from __future__ import annotations

import contextlib
import math
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .config import Trial
from .data import get_dataset_spec, load_images, sample_mixture, to_uint8, to_unit_range

from .nets import build_discriminator, build_generator
from .objectives import get_objective

STATUSES = ("ok", "diverged", "collapsed", "failed")
EVAL_CHUNK = 500


@dataclass
class TrialResult:
    trial_id: str
    status: str
    metrics: dict = field(default_factory=dict)       # the last evaluation
    history: list = field(default_factory=list)       # [{"step": s, **metrics}] per evaluation
    error: str | None = None
    iterations: int = 0                               # generator iterations done
    wall_time_s: float = 0.0
    train_time_s: float = 0.0
    eval_time_s: float = 0.0
    samples: torch.Tensor | None = None               # uint8 image grid source, or 2D points
    headline: str | None = None                       # the metric thresholds apply to

    @property
    def its_per_s(self) -> float:
        return self.iterations / self.train_time_s if self.train_time_s > 0 else 0.0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return torch.bfloat16 if name == "bf16" else None


class RealData:
    """Real batches drawn by random index from a uint8 tensor resident on the device."""

    def __init__(self, spec, images, device, generator, channels_last=False):
        self.spec, self.device, self.generator = spec, device, generator
        self.channels_last = channels_last
        self.images = None if images is None else images.to(device)
        self.shape = (2,) if images is None else tuple(images.shape[1:])
        # the mixtures are sampled on the CPU (identical on every device) with a CPU generator
        self.cpu_generator = torch.Generator().manual_seed(generator.initial_seed()) if images is None else None

    @classmethod
    def for_trial(cls, trial: Trial, device, generator, channels_last) -> "RealData":
        e = trial.experiment
        spec = get_dataset_spec(e.dataset)
        images = None
        if spec.kind != "toy2d":
            images, _ = load_images(e.dataset, "train", root=e.data.root, path=e.data.path, limit=e.data.limit)
        return cls(spec, images, device, generator, channels_last)

    def batch(self, n: int) -> torch.Tensor:
        if self.images is None:
            return sample_mixture(self.spec.name, n, self.cpu_generator, device=self.device)
        idx = torch.randint(len(self.images), (n,), device=self.device, generator=self.generator)
        x = to_unit_range(self.images[idx], self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def _all_finite(modules) -> bool:
    params = [p for m in modules for p in m.parameters()]
    return bool(torch.stack([p.detach().float().abs().max() for p in params]).isfinite().all())


def _grad_norm(module: nn.Module) -> torch.Tensor:
    return nn.utils.clip_grad_norm_(module.parameters(), float("inf"))


class _Progress:
    """One console line every few seconds: iterations, speed, losses, time left."""

    def __init__(self, trial_id, total, enabled, every_s=5.0):
        self.trial_id, self.total, self.enabled, self.every_s = trial_id, total, enabled, every_s
        self.start = self.last = time.perf_counter()

    def update(self, it, losses, force=False):
        now = time.perf_counter()
        if not self.enabled or (not force and now - self.last < self.every_s):
            return
        self.last = now
        rate = it / max(now - self.start, 1e-9)
        eta = (self.total - it) / rate if rate > 0 else float("inf")
        loss_txt = " ".join(f"{k} {v:+.4f}" for k, v in losses.items())
        print(f"[{self.trial_id}] it {it}/{self.total} ({100 * it / self.total:.0f}%) "
              f"{rate:.1f} it/s {loss_txt} eta {eta:.0f}s", file=sys.stderr, flush=True)


class GANStep:
    """One D update and one G update: the whole of what training does per step.

    Shared by the training loop, the tests and the benchmark, so that all three measure
    the same thing. D's fake batch is made without a graph through G; G's update runs
    through a frozen D so that no gradients for D are computed and thrown away.
    """

    def __init__(self, G, D, objective, opt_g, opt_d, autocast=contextlib.nullcontext):
        self.G, self.D, self.objective = G, D, objective
        self.opt_g, self.opt_d, self.autocast = opt_g, opt_d, autocast

    def discriminator(self, real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        self.G.requires_grad_(False)
        self.D.requires_grad_(True)
        with self.autocast():
            with torch.no_grad():
                fake = self.G(z)
            d_real, d_fake = self.D(real), self.D(fake)
        loss = self.objective.d_loss(d_real.float(), d_fake.float())
        penalty = self.objective.penalty(self.D, real, fake)
        self.opt_d.zero_grad(set_to_none=True)
        (loss if penalty is None else loss + penalty).backward()
        self.opt_d.step()
        self.objective.after_d_step(self.D)
        return loss.detach()

    def generator(self, z: torch.Tensor, before_update=None) -> torch.Tensor:
        self.G.requires_grad_(True)
        self.D.requires_grad_(False)
        with self.autocast():
            d_fake = self.D(self.G(z))
        loss = self.objective.g_loss(d_fake.float())
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        if before_update is not None:
            before_update()
        self.opt_g.step()
        return loss.detach()


def build_step(arch, objective, data_shape, z_dim, device, amp_dtype=None, channels_last=False):
    """Nets, optimizers and the step for one (architecture, objective) on a device."""
    s = objective.settings
    G = build_generator(arch, data_shape, z_dim).to(device)
    D = build_discriminator(arch, data_shape, s.d_norm, spectral=s.spectral_norm).to(device)
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    opt_g, opt_d = objective.optimizers(G, D, d_has_norm=arch.norm_d)
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else contextlib.nullcontext
    return GANStep(G, D, objective, opt_g, opt_d, autocast)


def run_trial(trial: Trial, on_metrics: Callable[[int, dict], None] | None = None,
              progress: bool = False, raise_errors: bool = False, n_grid: int = 64) -> TrialResult:
    """Train and evaluate one trial. With raise_errors, exceptions propagate (Ray retries)."""
    start = time.perf_counter()
    result = TrialResult(trial.id, "ok")
    try:
        _train(trial, result, on_metrics or (lambda step, metrics: None), progress, n_grid)
    except Exception as err:  # noqa: BLE001 - a failed trial is a result, not a crash
        if raise_errors:
            raise
        result.status = "failed"
        result.error = f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=5)}"
    result.wall_time_s = time.perf_counter() - start
    return result


def _train(trial: Trial, result: TrialResult, on_metrics, progress: bool, n_grid: int) -> None:
    e = trial.experiment
    device = resolve_device(e.train.device)
    amp_dtype = resolve_precision(e.train.precision, device)
    if e.train.threads:
        torch.set_num_threads(e.train.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(trial.seed)
    gen = torch.Generator(device=device).manual_seed(trial.seed)

    spec = get_dataset_spec(e.dataset)
    channels_last = device.type == "cuda" and spec.kind == "image"
    data = RealData.for_trial(trial, device, gen, channels_last)
    z_dim = e.train.z_dim or (2 if spec.kind == "toy2d" else 128)
    objective = get_objective(trial.objective, **e.objective_overrides.get(trial.objective, {}))
    s = objective.settings
    step = build_step(trial.arch, objective, data.shape, z_dim, device, amp_dtype, channels_last)
    G, D, autocast = step.G, step.D, step.autocast
    from .evaluate import make_evaluator  # late: the evaluators pull in torch-fidelity
    evaluator = make_evaluator(e.evaluator_name(), e.dataset, e.eval.n_samples, real_split=e.eval.real_split,
                               device=str(device), weights_path=e.eval.weights_path,
                               data_root=e.data.root, data_path=e.data.path)
    result.headline = e.success_metric or evaluator.headline

    iterations, batch = e.budget.iterations, e.budget.batch_size
    check_every = e.train.check_every or (1 if device.type == "cpu" else 25)
    log_every = max(check_every, math.ceil(iterations / 100 / check_every) * check_every)
    eval_steps = set(range(e.eval.every, iterations, e.eval.every)) if e.eval.every else set()
    eval_steps.add(iterations)
    loss_sum = torch.zeros(2, device=device)   # running (loss_d, loss_g) since the last read
    steps_since_read = 0
    bar = _Progress(trial.id, iterations, progress)
    eval_noise = torch.Generator(device=device).manual_seed(10_000 + trial.seed)

    def sample_fn(n):
        chunks = []
        for k in range(0, n, EVAL_CHUNK):
            z = torch.randn(min(EVAL_CHUNK, n - k), z_dim, device=device, generator=eval_noise)
            with torch.no_grad(), autocast():
                chunks.append(G(z).float())
        return torch.cat(chunks)

    def evaluate(at):
        nonlocal eval_clock
        t0 = time.perf_counter()
        eval_noise.manual_seed(10_000 + trial.seed)   # the same z at every evaluation
        metrics = evaluator.evaluate(sample_fn)
        dt = time.perf_counter() - t0
        result.eval_time_s += dt
        eval_clock += dt
        result.metrics = dict(metrics)
        result.history.append({"step": at, **metrics})
        on_metrics(at, {**metrics, "eval_time_s": dt})

    schedulers = []
    if s.lr_decay == "linear":
        schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, lambda i: max(0.0, 1 - i / iterations))
                      for opt in (step.opt_g, step.opt_d)]
    elif s.lr_decay != "none":
        raise ValueError(f"lr_decay: {s.lr_decay!r} is not one of ['none', 'linear']")
    grad_g = []
    eval_clock = 0.0
    train_start = time.perf_counter()
    for it in range(1, iterations + 1):
        log_now = it % log_every == 0 or it == iterations
        for _ in range(s.n_critic):
            loss_d = step.discriminator(data.batch(batch), torch.randn(batch, z_dim, device=device, generator=gen))
        grad_d = _grad_norm(D) if log_now else None
        loss_g = step.generator(torch.randn(batch, z_dim, device=device, generator=gen),
                                before_update=(lambda: grad_g.append(_grad_norm(G))) if log_now else None)
        for sched in schedulers:
            sched.step()
        result.iterations = it

        loss_sum += torch.stack([loss_d.detach(), loss_g.detach()])
        steps_since_read += 1
        if it % check_every == 0 or log_now or it in eval_steps:
            means = (loss_sum / steps_since_read).tolist()   # the only host sync in the loop
            if not all(map(math.isfinite, means)):
                result.status = "diverged"
                result.error = f"non-finite loss at iteration {it}: loss_d {means[0]}, loss_g {means[1]}"
                break
            losses = {"loss_d": means[0], "loss_g": means[1]}
            bar.update(it, losses)
            if log_now:
                elapsed = time.perf_counter() - train_start - eval_clock
                on_metrics(it, {**losses, "grad_norm_d": float(grad_d), "grad_norm_g": float(grad_g.pop()),
                                "its_per_s": it / max(elapsed, 1e-9)})
            loss_sum.zero_()
            steps_since_read = 0
        if it in eval_steps:
            if not _all_finite([G, D]):
                result.status = "diverged"
                result.error = f"non-finite weight at iteration {it}"
                break
            evaluate(it)
    result.train_time_s = time.perf_counter() - train_start - eval_clock
    bar.update(result.iterations, {}, force=True)

    if result.status == "ok" and evaluator.collapsed(result.metrics):
        result.status = "collapsed"
    if result.status != "diverged" or _all_finite([G]):
        grid = sample_fn(n_grid if spec.kind == "image" else 1000)
        result.samples = to_uint8(grid).cpu() if spec.kind == "image" else grid.cpu()
