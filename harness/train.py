"""One trial: set-up, loop, finish. Knows nothing of Ray or MLflow.

The sweep and the CLI observe a trial through the `on_metrics` callback, so
`python -m harness train` runs the very same code alone; the benchmark times the same
`Session.iteration` and `LossMeter` that the loop below runs.

Outcome rules (the vocabulary is in record.py):
- diverged: a loss or a weight is NaN/inf. Training stops at once (losses are read back
  every `check_every` steps, weights at each evaluation); metrics so far are kept.
- collapsed: the final evaluation's coverage rule says so (`Evaluator.collapsed`).
- failed: an exception; its message is kept.
- ok: otherwise. Success at a threshold is decided later, from the metrics.
"""
from __future__ import annotations

import math
import time
import traceback
from typing import Callable

import torch
from torch import nn

from . import checkpoint
from .data import get_dataset_spec, load_images, to_uint8
from .device import resolve_check_every
from .evaluate.base import balanced_labels
from .evaluate.critic import probability_critic
from .loss_meter import LossMeter
from .progress import Progress
from .real_data import RealData
from .record import COLLAPSED, DIVERGED, FAILED, OK, TrialRecord
from .remedies.base import samples_per_input
from .step import build_step, label_seed
from .trial import Placement, Trial, data_shape, headline, make_evaluator, placement, z_dim

EVAL_CHUNK = 500            # samples per generator call at evaluation: bounds memory
LOG_POINTS = 100            # metric points per curve (about)
STREAMS = ("data", "z", "eval")


def stream_seeds(seed: int) -> dict[str, int]:
    """Independent seeds for real batches, training z and evaluation z, derived from the
    trial's seed (numpy's SeedSequence: specified, the same on every platform). Changing how
    one stream is consumed (say, evaluating more often) then leaves the others as they were.
    The global torch seed (= the trial's seed) drives weight init and the penalty's epsilons."""
    import numpy as np
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: int(child.generate_state(1, dtype=np.uint64)[0] >> 1) for name, child in zip(STREAMS, children)}


def all_finite(modules) -> bool:
    """Every weight finite (one host sync)."""
    params = [p for m in modules for p in m.parameters()]
    return bool(torch.stack([p.detach().float().abs().max() for p in params]).isfinite().all())


def grad_norm(module: nn.Module) -> torch.Tensor:
    return nn.utils.clip_grad_norm_(module.parameters(), float("inf"))


class Session:
    """Everything one trial trains with, and the loop's body: `iteration()`."""

    def __init__(self, trial: Trial, images: torch.Tensor | None = None, labels: torch.Tensor | None = None):
        e = trial.experiment
        self.trial = trial
        self.placement = placement(e)    # device, autocast dtype, layout: decided in trial.py, recorded as applied.*
        self.device = self.placement.device
        spec = get_dataset_spec(e.dataset)
        self.is_image = spec.kind == "image"
        self.amp_dtype = self.placement.amp_dtype
        if e.train.threads:
            torch.set_num_threads(e.train.threads)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        torch.manual_seed(trial.seed)
        self.seeds = stream_seeds(trial.seed)
        data_gen = torch.Generator(device=self.device).manual_seed(self.seeds["data"])
        self.gen = torch.Generator(device=self.device).manual_seed(self.seeds["z"])
        channels_last = self.placement.channels_last
        if images is None and self.is_image:
            images, labels = load_images(e.dataset, "train", root=e.data.root, path=e.data.path, limit=e.data.limit)
        self.n_classes = spec.num_classes if e.conditional else 0     # 0: G(z) and D(x), no labels
        self.data = RealData(spec, images, self.device, data_gen, channels_last, labels, labelled=e.conditional)
        self.z_dim, self.batch = z_dim(e), e.budget.batch_size
        self.objective = trial.make_objective()
        self.n_critic = self.objective.settings.n_critic
        # samples drawn per step: batch_size D inputs, each of samples_per_input samples (packing)
        self.draw = self.batch * samples_per_input(self.objective.remedies)
        label_gen = (torch.Generator(device=self.device).manual_seed(label_seed(trial.seed))  # G's labels
                     if self.n_classes else None)
        self.step = build_step(trial.arch, self.objective, data_shape(e), self.z_dim, self.device, self.amp_dtype,
                               channels_last, init=e.train.init, n_classes=self.n_classes, label_generator=label_gen)
        if e.train.penalty_precision == "autocast":
            self.step.penalty_dtype = self.amp_dtype
        self.iterations, self.done = e.budget.iterations, 0
        self.schedulers = self._schedulers(e.budget.iterations)
        self.losses = LossMeter(self.device, resolve_check_every(e.train.check_every, self.device))

    def _schedulers(self, iterations: int) -> list:
        decay = self.objective.settings.lr_decay   # Settings checked the name: none | linear
        if decay == "none":
            return []
        return [torch.optim.lr_scheduler.LambdaLR(opt, lambda i: max(0.0, 1 - i / iterations))
                for opt in (self.step.opt_g, self.step.opt_d)]

    def generators(self) -> dict[str, torch.Generator]:
        """Every random stream the loop draws from but the global one, by name."""
        labels = getattr(self.step, "label_generator", None)    # conditional: G's labels
        return {**self.data.generators(), "z": self.gen, **({"labels": labels} if labels is not None else {})}

    def state_dict(self) -> dict:
        """All the loop needs to go on as if never stopped: nets, optimizers, schedulers, every
        random stream and the loss sums not yet read (checkpoint.py adds the trial's record)."""
        rng = {"torch": torch.get_rng_state(), **{k: g.get_state() for k, g in self.generators().items()},
               **({"cuda": torch.cuda.get_rng_state(self.device)} if self.device.type == "cuda" else {})}
        nets = {k: getattr(self.step, k).state_dict() for k in ("G", "D", "opt_g", "opt_d")}
        return {"iteration": self.done, **nets, "schedulers": [s.state_dict() for s in self.schedulers],
                "rng": rng, **self.losses.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        for k in ("G", "D", "opt_g", "opt_d"):
            getattr(self.step, k).load_state_dict(state[k])
        for sched, s in zip(self.schedulers, state["schedulers"], strict=True):
            sched.load_state_dict(s)
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        for name, gen in self.generators().items():
            gen.set_state(state["rng"][name])
        self.losses.load_state_dict(state)
        self.done = int(state["iteration"])

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=self.device, generator=self.gen if generator is None else generator)

    def iteration(self, log_grads: bool = False) -> dict:
        """One generator iteration: n_critic D steps, one G step, the schedulers, the loss sums.
        With log_grads, returns both gradient norms and the objective's diagnostics of the last
        D step (host syncs when read, at log points only)."""
        grads = {}
        self.step.progress = self.done / self.iterations
        for _ in range(self.n_critic):
            loss_d = self.step.discriminator(self.data.batch(self.draw), self.noise(self.draw))
        if log_grads:
            grads["grad_norm_d"] = grad_norm(self.step.D)
            grads.update(self.objective.diagnostics(*(o.float() for o in self.step.last_d_outputs)))
        before = (lambda: grads.__setitem__("grad_norm_g", grad_norm(self.step.G))) if log_grads else None
        real = self.data.batch(self.draw) if self.step.needs_real_in_g_step else None
        loss_g = self.step.generator(self.noise(self.draw), before_update=before, real=real)
        self.done += 1
        for sched in self.schedulers:
            sched.step()
        self.losses.add(loss_d, loss_g)
        return grads

    def sample(self, n: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> torch.Tensor:
        """n generated samples in fp32, drawn in chunks without a graph; a conditional G gets
        `labels` (default: balanced, evaluate.base)."""
        if self.n_classes and labels is None:
            labels = balanced_labels(n, self.n_classes)
        chunks = []
        for k in range(0, n, EVAL_CHUNK):
            z = self.noise(min(EVAL_CHUNK, n - k), generator)
            with torch.no_grad(), self.step.autocast():
                x = self.step.G(z) if labels is None else self.step.G(z, labels[k: k + EVAL_CHUNK].to(self.device))
            chunks.append(x.float())
        return torch.cat(chunks)

    def sampler(self, generator: torch.Generator):
        """What the evaluator draws from: n -> samples, or, conditional, labels -> samples."""
        if self.n_classes:
            return lambda labels: self.sample(len(labels), generator, labels)
        return lambda n: self.sample(n, generator)


class Evaluation:
    """The trial's evaluator on fixed noise: the same z at every evaluation, timed. Evaluators
    that ask for it (`wants_critic`) also get D's probability (`probability_critic`)."""

    def __init__(self, session: Session):
        self.session = session
        self.evaluator = make_evaluator(session.trial.experiment, session.device)
        self.seed = session.seeds["eval"]
        self.noise = torch.Generator(device=session.device).manual_seed(self.seed)
        self.seconds = 0.0

    def __call__(self) -> tuple[dict, float]:
        t0 = time.perf_counter()
        self.noise.manual_seed(self.seed)
        sample = self.session.sampler(self.noise)
        # built at each call from the session's current step, which a restored checkpoint may
        # replace (a conditional evaluator never wants one: its D judges (x, y) pairs)
        critic = probability_critic(self.session.step) if self.evaluator.wants_critic else None
        metrics = (self.evaluator.evaluate(sample) if critic is None
                   else self.evaluator.evaluate(sample, critic=critic))
        dt = time.perf_counter() - t0
        self.seconds += dt
        return metrics, dt


def start_record(trial: Trial, where: Placement | None = None) -> TrialRecord:
    """The record with every param: the trial's settings and what they resolved to here."""
    return TrialRecord(trial.id, trial.arch.id, trial.objective, trial.seed,
                       params={**trial.params(), **trial.placement_params(where)})


def run_trial(trial: Trial, on_metrics: Callable[[int, dict], None] | None = None,
              progress: bool = False, raise_errors: bool = False, n_grid: int = 64,
              resume: dict | None = None, on_checkpoint: Callable[[int, dict], None] | None = None) -> TrialRecord:
    """Train and evaluate one trial. With raise_errors, exceptions propagate (Ray retries).

    resume: a state from `checkpoint.capture` (this trial's): training continues after its
    iteration, and the metric points reported before it are reported again first.
    on_checkpoint(iteration, state) receives the state on the schedule of `train.checkpoint_every`."""
    start = time.perf_counter()
    record = start_record(trial)
    try:
        session = Session(trial)
        evaluation = Evaluation(session)
        record.headline = headline(trial.experiment, evaluation.evaluator)
        reporter = Reporter(on_metrics or (lambda step, metrics: None))
        if resume is not None:
            for step, metrics in checkpoint.restore(session, resume, record, evaluation):
                reporter(step, metrics)
        schedule = checkpoint.Schedule(trial.experiment.train.checkpoint_every,
                                       trial.experiment.train.checkpoint_every_s,
                                       trial.experiment.budget.iterations, on_checkpoint is not None)
        save = (lambda it: on_checkpoint(it, checkpoint.capture(session, record, reporter.points,
                                                                evaluation.seconds))) if on_checkpoint else None
        _loop(session, evaluation, record, reporter, Progress(trial.id, trial.experiment.budget.iterations, progress),
              schedule, save)
        _finish(session, evaluation, record, n_grid)
    except Exception as err:  # noqa: BLE001 - a failed trial is a result, not a crash
        if raise_errors:
            raise
        record.status = FAILED
        record.error = f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=5)}"
    record.wall_time_s = time.perf_counter() - start
    return record


class Reporter:
    """Passes metric points on, keeping them: a checkpoint replays them on resume."""

    def __init__(self, on_metrics: Callable[[int, dict], None]):
        self.on_metrics, self.points = on_metrics, []

    def __call__(self, step: int, metrics: dict) -> None:
        self.points.append((step, metrics))
        self.on_metrics(step, metrics)


def log_period(iterations: int, every: int) -> int:
    """Iterations between log points: about LOG_POINTS per curve, a multiple of the loss
    read-back period `every`."""
    return max(every, math.ceil(iterations / LOG_POINTS / every) * every)


def loop_iteration(s: Session, it: int, log_every: int, read: bool = False) -> tuple[dict | None, dict, bool]:
    """Iteration `it` as the loop runs it: the iteration, with the gradient norms at log points,
    then, where due (or `read`), the losses read back (a host sync) and the norms as floats.
    (losses or None, the log point's norms, whether it is a log point). The dry run times
    iterations through this too (study/sweep/dry_run.py): for a small MLP the log points and
    read-backs cost 3-8 % over bare iterations."""
    log_now = it % log_every == 0 or it == s.iterations
    grads = s.iteration(log_grads=log_now)
    if not (read or log_now or s.losses.due(it)):
        return None, {}, False
    losses = s.losses.read()
    return losses, ({k: float(v) for k, v in grads.items()} if log_now else {}), log_now


def _loop(s: Session, evaluation: Evaluation, record: TrialRecord, on_metrics, bar: Progress,
          schedule: checkpoint.Schedule, save) -> None:
    """The training loop: iterations, loss read-backs, log points, evaluations, divergence,
    checkpoints. Starts after `s.done` iterations (0, or a resumed state's)."""
    e = s.trial.experiment
    iterations = e.budget.iterations
    log_every = log_period(iterations, s.losses.every)
    eval_every = e.eval.every

    def evaluate_at(it: int) -> bool:
        """Every eval.every iterations and at the last; by arithmetic, not a set of steps,
        which would grow with budget.iterations (1e12 iterations took 8 GB in 24 s)."""
        return it == iterations or bool(eval_every) and it % eval_every == 0

    first, trained_before = s.done + 1, record.train_time_s
    train_start = time.perf_counter() - trained_before
    for it in range(first, iterations + 1):
        losses, grads, log_now = loop_iteration(s, it, log_every, read=evaluate_at(it))
        record.iterations = it
        if losses is not None:
            if not all(map(math.isfinite, losses.values())):
                record.status, record.error = DIVERGED, f"non-finite loss at iteration {it}: {losses}"
                break
            bar.update(it, losses)
            if log_now:
                elapsed = time.perf_counter() - train_start - evaluation.seconds
                on_metrics(it, {**losses, **grads, "its_per_s": it / max(elapsed, 1e-9)})
        if evaluate_at(it):
            if not all_finite([s.step.G, s.step.D]):
                record.status, record.error = DIVERGED, f"non-finite weight at iteration {it}"
                break
            metrics, seconds = evaluation()
            record.metrics = dict(metrics)
            record.history.append({"step": it, **metrics})
            on_metrics(it, {**metrics, "eval_s": seconds})
        if schedule.due(it):
            record.train_time_s = time.perf_counter() - train_start - evaluation.seconds
            save(it)
    record.eval_time_s = evaluation.seconds
    record.train_time_s = time.perf_counter() - train_start - evaluation.seconds
    record.its_per_s = record.iterations / record.train_time_s if record.train_time_s > 0 else 0.0
    bar.update(record.iterations, {}, force=True)


def _finish(s: Session, evaluation: Evaluation, record: TrialRecord, n_grid: int) -> None:
    """The outcome and a final set of samples (a grid of images, or 1,000 points in 2D)."""
    if record.status == OK and evaluation.evaluator.collapsed(record.metrics):
        record.status = COLLAPSED
    if record.status != DIVERGED or all_finite([s.step.G]):
        noise = torch.Generator(device=s.device).manual_seed(evaluation.seed)
        samples = s.sample(n_grid if s.is_image else 1000, noise)
        record.samples = to_uint8(samples).cpu() if s.is_image else samples.cpu()
