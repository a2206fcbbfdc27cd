"""What every metric is: which side is better, its range, its group, whether the report draws it.

A metric's name carries its protocol (`fid5k_train_fmnistclf`, `w1_exact_2k`: evaluate/base.py),
so the report cannot know from the name alone that a lower FID is better, that a precision is
a share in [0, 1], or that D's probability on real data has an equilibrium at 1/2 worth a
dashed line. Each evaluator declares that here, once, for the metrics it returns
(`register_metric`, at the import of its module: toy2d.py, fidelity.py, conditional.py,
critic.py, base.py), and the study layer asks (`metric_info`): the success rule (value below
the threshold for a lower-is-better metric), the report's sections, tables, plot labels and
answer sentences all choose from this metadata rather than from lists of names. A plugin
declares its metrics with the same function (docs/extending.md).

A name with `{n}`, `{split}` or `{extractor}` in it is a pattern: `fid{n}_{split}_{extractor}`
resolves `fid5k_train_fmnistclf` and `fid500_test_inception` alike (`{n}` is base.count_tag's
sample count: 5k, 2.5k, 500). An exact name wins over a pattern; patterns are tried in the
order they were declared.

Kept free of torch itself. The built-in declarations live in the evaluator modules, which
import torch; they are imported when a name is not found (`BUILTIN_MODULES`, one at a time until
the name resolves: torch-fidelity's import, seconds, only for the image metrics), so whoever asks
gets them without importing an evaluator first.
"""
from __future__ import annotations

import dataclasses
import importlib
import math
import re
from dataclasses import dataclass

from harness.errors import UnknownName

HIGHER, LOWER = "higher", "lower"
DIRECTIONS = (HIGHER, LOWER, None)    # None: a diagnostic or a setting, no side is better
# The groups the built-ins use (a plugin may name another): what a value says about the generator.
GROUPS = {
    "quality": "how good the samples are, diversity aside (precision, density, high-quality share)",
    "diversity": "how much of the data the samples cover (recall, coverage, modes or classes covered)",
    "score": "a single score mixing quality and diversity (Inception score)",
    "divergence": "a distance between the generated and the data distribution (FID, KID, W1, KL, JS)",
    "game": "what D and G's losses say about their game (D's probabilities, critic estimates, losses)",
    "label": "whether a conditional G gives the class it is asked for",
    "spread": "the spread of another metric's estimate",
    "setting": "a setting or a reference the evaluation reports, not a measurement of G",
    "cost": "what the trial cost: speed, time",
}
PLACEHOLDERS = {"n": r"\d+(?:\.\d+)?k?", "split": r"train|test", "extractor": r"[A-Za-z0-9]+"}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# The modules whose import declares the built-in metrics (no torch-free way to reach them).
BUILTIN_MODULES = ("harness.evaluate.base", "harness.evaluate.critic", "harness.evaluate.toy2d",
                   "harness.evaluate.conditional", "harness.evaluate.fidelity")


class UnknownMetric(UnknownName):
    """A metric nobody declared; the message lists the declared names and patterns."""


class ConflictingMetric(ValueError):
    """A name or pattern declared twice with different metadata."""


@dataclass(frozen=True)
class MetricInfo:
    """One metric's metadata. `name` is the name asked for (a pattern's match), `pattern` the
    declaration it came from (None for an exact name)."""
    name: str
    direction: str | None                  # HIGHER or LOWER is better; None: neither (diagnostic, setting)
    range: tuple                           # (low, high): numbers, or what bounds them ("n_modes"); inf allowed
    group: str                             # GROUPS
    description: str                       # one line: what it measures, and its protocol
    curve: bool = False                    # drawn over training in the report's game panel (report: Equilibrium)
    summary: bool = False                  # one of its evaluator's summary figures: the final distributions
    family: str = ""                       # metrics computed together by one method ("prdc": quality vs diversity)
    ideal: float | None = None             # what a generator matching the data reads, where not an end of range
    reference: float | None = None         # a level drawn dashed across its curve (an equilibrium, a bound)
    symlog: bool = False                   # its curve spans orders of magnitude: symlog axis
    relative: bool | None = None           # thresholds as fractions of the real data's value mean something
    order: int = 500                       # where it sits among the metrics a table or panel shows
    pattern: str | None = None

    @property
    def lower_is_better(self) -> bool:
        return self.direction == LOWER

    @property
    def comparison(self) -> str:
        """The success rule's comparison: '<' for a lower-is-better metric, else '>'."""
        return "<" if self.lower_is_better else ">"

    def success_text(self, threshold: float | str = "threshold") -> str:
        """'w1_exact_2k < 0.2', 'is5k_fmnistclf > 6': what success at a threshold means."""
        t = threshold if isinstance(threshold, str) else f"{threshold:.4g}"
        return f"{self.name} {self.comparison} {t}"

    def direction_text(self) -> str:
        return {HIGHER: "higher is better", LOWER: "lower is better"}.get(self.direction, "no better side")

    def bounds(self, values: dict | None = None) -> tuple[float, float]:
        """The range as numbers: a named bound ("n_modes", "log n_modes") read from `values`
        (one evaluation's metrics, or the evaluator's settings), NaN where they lack it."""
        def number(b):
            if not isinstance(b, str):
                return float(b)
            log = b.startswith("log ")
            v = (values or {}).get(b.removeprefix("log "))
            return math.nan if v is None else math.log(float(v)) if log else float(v)
        return number(self.range[0]), number(self.range[1])


METRICS: dict[str, MetricInfo] = {}          # exact names
PATTERNS: dict[str, tuple[re.Pattern, MetricInfo]] = {}   # pattern -> (its regex, its metadata)
_unloaded = list(BUILTIN_MODULES)            # built-in declaring modules not imported yet


def _regex(pattern: str) -> re.Pattern:
    parts = re.split(r"\{(\w+)\}", pattern)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            if part not in PLACEHOLDERS:
                raise ValueError(f"metric pattern {pattern!r}: unknown placeholder {{{part}}}; "
                                 f"valid: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
            out.append(f"(?:{PLACEHOLDERS[part]})")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out))


def register_metric(name: str, *, direction: str | None, range: tuple, group: str, description: str,
                    curve: bool = False, summary: bool = False, family: str = "", ideal: float | None = None,
                    reference: float | None = None, symlog: bool = False, relative: bool | None = None,
                    order: int = 500) -> MetricInfo:
    """Declare a metric (or a pattern of names, with {n}, {split}, {extractor}). relative: whether
    `thresholds_relative` may scale thresholds by the real data's value (default: only where
    higher is better; a distance such as FID or W1 reads about 0 on the data itself). The same
    declaration made twice (a module imported again) is kept; a different one is refused."""
    if direction not in DIRECTIONS:
        raise ValueError(f"metric {name!r}: direction {direction!r} is not one of {list(DIRECTIONS)}")
    if len(range) != 2:
        raise ValueError(f"metric {name!r}: range is (low, high), got {range!r}")
    low, high = range
    if not isinstance(low, str) and not isinstance(high, str) and not low <= high:
        raise ValueError(f"metric {name!r}: range {range!r} has low > high")
    if not isinstance(group, str) or not group:
        raise ValueError(f"metric {name!r}: name a group (e.g. {', '.join(GROUPS)})")
    is_pattern = "{" in name
    if not NAME.fullmatch(re.sub(r"\{\w+\}", "0", name)):
        raise ValueError(f"metric name {name!r}: letters, digits, '.', '_', '-' (and {{n}}, {{split}}, "
                         "{extractor} in a pattern)")
    info = MetricInfo(name, direction, tuple(range), group, description, curve, summary, family, ideal, reference,
                      symlog, direction == HIGHER if relative is None else bool(relative), order,
                      name if is_pattern else None)
    table = PATTERNS if is_pattern else METRICS
    old = table.get(name)
    old = old[1] if is_pattern and old else old
    if old is not None and old != info:
        raise ConflictingMetric(f"metric {name!r} is declared already with other metadata ({old}); "
                                "a plugin's metric needs a name of its own")
    if is_pattern:
        PATTERNS[name] = (_regex(name), info)
    else:
        METRICS[name] = info
    return info


def _load_builtins(everything: bool = False) -> None:
    """Import the next built-in declaring module (every one left, with everything)."""
    while _unloaded:
        importlib.import_module(_unloaded.pop(0))
        if not everything:
            return


def _lookup(name: str) -> MetricInfo | None:
    if name in METRICS:
        return METRICS[name]
    for regex, info in PATTERNS.values():
        if regex.fullmatch(name):
            return dataclasses.replace(info, name=name)
    return None


def find_metric(name) -> MetricInfo | None:
    """The metadata of `name` (an exact declaration, else the first pattern it matches); None if undeclared."""
    if not isinstance(name, str) or not name:
        return None
    found = _lookup(name)
    while found is None and _unloaded:
        _load_builtins()
        found = _lookup(name)
    return found


def metric_info(name: str) -> MetricInfo:
    """As find_metric, but an undeclared name is an UnknownMetric listing what is declared."""
    found = find_metric(name)
    if found is None:
        _load_builtins(everything=True)   # the message lists every declaration
        raise UnknownMetric(f"metric {name!r} declares no metadata (harness/evaluate/metrics.py: register_metric); "
                            f"declared: {', '.join(sorted(METRICS) + sorted(PATTERNS))}")
    return found


def lower_is_better(name) -> bool:
    """Whether success means a value below the threshold; an undeclared metric keeps the
    paper's rule (above), as every metric did before directions were declared."""
    found = find_metric(name)
    return found is not None and found.lower_is_better


def success_metric_problem(name, relative: bool = False) -> tuple[str, str] | None:
    """(field, message) when a declared metric cannot be an experiment's success_metric: it has no
    better side (a setting, a loss), or `thresholds_relative` would take fractions of a real-data
    value that is about 0 or means nothing (a distance, a label metric: `relative=False`). None
    when it can, and for an undeclared metric (judged by the paper's rule, higher is better)."""
    info = find_metric(name)
    if info is None:
        return None
    if info.direction is None:
        return "success_metric", (f"{name!r} has no better side ({info.group}: {info.description}); name a metric "
                                  "where higher or lower is better")
    if relative and not info.relative:
        return "thresholds_relative", (f"thresholds as fractions of the real data's own {name} mean nothing "
                                       f"({info.direction_text()}; {info.description}): the data itself reads about "
                                       f"{info.ideal if info.ideal is not None else info.range[0]} or has no value; "
                                       "use absolute thresholds")
    return None


def select(names, **where) -> list[MetricInfo]:
    """The declared metrics among `names` (e.g. a trials frame's columns) whose metadata has
    every `where` value (curve=True, group="quality", family="prdc"; a tuple or set: any of
    them), sorted by their order, then name."""
    _load_builtins(everything=True)   # most of a frame's columns (ids, settings) are no metric: look once
    out = []
    for name in dict.fromkeys(str(n) for n in names):
        info = find_metric(name)
        if info is None:
            continue
        if all(getattr(info, k) in v if isinstance(v, (tuple, set, frozenset, list)) else getattr(info, k) == v
               for k, v in where.items()):
            out.append(info)
    return sorted(out, key=lambda i: (i.order, i.name))


def undeclared(names) -> list[str]:
    """The names among `names` without metadata (an evaluator's metric_names should have none)."""
    _load_builtins(everything=True)
    return [n for n in names if find_metric(n) is None]
