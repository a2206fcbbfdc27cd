"""A trial, and the views of an experiment that every consumer resolves the same way.

A trial is one (architecture, objective, seed) of an experiment. What it trains with is
derived here once: the objective with the experiment's overrides, z's size, the data's
shape, the evaluator (the one `auto` rule lives in `evaluate.registry`), the headline
metric, the resident dataset's size, and where it computes (`placement`: device, autocast
dtype, memory layout). The trainer, the sweep's scheduling and GPU packing, the benchmark
and the CLI all ask these functions instead of re-deriving them, and `Trial.params()` /
`Trial.placement_params()` record the resolved values as `applied.*` params, so a row of
trials.csv says what actually ran (bf16 on a GPU, not `precision: auto`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from . import plugins
from .config import Experiment
from .data import get_dataset_spec
from .device import resolve_device, resolve_precision, use_channels_last
from .errors import ConfigError
from .evaluate.registry import resolve_evaluator
from .objectives import Objective, family_of, get_objective
from .space import Arch

# z for images: 128-d, as the WGAN-GP reference code (gan_cifar / gan_64x64); for the 2D
# mixtures: 2-d, as PacGAN's and VEEGAN's toy experiments.
IMAGE_Z_DIM = 128
TOY_Z_DIM = 2


def objective_for(exp: Experiment, name: str) -> Objective:
    """The named objective or method (`gan+pack:4`, `gan@n_critic=5`) with the experiment's
    overrides of its objective applied (they hold for every method built on it; settings in the
    method's name win)."""
    return get_objective(name, **exp.objective_overrides.get(family_of(name), {}))


def z_dim(exp: Experiment) -> int:
    if exp.train.z_dim:
        return exp.train.z_dim
    return TOY_Z_DIM if get_dataset_spec(exp.dataset).kind == "toy2d" else IMAGE_Z_DIM


def data_shape(exp: Experiment) -> tuple[int, ...]:
    return get_dataset_spec(exp.dataset).shape


def dataset_bytes(exp: Experiment) -> int:
    """Bytes of the uint8 training set a trial keeps resident on its device (0 for the mixtures)."""
    spec = get_dataset_spec(exp.dataset)
    if spec.kind == "toy2d":
        return 0
    n = spec.n_train if exp.data.limit is None else min(exp.data.limit, spec.n_train)
    per_example = 1
    for d in spec.shape:
        per_example *= d
    return n * per_example


def evaluator_name(exp: Experiment) -> str:
    return resolve_evaluator(exp.eval.evaluator, exp.dataset)


# (evaluator, dataset, n_samples, real split, weights, data root/path, conditional) -> the
# evaluator's headline and metric names, or None where it cannot be built here (the trial then
# fails at its evaluation, with that error): params() asks per trial, the evaluator is built once.
_EVALUATOR_FACTS: dict[tuple, tuple[str, tuple[str, ...]] | None] = {}


def evaluator_facts(exp: Experiment) -> tuple[str, tuple[str, ...]] | None:
    """(headline metric, metric names) of the experiment's evaluator, built once on the CPU."""
    e = exp.eval
    key = (evaluator_name(exp), exp.dataset, e.n_samples, e.real_split, e.weights_path, exp.data.root,
           exp.data.path, exp.conditional)
    if key not in _EVALUATOR_FACTS:
        try:
            evaluator = make_evaluator(exp)
            _EVALUATOR_FACTS[key] = (evaluator.headline, tuple(evaluator.metric_names))
        except Exception:  # noqa: BLE001 - recorded where the trial evaluates; params stay buildable
            _EVALUATOR_FACTS[key] = None
    return _EVALUATOR_FACTS[key]


def headline(exp: Experiment, evaluator=None) -> str | None:
    """The metric the success thresholds apply to: success_metric, else the evaluator's
    headline (of `evaluator` when given, else of the experiment's, built once)."""
    if exp.success_metric:
        return exp.success_metric
    if evaluator is not None:
        return evaluator.headline
    facts = evaluator_facts(exp)
    return facts[0] if facts else None


@dataclass(frozen=True)
class Placement:
    """Where and how a trial computes, resolved from train.* and this machine (device.py's
    rules): the device, the autocast dtype (None: fp32) and the memory layout."""
    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool

    @property
    def precision(self) -> str:
        return "fp32" if self.amp_dtype is None else str(self.amp_dtype).removeprefix("torch.").replace(
            "bfloat16", "bf16").replace("float16", "fp16")


def placement(exp: Experiment) -> Placement:
    """The one place `train.device: auto` and `train.precision: auto` are resolved: the
    trainer computes with it, and `Trial.placement_params` records it."""
    device = resolve_device(exp.train.device)
    image = get_dataset_spec(exp.dataset).kind == "image"
    amp = resolve_precision(exp.train.precision, device, image)
    return Placement(device, amp, use_channels_last(device, image, amp))


def make_evaluator(exp: Experiment, device: str = "cpu"):
    """The experiment's evaluator on `device`; a combination that cannot work names its field."""
    from .evaluate import make_evaluator as build   # late: the evaluators pull in torch-fidelity
    e = exp.eval
    try:
        evaluator = build(evaluator_name(exp), exp.dataset, e.n_samples, real_split=e.real_split,
                          device=str(device), weights_path=e.weights_path, data_root=exp.data.root,
                          data_path=exp.data.path, conditional=exp.conditional)
    except ValueError as err:   # e.g. toy2d on images, too few samples for the metrics
        raise ConfigError("eval.n_samples" if "n_samples" in str(err) else "eval.evaluator", str(err)) from None
    if exp.success_metric is not None and exp.success_metric not in evaluator.metric_names:
        raise ConfigError("success_metric", f"{exp.success_metric!r} is not a metric of evaluator "
                                            f"{evaluator.name!r}; its metrics: {list(evaluator.metric_names)}")
    return evaluator


def real_data_score(exp: Experiment) -> float:
    """The real data's own score on the success metric: the experiment's evaluator, its sample
    count, its real split (a seeded subset; for the mixtures, exact samples). What relative
    thresholds are fractions of (the shipped classifier's IS of real Fashion-MNIST is about 8)."""
    import torch
    from .data import load_images, real_subset, sample_mixture, to_unit_range
    evaluator = make_evaluator(exp)
    if exp.conditional:   # real data asks for no label: the wrapped evaluator (config.py refuses label metrics)
        evaluator = evaluator.base
    if get_dataset_spec(exp.dataset).kind == "toy2d":
        g = torch.Generator().manual_seed(0)
        sample = lambda n: sample_mixture(exp.dataset, n, g)   # noqa: E731
    else:
        x, _ = load_images(exp.dataset, exp.eval.real_split, root=exp.data.root, path=exp.data.path)
        x = real_subset(x, exp.eval.n_samples)      # the evaluator's own real side
        offset = [0]

        def sample(n):
            batch = x[offset[0]: offset[0] + n]
            offset[0] += n
            if len(batch) < n:
                raise ValueError(f"eval.n_samples: the {exp.eval.real_split} split has only {len(x)} images")
            return to_unit_range(batch)
    metrics = evaluator.evaluate(sample)
    return float(metrics[exp.success_metric or evaluator.headline])


@dataclass(frozen=True)
class Trial:
    experiment: Experiment
    arch: Arch
    objective: str
    seed: int

    @property
    def id(self) -> str:
        return f"{self.arch.id}-{self.objective}-s{self.seed}"

    def make_objective(self) -> Objective:
        return objective_for(self.experiment, self.objective)

    def params(self) -> dict:
        """Flat key -> value: every setting that produced the trial (MLflow params, CSV)."""
        e = self.experiment
        flat = {"trial_id": self.id, "arch_id": self.arch.id, "objective": self.objective,
                "seed": self.seed, "dataset": e.dataset, "experiment": e.name,
                "evaluator": evaluator_name(e), "conditional": e.conditional}
        flat.update({f"arch.{k}": v for k, v in self.arch.to_dict().items()})
        for section in ("budget", "eval", "train", "data"):
            flat.update({f"{section}.{k}": v for k, v in dataclasses.asdict(getattr(e, section)).items()})
        objective = self.make_objective()
        flat.update({f"objective.{k}": v for k, v in dataclasses.asdict(objective.settings).items()})
        flat.update(plugins.params(e.plugins))
        flat.update(self.applied(objective))
        return flat

    def applied(self, objective: Objective | None = None) -> dict:
        """`applied.*`: what the trial trains and is judged with, resolved (the machine-free
        part; `placement_params` adds the device and precision where the trial runs)."""
        e = self.experiment
        objective = objective or self.make_objective()
        normed = objective.d_is_normalized(self.arch.norm_d)   # what D actually gets
        penalties = objective.all_penalties
        out = {"applied.evaluator": evaluator_name(e), "applied.z_dim": z_dim(e),
               "applied.d_norm": objective.settings.d_norm if normed else "none",
               "applied.d_weight_decay": objective.settings.d_weight_decay if normed else 0.0,
               "applied.spectral_norm": objective.settings.spectral_norm,
               "applied.penalties": ", ".join(p.label for p in penalties) or "none",
               **{f"applied.penalty.{p.name}.weight": p.weight for p in penalties}}
        metric = headline(e)
        if metric is not None:
            out["applied.headline"] = metric
        return out

    def placement_params(self, where: Placement | None = None) -> dict:
        """`applied.device`, `applied.precision` (what `auto` became), `applied.channels_last`
        and the penalties' precision, for the placement the trial runs with (default: here)."""
        where = where or placement(self.experiment)
        penalty_autocast = getattr(self.experiment.train, "penalty_precision", "fp32") == "autocast"
        return {"applied.device": str(where.device), "applied.precision": where.precision,
                "applied.channels_last": where.channels_last,
                "applied.penalty_precision": where.precision if penalty_autocast else "fp32"}


def trials_of(exp: Experiment) -> list[Trial]:
    """Every (architecture, objective, seed), architecture-major: pairs stay adjacent."""
    return [Trial(exp, arch, obj, seed) for arch in exp.archs() for seed in exp.seeds for obj in exp.objectives]
