"""The report as registered sections over one shared context.

Every section is a function `section(ctx: ReportContext, doc: Document) -> None` registered
with `@report_section(order=...)`; `build.build_report` makes one `ReportContext` (the trials,
the experiment, the success metric and its metadata, the thresholds, the output folder, the
MLflow client) and calls the sections in order. A section that has nothing to show writes
nothing. So a plugin's metric gets its own section by registering one, from the plugin's code,
without editing build.py (docs/extending.md); the built-in sections are registered the same
way (build.py, sections.py, measures.py).

What several sections need (the reference threshold, the pair tables' family, the score's paired
differences, the factor tests, the 2D floors) is computed once, on first use, by the context.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from ...evaluate import metrics
from ...evaluate.metrics import MetricInfo
from .. import floors as floors_mod, primary as primary_mod, results, scores
from ..factor_tests import factor_tests as run_factor_tests
from .document import Document, threshold_text

CURVE_TRIALS = 10   # trials per objective whose histories the game panel reads back


def read_curves(client, df: pd.DataFrame, objectives, metric_names=None,
                trials: int | None = CURVE_TRIALS) -> pd.DataFrame:
    """Long rows (run_id, arch_id, objective, metric, step, value) from the MLflow histories of
    up to `trials` trials per objective (None: all); arch_id lets an interval over them take the
    architectures as its units. metric_names: default, every metric of the trials declared with
    curve=True (evaluate/metrics.py), in their declared order."""
    rows = []
    if metric_names is None:
        metric_names = [i.name for i in metrics.select(df.columns, curve=True)]
    metric_names = [m for m in metric_names if m in df]
    for obj in objectives:
        sub = df.loc[df["objective"] == obj]
        sub = sub if trials is None else sub.head(trials)
        for run_id, arch_id in zip(sub["run_id"], sub["arch_id"] if "arch_id" in sub else [None] * len(sub)):
            for metric in metric_names:
                rows += [{"run_id": run_id, "arch_id": arch_id, "objective": obj, "metric": metric, "step": h.step,
                          "value": h.value} for h in client.get_metric_history(run_id, metric)]
    return pd.DataFrame(rows, columns=["run_id", "arch_id", "objective", "metric", "step", "value"])


@dataclass
class ReportContext:
    """What every section reads. `df` holds the trials with an outcome (every statistic's input);
    `recorded` every trial stored, running ones included (the header and trials.csv)."""
    name: str
    client: object
    recorded: pd.DataFrame
    df: pd.DataFrame
    exp: dict                        # the experiment as analysed: a primary declared after the fact included
    parent_runs: list
    metric: str                      # the success metric ("headline metric" where none is known)
    info: MetricInfo | None          # its metadata; None for a metric nobody declared
    rule: str
    thresholds: list[float]          # in the metric's units
    real: float | None               # the real data's score, where the thresholds are fractions of it
    out: Path
    stored: dict | None = None       # the experiment as stored (header, Experiment section); None: exp

    def __post_init__(self):
        if self.stored is None:
            self.stored = self.exp

    @property
    def objectives(self) -> list[str]:
        return list(self.exp["objectives"])

    @property
    def lower(self) -> bool:
        """Success is a value below the threshold (the metric is declared lower-is-better)."""
        return self.info is not None and self.info.lower_is_better

    def at(self, t: float) -> str:
        """A threshold as prose names it: 'threshold 5', or 'w1_exact_2k < 0.2' where lower is better
        (the paper's direction goes without saying; the other one never does)."""
        return f"{self.metric} < {threshold_text(t)}" if self.lower else f"threshold {threshold_text(t)}"

    def rule_note(self) -> str:
        """' (success: w1_exact_2k < threshold)' after a heading where lower is better, else ''."""
        return f" (success: {self.metric} < threshold)" if self.lower else ""

    def curves(self, metric_names=None, trials: int | None = CURVE_TRIALS) -> pd.DataFrame:
        return read_curves(self.client, self.df, self.objectives, metric_names, trials)

    @functools.cached_property
    def t_ref(self) -> float:
        return results.reference_threshold(self.df, self.thresholds, self.rule)

    @functools.cached_property
    def primary(self):
        return primary_mod.resolve(self.exp, self.thresholds)

    @functools.cached_property
    def floors(self):
        """The 2D evaluator's floors for this study's dataset and sample size (study/floors.py), or None."""
        evaluators = self.df["evaluator"].dropna() if "evaluator" in self.df else pd.Series(dtype=str)
        evaluator = evaluators.iloc[0] if len(evaluators) else self.exp.get("eval", {}).get("evaluator")
        if not floors_mod.applies(self.exp.get("dataset", ""), evaluator):
            return None
        return floors_mod.estimator_floors(self.exp["dataset"], int(self.exp["eval"]["n_samples"]))

    @functools.cached_property
    def family(self) -> dict:
        return results.pair_family(results.all_pair_tables(self.df, self.thresholds, self.objectives, self.rule))

    @functools.cached_property
    def diffs(self) -> pd.DataFrame | None:
        return scores.paired_differences(self.df, self.objectives) if len(self.objectives) > 1 else None

    @functools.cached_property
    def factor_tests(self) -> pd.DataFrame:
        return run_factor_tests(self.df, self.t_ref, self.objectives, self.rule)


Write = Callable[[ReportContext, Document], None]


@dataclass(frozen=True)
class Section:
    key: str            # module.qualname of the function: the same function registered again replaces itself
    order: float        # the report's order (built-ins: 100 header ... 9000 the experiment)
    write: Write
    needs_outcomes: bool


SECTIONS: dict[str, Section] = {}


def report_section(order: float, needs_outcomes: bool = True) -> Callable[[Write], Write]:
    """Decorator: `section(ctx, doc)` joins every report at `order`. needs_outcomes: skipped while
    no trial has an outcome (every section but the header and the experiment). A section decides
    itself whether it has anything to show (return without writing)."""
    def decorate(write: Write) -> Write:
        key = f"{write.__module__}.{write.__qualname__}"
        SECTIONS[key] = Section(key, float(order), write, needs_outcomes)
        return write
    return decorate


def write_sections(ctx: ReportContext, doc: Document) -> None:
    """Every registered section in order (ties by key), those needing outcomes only when some trial has one."""
    for section in sorted(SECTIONS.values(), key=lambda s: (s.order, s.key)):
        if section.needs_outcomes and ctx.df.empty:
            continue
        section.write(ctx, doc)
