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
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import space as space_mod
from .bounds import (FILENAME_MAX_BYTES, MAX_D_STEPS, MAX_EVALUATIONS, MAX_FILE_BYTES,  # noqa: F401 (re-exported)
                     MAX_SEEDS, MAX_THRESHOLDS, MAX_TRIALS, MLFLOW_EXPERIMENT_NAME_MAX, MLFLOW_RUN_NAME_MAX,
                     NAME_MAX, SEED_LIMIT, _short, check_d_steps, check_work, count_archs)
from .config_checks import (_positive, _validate_conditional, _validate_evaluation, _validate_primary,
                            _validate_space, _validate_training)
from .errors import ConfigError

PAPER_THRESHOLDS = [1.0 + 0.5 * i for i in range(17)]  # WGAN-GP appendix: 1.0 ... 9.0


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
    # fp32: penalties (harness.penalties) take D's input gradient in fp32, autocast off; autocast:
    # under the trial's autocast dtype (bf16 on the bf16 path, no effect in fp32), norm in fp32
    penalty_precision: str = "fp32"
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
    # code to import first: paths relative to the experiment file, or module names (harness.plugins)
    plugins: list = field(default_factory=list)
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
    conditional: bool = False           # G(z, y), D(x, y) on the labels (harness.step)
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
        """The settings, and each plugin's sha256 (plugins.HASH_KEY, derived, only with plugins):
        --resume compares this dict, so changed plugin code is refused like a changed file."""
        out = dataclasses.asdict(self)
        if self.plugins:
            from . import plugins
            out[plugins.HASH_KEY] = plugins.hashes(self.plugins)
        return out


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


def from_dict(data: dict, default_name: str = "experiment", base_dir: Path | None = None) -> Experiment:
    """An experiment from a mapping; its plugins are imported first (paths relative to
    base_dir, the experiment file's folder), so that the names they register validate."""
    from . import plugins
    data = dict(data or {})
    data.setdefault("name", default_name)
    data = plugins.prepare(data, base_dir)
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


def load_experiment(path: str | Path, overrides: dict[str, object] | None = None) -> Experiment:
    """The experiment in `path`; `overrides`: dotted field -> value set on the file's mapping
    before validation (a command line's --iterations, --device), so they are checked like the
    file's own values and a bad one is refused naming its field."""
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
    for dotted, value in (overrides or {}).items():
        section, key = dotted.split(".")
        if not isinstance(data.get(section, {}), dict):
            raise ConfigError(section, f"{path}: must be a mapping to take {dotted} from the command line")
        data[section] = {**(data.get(section) or {}), key: value}
    return from_dict(data, default_name=path.stem, base_dir=path.resolve().parent)


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
