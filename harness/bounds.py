"""Bounds on what an experiment may ask for, and how error messages quote its values.

Each bound is refused by name before anything runs (issue 23): past it a sweep cannot finish,
or the machine spends its time on bookkeeping instead of training. Memory is bounded apart,
by an estimate against the machine (harness/memory.py). config.py re-exports these names;
this module reads an experiment by its attributes only, so it imports nothing of config.
"""
from __future__ import annotations

import math
import reprlib

from . import space as space_mod
from .errors import ConfigError

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
                                 "(bounds.MAX_D_STEPS)")


def check_work(e: Experiment) -> None:
    """The work an experiment asks for, within the MAX_* bounds above: trials per sweep, D steps
    and evaluations per trial. Checked from counts alone (nothing in proportion to them is built)."""
    counts = {"space": count_archs(e.space), "seeds": len(e.seeds), "objectives": len(e.objectives)}
    trials = math.prod(counts.values())
    if trials > MAX_TRIALS:
        raise ConfigError(max(counts, key=counts.get),
                          f"{counts['space']} architectures x {counts['seeds']} seeds x {counts['objectives']} "
                          f"methods = {trials} trials; a sweep runs at most {MAX_TRIALS} (bounds.MAX_TRIALS): "
                          "split it into several experiments")
    iterations = e.budget.iterations
    if iterations > MAX_D_STEPS:
        raise ConfigError("budget.iterations", f"{iterations} generator iterations; a trial takes at most "
                                               f"{MAX_D_STEPS} D steps (bounds.MAX_D_STEPS)")
    for i, name in enumerate(e.objectives):
        check_d_steps(e, name, f"objectives[{i}]")
    if e.eval.every and iterations // e.eval.every + 1 > MAX_EVALUATIONS:
        raise ConfigError("eval.every", f"every {e.eval.every} of {iterations} iterations is "
                                        f"{iterations // e.eval.every + 1} evaluations per trial; at most "
                                        f"{MAX_EVALUATIONS} (bounds.MAX_EVALUATIONS)")
