"""Value checks of an experiment's sections, by field: space, evaluation, training,
conditional, primary. `config.validate` runs them in order; they read the experiment by its
attributes only, so this module imports nothing of config (config stays a schema and a loader).
"""
from __future__ import annotations

import math

from . import space as space_mod
from .bounds import MAX_THRESHOLDS, _short
from .errors import ConfigError

def _positive(value, where, allow_zero=False):
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(where, f"must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def _validate_space(s: SpaceConfig) -> None:
    if s.mode not in ("sample", "grid", "presets", "ids"):
        raise ConfigError("space.mode", f"{s.mode!r} is not one of ['sample', 'grid', 'presets', 'ids']")
    for factor, values in s.restrict.items():
        where = f"space.restrict.{factor}"
        if factor not in space_mod.FACTORS:
            raise ConfigError(where, f"unknown factor; valid: {sorted(space_mod.FACTORS)}")
        if not isinstance(values, list) or not values:
            raise ConfigError(where, "expected a non-empty list of values")
        allowed = space_mod.FACTORS[factor]
        for v in values:
            if v not in allowed or type(v) is not type(allowed[0]):
                raise ConfigError(where, f"{_short(v)} is not one of {list(allowed)}")
    if s.mode == "sample":
        _positive(s.n, "space.n")
        size = len(space_mod.enumerate_space(s.restrict or None))
        if s.n > size:
            raise ConfigError("space.n", f"asks for {s.n} distinct architectures; the space has {size}")
    for i, p in enumerate(s.presets):
        if p not in space_mod.PRESETS:
            raise ConfigError(f"space.presets[{i}]", f"unknown preset {p!r}; valid: {sorted(space_mod.PRESETS)}")
    if s.mode == "presets" and not s.presets:
        raise ConfigError("space.presets", "mode presets needs at least one preset")
    if s.mode == "ids":
        if not s.ids:
            raise ConfigError("space.ids", "mode ids needs at least one architecture id")
        for i, arch_id in enumerate(s.ids):
            try:
                space_mod.resolve_arch(str(arch_id))
            except KeyError as err:
                raise ConfigError(f"space.ids[{i}]", str(err.args[0])) from None


def _validate_evaluation(e: Experiment) -> None:
    from .evaluate import EVALUATORS
    from .published import PUBLISHED
    _positive(e.budget.iterations, "budget.iterations")
    _positive(e.budget.batch_size, "budget.batch_size")
    _positive(e.eval.n_samples, "eval.n_samples")
    _positive(e.eval.every, "eval.every", allow_zero=True)
    if e.data.limit is not None:
        _positive(e.data.limit, "data.limit")
    if e.eval.evaluator != "auto" and e.eval.evaluator not in EVALUATORS:
        raise ConfigError("eval.evaluator", f"unknown evaluator {e.eval.evaluator!r}; valid: auto, {sorted(EVALUATORS)}")
    if e.eval.real_split not in ("train", "test"):
        raise ConfigError("eval.real_split", f"{e.eval.real_split!r} is not one of ['train', 'test']")
    if not e.thresholds:
        raise ConfigError("thresholds", "name at least one threshold")
    if len(e.thresholds) > MAX_THRESHOLDS:
        raise ConfigError("thresholds", f"{len(e.thresholds)} thresholds; at most {MAX_THRESHOLDS} "
                                        "(config.MAX_THRESHOLDS)")
    for i, t in enumerate(e.thresholds):
        if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t):
            raise ConfigError(f"thresholds[{i}]", f"expected a finite number, got {_short(t)}")
    e.thresholds = sorted(float(t) for t in e.thresholds)
    repeated = sorted({a for a, b in zip(e.thresholds, e.thresholds[1:]) if a == b})
    if repeated:   # each threshold is one success count per method: a repeat breaks the tables
        raise ConfigError("thresholds", f"{', '.join(f'{t:g}' for t in repeated)} named more than once; "
                                        "name each threshold once")
    if e.thresholds_relative and e.thresholds[0] <= 0:
        raise ConfigError("thresholds", f"relative thresholds are fractions of the real score: > 0, got {e.thresholds[0]}")
    from .record import SUCCESS_RULES
    if e.success_rule not in SUCCESS_RULES:
        raise ConfigError("success_rule", f"{e.success_rule!r} is not one of {sorted(SUCCESS_RULES)}")
    if e.success_metric is not None and not e.success_metric:
        raise ConfigError("success_metric", "must name a metric or be left out")
    from .evaluate.metrics import success_metric_problem   # declared direction and range (evaluate/metrics.py)
    problem = success_metric_problem(e.success_metric, e.thresholds_relative)
    if problem:
        raise ConfigError(*problem)
    if e.reproduces is not None and e.reproduces not in PUBLISHED:
        raise ConfigError("reproduces", f"unknown published study {e.reproduces!r}; valid: {sorted(PUBLISHED)}")


def _validate_training(e: Experiment) -> None:
    from .nets.init import INITS
    if e.train.init not in INITS:
        raise ConfigError("train.init", f"{e.train.init!r} is not one of {sorted(INITS)}")
    if e.train.precision not in ("auto", "fp32", "bf16"):
        raise ConfigError("train.precision", f"{e.train.precision!r} is not one of ['auto', 'fp32', 'bf16']")
    if e.train.penalty_precision not in ("fp32", "autocast"):
        raise ConfigError("train.penalty_precision", f"{e.train.penalty_precision!r} is not one of ['fp32', 'autocast']")
    if not (e.train.device in ("auto", "cpu", "cuda") or e.train.device.startswith("cuda:")):
        raise ConfigError("train.device", f"{e.train.device!r} is not one of auto, cpu, cuda, cuda:N")
    if e.train.z_dim is not None:
        _positive(e.train.z_dim, "train.z_dim")
    _positive(e.train.check_every, "train.check_every", allow_zero=True)
    _positive(e.train.checkpoint_every, "train.checkpoint_every", allow_zero=True)
    _positive(e.train.checkpoint_every_s, "train.checkpoint_every_s", allow_zero=True)
    _positive(e.resources.trials_per_gpu, "resources.trials_per_gpu")
    _positive(e.resources.cpus_per_trial, "resources.cpus_per_trial")
    _positive(e.resources.max_failures, "resources.max_failures", allow_zero=True)


def _validate_conditional(e: Experiment) -> None:
    """Labels, an evaluator with label metrics, and only the remedies that act on x alone."""
    from .data import get_dataset_spec
    from .evaluate import LABEL_METRICS, resolve_evaluator
    from .remedies import parse_method
    if not e.conditional:
        return
    if get_dataset_spec(e.dataset).num_classes < 2:
        raise ConfigError("conditional", f"dataset {e.dataset!r} has no labels to condition on")
    evaluator = resolve_evaluator(e.eval.evaluator, e.dataset)
    if evaluator not in LABEL_METRICS:
        raise ConfigError("conditional", f"evaluator {evaluator!r} has no conditional metrics (its classes are not "
                                         f"the dataset's); conditional runs need one of {sorted(LABEL_METRICS)}")
    if e.thresholds_relative and e.success_metric in LABEL_METRICS[evaluator].names:
        raise ConfigError("thresholds_relative", f"the real data asks for no label, so it has no {e.success_metric} "
                                                 "to be a fraction of; use absolute thresholds")
    for i, name in enumerate(e.objectives):
        for remedy in parse_method(name)[1]:
            if not remedy.conditional_ok:
                raise ConfigError(f"objectives[{i}]", f"{name!r}: remedy {remedy.name!r} does not support "
                                                      f"conditional: true ({remedy.conditional_problem})")


def _validate_primary(e: Experiment) -> None:
    """Named pairs of distinct objectives of the experiment (one pair may be written flat), and
    a threshold the report's tables hold (one of `thresholds`, sorted by now)."""
    pairs = e.primary.pairs
    if len(pairs) == 2 and all(isinstance(x, str) for x in pairs):
        pairs = e.primary.pairs = [list(pairs)]
    for i, pair in enumerate(pairs):
        where = f"primary.pairs[{i}]"
        if not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(x, str) for x in pair):
            raise ConfigError(where, f"expected two objective names [a, b], got {pair!r}")
        for name in pair:
            if name not in e.objectives:
                raise ConfigError(where, f"{name!r} is not one of the experiment's objectives {e.objectives!r}")
        if pair[0] == pair[1]:
            raise ConfigError(where, f"compares {pair[0]!r} with itself")
    if len({tuple(sorted(p)) for p in pairs}) != len(pairs):
        raise ConfigError("primary.pairs", "a pair is named twice")
    if e.primary.threshold is not None:
        if not pairs and len(e.objectives) < 2:
            raise ConfigError("primary.threshold", "one objective: there is no pair to compare")
        if float(e.primary.threshold) not in e.thresholds:
            raise ConfigError("primary.threshold", f"{e.primary.threshold!r} is not one of the thresholds "
                                                   f"{e.thresholds!r} (the report's tables hold only those)")
        e.primary.threshold = float(e.primary.threshold)
