"""Experiment files: schema with defaults in code, YAML loading, field-named errors.

An experiment file overrides only what it changes; every key it names must exist in the
schema below (StudioGAN's config habit). `validate` checks every value that can be checked
without touching the data, the evaluator's weights or a Ray cluster; those three are
checked before a sweep writes anything, by `study.sweep.driver.check_inputs` and by the
cluster check in the driver. A trial's derived views (its objective with overrides, z_dim,
data shape, evaluator) live in trial.py, decided there once.
"""
from __future__ import annotations

import dataclasses
import math
import re
import reprlib
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import space as space_mod
from .errors import ConfigError

PAPER_THRESHOLDS = [1.0 + 0.5 * i for i in range(17)]  # WGAN-GP appendix: 1.0 ... 9.0

# ---- bounds on what an experiment may ask for -------------------------------------------
# Each is refused by name before anything runs: past them a sweep cannot finish, or the
# machine spends its time on bookkeeping instead of training (issue 23). Memory is bounded
# separately, by an estimate against the machine (harness/memory.py).
MAX_TRIALS = 50_000        # per sweep: the whole 9,216-architecture grid under 5 methods; each trial is an MLflow run
MAX_SEEDS = 1_000          # seeds listed; a seed noise floor needs a handful
SEED_LIMIT = 2**32         # seeds are < 2^32: numpy's legacy seeds; torch.manual_seed takes them all
MAX_THRESHOLDS = 100       # success thresholds: each is a success count per method and a pair table (17 in the paper)
MAX_D_STEPS = 10**7        # n_critic x budget.iterations per trial: 10x the largest published budget
                           # here (WGAN-GP's 200k iterations x 5); hours to days of one trial
MAX_EVALUATIONS = 1_000    # per trial (budget.iterations / eval.every): each is minutes to seconds and a metric point
MAX_FILE_BYTES = 2**20     # an experiment file (the shipped ones are a few kB)

# A name becomes folder names and MLflow names: results/NAME, Tune's run folder
# NAME-IofN-YYYYmmdd-HHMMSS (one path component: 255 bytes on ext4, xfs, btrfs, APFS, NTFS),
# the parent run 'NAME shard I/N' (MLflow's runs.name column: 250 characters) and the MLflow
# experiment NAME (500). Shard numbers have at most as many digits as MAX_TRIALS.
FILENAME_MAX_BYTES = 255
MLFLOW_RUN_NAME_MAX = 250
MLFLOW_EXPERIMENT_NAME_MAX = 500
_SHARD = "9" * len(str(MAX_TRIALS))
NAME_MAX = min(FILENAME_MAX_BYTES - len(f"-{_SHARD}of{_SHARD}-YYYYmmdd-HHMMSS"),
               MLFLOW_RUN_NAME_MAX - len(f" shard {_SHARD}/{_SHARD}"), MLFLOW_EXPERIMENT_NAME_MAX)

_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict, _REPR.maxlevel = 80, 80, 8, 8, 3


def _short(value) -> str:
    """A value as an error message quotes it: repr, cut to a line (a 1 MB value stays 1 MB in
    the file, not in every message that names it)."""
    return _REPR.repr(value)


@dataclass
class SpaceConfig:
    mode: str = "sample"          # sample (n seeded draws) | grid (every point) | presets | ids
    n: int = 8
    seed: int = 0
    restrict: dict = field(default_factory=dict)   # factor -> allowed values (sample, grid)
    presets: list = field(default_factory=list)    # mode presets: names from space.PRESETS
    ids: list = field(default_factory=list)        # mode ids: architecture ids or preset names


@dataclass
class DataConfig:
    root: str | None = None       # where downloads / decompressed files go
    path: str | None = None       # a user-supplied file or folder (imagenet32)
    limit: int | None = None      # train on the first N examples only


@dataclass
class BudgetConfig:
    iterations: int = 2000        # generator iterations
    batch_size: int = 64


@dataclass
class EvalConfig:
    evaluator: str = "auto"       # auto: evaluate.registry.default_evaluator_for(dataset)
    n_samples: int = 5000
    every: int = 0                # evaluate every N generator iterations as well; 0 = at the end only
    real_split: str = "train"
    weights_path: str | None = None   # local Inception weights for offline machines


@dataclass
class TrainConfig:
    z_dim: int | None = None      # None: trial.default_z_dim (128 for images, 2 for the 2D mixtures)
    device: str = "auto"          # auto | cpu | cuda | cuda:N
    precision: str = "auto"       # auto (bf16 on CUDA; on a CPU bf16 for images where it has bf16 units) | fp32 | bf16
    check_every: int = 0          # read losses back every N steps; 0: 1 on CPU, 25 on CUDA
    threads: int = 0              # torch CPU threads per trial; 0 = the sweep's cpus_per_trial (train: torch's)
    init: str = "dcgan"           # weight init: dcgan (N(0, 0.02), DCGAN sec. 4) | pytorch (its defaults)
    # A sweep's trials save their whole state (harness/checkpoint.py) into Ray Tune's storage so
    # that a retried or resumed trial continues where it was: every N iterations, or with 0,
    # every checkpoint_every_s seconds of wall time (10 min: at most that much of a trial's work
    # is lost on a crash, at the cost of a few MB written; harness bench measures it). 0 and 0: never.
    checkpoint_every: int = 0
    checkpoint_every_s: float = 600.0
    keep_checkpoints: bool = False   # keep a finished trial's last checkpoint (default: removed)


@dataclass
class ResourcesConfig:
    trials_per_gpu: int = 4       # fractional GPUs: each trial asks for 1 / trials_per_gpu
    cpus_per_trial: int = 1
    max_failures: int = 1         # retries of a trial that raises


@dataclass
class PrimaryConfig:
    """The comparison the study is run for, tested alone in the report (study/primary.py); the
    rest of the report is secondary and adjusted over its families. Left out: the headline
    score's paired difference for the first two objectives listed."""
    pairs: list = field(default_factory=list)   # [[a, b], ...] (or one [a, b]): objectives of `objectives`
    threshold: float | None = None              # one of `thresholds` (as written there); None: the score itself


@dataclass
class Experiment:
    name: str = "experiment"
    description: str = ""
    dataset: str = "fashion_mnist"
    data: DataConfig = field(default_factory=DataConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    objectives: list = field(default_factory=lambda: ["gan", "wgan-gp"])
    objective_overrides: dict = field(default_factory=dict)   # objective -> {setting: value}, for all its methods
    seeds: list = field(default_factory=lambda: [0])
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    thresholds: list = field(default_factory=lambda: list(PAPER_THRESHOLDS))
    thresholds_relative: bool = False   # thresholds as fractions of the real data's own score (trial.py)
    success_metric: str | None = None   # None: the evaluator's headline metric (IS for images)
    success_rule: str = "paper"         # paper: the score decides (WGAN-GP 5.1) | strict: collapse vetoes
    reproduces: str | None = None       # a published table to print beside ours (published.py)
    primary: PrimaryConfig = field(default_factory=PrimaryConfig)   # the report's one unadjusted test
    conditional: bool = False           # G(z, y), D(x, y) on the labels (harness.conditional)
    train: TrainConfig = field(default_factory=TrainConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)

    # ---- derived views -------------------------------------------------------------
    def archs(self) -> list[space_mod.Arch]:
        s = self.space
        if s.mode == "sample":
            return space_mod.sample_space(s.n, s.seed, s.restrict or None)
        if s.mode == "grid":
            return space_mod.enumerate_space(s.restrict or None)
        if s.mode == "presets":
            return [space_mod.get_preset(p) for p in s.presets]
        return [space_mod.resolve_arch(i) for i in s.ids]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---- loading -----------------------------------------------------------------------

def _check_type(value, hint, where):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return value
        hint = next(a for a in args if a is not type(None))
        origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    expected = origin or hint
    ok = {
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        bool: lambda v: isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        list: lambda v: isinstance(v, list),
        dict: lambda v: isinstance(v, dict),
    }[expected](value)
    if not ok:
        raise ConfigError(where, f"expected {expected.__name__}, got {_short(value)}")
    if expected is float and not math.isfinite(value):
        raise ConfigError(where, f"must be a finite number, got {_short(value)}")
    return float(value) if expected is float else value


# A name becomes folder names (results/NAME, Tune's runs) and MLflow lookups: a plain word.
NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]+")


def check_name(name, where: str = "name") -> str:
    """A study name: letters, digits, '.', '_', '-', not only dots, not starting with '-' (the
    printed `python -m harness report NAME` would read it as an option), at most NAME_MAX
    characters (every folder and MLflow name made from it fits)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or set(name) == {"."}:
        raise ConfigError(where, f"{_short(name)} is not a usable name: use letters, digits, '.', '_' and '-' "
                                 "(it becomes a folder name and an MLflow experiment name)")
    if name.startswith("-"):
        raise ConfigError(where, f"{_short(name)} starts with '-', which a command line reads as an option; "
                                 "start it with a letter or digit")
    if len(name) > NAME_MAX:
        raise ConfigError(where, f"{len(name)} characters; at most {NAME_MAX}, so that the folder "
                                 f"NAME-IofN-YYYYmmdd-HHMMSS fits a {FILENAME_MAX_BYTES}-byte file name and "
                                 f"'NAME shard I/N' an MLflow run name")
    return name


def _build(cls, data, where):
    if not isinstance(data, dict):
        raise ConfigError(where, f"expected a mapping of settings, got {_short(data)}")
    hints = typing.get_type_hints(cls)
    unknown = set(data) - set(hints)
    if unknown:
        key = _short(sorted(unknown, key=str)[0]).strip("'")
        raise ConfigError(f"{where}.{key}" if where else key,
                          f"unknown key; valid keys here: {sorted(hints)}")
    kwargs = {k: _check_type(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def _positive(value, where, allow_zero=False):
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(where, f"must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def validate(e: Experiment) -> Experiment:
    """Every check that needs no data, weights or cluster; the first problem raises, by field."""
    from .data import DATASETS
    check_name(e.name)
    if e.dataset not in DATASETS:
        raise ConfigError("dataset", f"unknown dataset {e.dataset!r}; valid: {sorted(DATASETS)}")
    _validate_objectives(e)
    if len(e.seeds) > MAX_SEEDS:
        raise ConfigError("seeds", f"{len(e.seeds)} seeds; at most {MAX_SEEDS} (config.MAX_SEEDS)")
    if not e.seeds or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < SEED_LIMIT
                              for s in e.seeds):
        raise ConfigError("seeds", f"expected a non-empty list of integers in 0 .. 2^32 - 1, got {_short(e.seeds)}")
    if len(set(e.seeds)) != len(e.seeds):
        raise ConfigError("seeds", f"a seed is named twice: {_short(e.seeds)}")
    _validate_space(e.space)
    _validate_evaluation(e)
    _validate_training(e)
    _validate_conditional(e)
    _validate_primary(e)
    check_work(e)
    return e


def count_archs(s: SpaceConfig) -> int:
    """How many architectures the space section names, without building them."""
    if s.mode == "sample":
        return s.n
    if s.mode == "grid":
        return math.prod(len(s.restrict.get(f, values)) for f, values in space_mod.FACTORS.items())
    return len(s.presets) if s.mode == "presets" else len(s.ids)


def check_d_steps(e: Experiment, method: str, where: str) -> None:
    """n_critic x budget.iterations of one method within MAX_D_STEPS: a trial of
    `gan@n_critic=1000000000` would never finish its first iteration (nor report progress)."""
    from .objectives import family_of, get_objective
    n_critic = get_objective(method, **e.objective_overrides.get(family_of(method), {})).settings.n_critic
    if n_critic * e.budget.iterations > MAX_D_STEPS:
        raise ConfigError(where, f"{_short(method)}: n_critic {n_critic} x budget.iterations {e.budget.iterations} "
                                 f"= {n_critic * e.budget.iterations} D steps per trial; at most {MAX_D_STEPS} "
                                 "(config.MAX_D_STEPS)")


def check_work(e: Experiment) -> None:
    """The work an experiment asks for, within the MAX_* bounds above: trials per sweep, D steps
    and evaluations per trial. Checked from counts alone (nothing in proportion to them is built)."""
    counts = {"space": count_archs(e.space), "seeds": len(e.seeds), "objectives": len(e.objectives)}
    trials = math.prod(counts.values())
    if trials > MAX_TRIALS:
        raise ConfigError(max(counts, key=counts.get),
                          f"{counts['space']} architectures x {counts['seeds']} seeds x {counts['objectives']} "
                          f"methods = {trials} trials; a sweep runs at most {MAX_TRIALS} (config.MAX_TRIALS): "
                          "split it into several experiments")
    iterations = e.budget.iterations
    if iterations > MAX_D_STEPS:
        raise ConfigError("budget.iterations", f"{iterations} generator iterations; a trial takes at most "
                                               f"{MAX_D_STEPS} D steps (config.MAX_D_STEPS)")
    for i, name in enumerate(e.objectives):
        check_d_steps(e, name, f"objectives[{i}]")
    if e.eval.every and iterations // e.eval.every + 1 > MAX_EVALUATIONS:
        raise ConfigError("eval.every", f"every {e.eval.every} of {iterations} iterations is "
                                        f"{iterations // e.eval.every + 1} evaluations per trial; at most "
                                        f"{MAX_EVALUATIONS} (config.MAX_EVALUATIONS)")


def _validate_objectives(e: Experiment) -> None:
    from .objectives import OBJECTIVES, Settings
    if not e.objectives:
        raise ConfigError("objectives", "name at least one objective")
    for i, name in enumerate(e.objectives):
        if not isinstance(name, str):   # quoted short: a value can be any size
            raise ConfigError(f"objectives[{i}]", f"expected an objective name, got {_short(name)}")
        _validate_method(name, f"objectives[{i}]", e.budget.batch_size)
    if len(set(e.objectives)) != len(e.objectives):
        raise ConfigError("objectives", "an objective is named twice")
    for name, overrides in e.objective_overrides.items():
        if name not in OBJECTIVES:
            raise ConfigError(f"objective_overrides.{name}", f"unknown objective; valid: {sorted(OBJECTIVES)}")
        if not isinstance(overrides, dict):
            raise ConfigError(f"objective_overrides.{name}", "expected a mapping of settings")
        hints = typing.get_type_hints(Settings)
        for key, value in overrides.items():
            if key not in hints:
                raise ConfigError(f"objective_overrides.{name}.{key}", f"unknown setting; valid: {sorted(hints)}")
            _check_type(value, hints[key], f"objective_overrides.{name}.{key}")
        try:
            OBJECTIVES[name](**overrides)
        except ValueError as err:
            bad = str(err).split(":")[0]
            raise ConfigError(f"objective_overrides.{name}.{bad}", str(err).split(": ", 1)[-1]) from None


def _validate_method(name, where: str, batch_size: int) -> None:
    """An objective, or OBJECTIVE[@SETTING=VALUE]...[+REMEDY[:ARG]]...[+PENALTY[:WEIGHT]]...: every
    name known, every setting and argument in range, every setting read by the family (a
    family-specific one it ignores is refused, naming it), the combination sensible
    (objectives.parse_settings, harness.remedies, harness.penalties)."""
    from .objectives import OBJECTIVES, parse_settings
    from .remedies import split_method
    if not isinstance(name, str):
        raise ConfigError(where, f"expected an objective name, got {name!r}")
    try:
        base, remedies, penalties = split_method(name)
        family, settings = parse_settings(base)
    except (KeyError, ValueError) as err:
        raise ConfigError(where, str(err)) from None
    if family not in OBJECTIVES:
        raise ConfigError(where, f"unknown objective {family!r}; valid: {sorted(OBJECTIVES)}")
    try:   # ranges (Settings), settings the family does not read, penalties it applies already
        OBJECTIVES[family](**settings).compose(name, remedies, penalties)
    except ValueError as err:
        raise ConfigError(where, f"{name!r}: {err}") from None
    for remedy in remedies:
        problem = remedy.check(batch_size)
        if problem:
            raise ConfigError(where, problem)


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
    from .evaluate import LABEL_METRICS, default_evaluator_for
    from .remedies import parse_method
    if not e.conditional:
        return
    if get_dataset_spec(e.dataset).num_classes < 2:
        raise ConfigError("conditional", f"dataset {e.dataset!r} has no labels to condition on")
    evaluator = default_evaluator_for(e.dataset) if e.eval.evaluator == "auto" else e.eval.evaluator
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


def from_dict(data: dict, default_name: str = "experiment") -> Experiment:
    data = dict(data or {})
    data.setdefault("name", default_name)
    return validate(_build(Experiment, data, ""))


class _ExperimentLoader(yaml.SafeLoader):
    """yaml.safe_load's loader (the same tags and types) that refuses anchors and aliases.

    An alias repeats a node without repeating its text, so a file of a few hundred bytes can
    stand for gigabytes (811 bytes under `objectives:` became a 351 MB error message). No
    shipped experiment uses them; without them a document is no larger than its file, which
    load_experiment caps at MAX_FILE_BYTES."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise ConfigError("experiment", f"line {event.start_mark.line + 1}: YAML anchors and aliases "
                                            f"(&{_short(anchor)[1:-1]} / *{_short(anchor)[1:-1]}) are not "
                                            "supported in experiment files; write the value out")
        return super().compose_node(parent, index)


def _check_duplicate_keys(loader: yaml.SafeLoader, node, where: str = "") -> None:
    """A key given twice in one mapping: YAML would keep the last silently (a second
    `budget:` turned a 50-iteration study into 999,999), so it is an error naming the key."""
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicate_keys(loader, item, f"{where}[{i}]")
    elif isinstance(node, yaml.MappingNode):
        seen: dict = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True) if isinstance(key_node, yaml.ScalarNode) else None
            path = f"{where}.{_short(key).strip(chr(39))}" if where else _short(key).strip(chr(39))
            if key is not None and key_node.tag != "tag:yaml.org,2002:merge":
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise ConfigError(path, f"given twice (lines {seen[key]} and {line}); "
                                                "YAML would keep only the last: remove one")
                    seen[key] = line
                except TypeError:   # an unhashable key: construct_document names it
                    pass
            _check_duplicate_keys(loader, value_node, path)


def _load_yaml(text: str):
    """safe_load's result for `text`, refusing anchors, aliases and repeated keys."""
    loader = _ExperimentLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_duplicate_keys(loader, node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_experiment(path: str | Path) -> Experiment:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("experiment", f"no such file: {path}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ConfigError("experiment", f"{path} is {size} bytes; an experiment file is at most {MAX_FILE_BYTES} "
                                        "(config.MAX_FILE_BYTES)")
    try:
        data = _load_yaml(path.read_text())
    except ConfigError as err:
        raise ConfigError(err.field, f"{path}: {str(err).split(': ', 1)[1]}") from None
    except yaml.YAMLError as err:
        raise ConfigError("experiment", f"{path} is not valid YAML: {err}") from None
    except UnicodeDecodeError as err:
        raise ConfigError("experiment", f"{path} is not UTF-8 text: {err}") from None
    except RecursionError:
        raise ConfigError("experiment", f"{path} nests too deeply to read") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("experiment", f"{path} must hold a mapping of settings at top level")
    return from_dict(data, default_name=path.stem)


def experiment_diff(old, new, prefix: str = "", defaults=None) -> list[str]:
    """Dotted names of the fields that differ, with both values: 'budget.iterations: 200 -> 400'.

    Resume compares the stored experiment with the file it is given (mimicry's habit). A
    field the stored one lacks (a sweep begun before the field existed) counts as its
    default, so adding a setting to the schema does not lock older sweeps out of --resume."""
    if defaults is None and not prefix:
        defaults = Experiment().to_dict()
    if isinstance(old, dict) and isinstance(new, dict):
        if isinstance(defaults, dict):
            old = {**{k: v for k, v in defaults.items() if k in new and k not in old}, **old}
        out = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                out.append(f"{where}: {old.get(key, '<absent>')!r} -> {new.get(key, '<absent>')!r}")
            else:
                out.extend(experiment_diff(old[key], new[key], where,
                                           defaults.get(key) if isinstance(defaults, dict) else None))
        return out
    return [] if old == new else [f"{prefix}: {old!r} -> {new!r}"]
