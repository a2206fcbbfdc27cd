"""The one trial record, from the worker to MLflow to the report's CSV, and the outcome vocabulary.

`train.run_trial` returns a `TrialRecord`; the sweep's worker sends `to_dict()` through
Ray Tune; the store writes it as a child run and reads it back (`study.store`); the
report's DataFrame has one `to_row()` per trial, and trials.csv is that DataFrame. No
layer re-invents the shape, so a field added here reaches every consumer.

Kept free of torch: the study layer reads records without importing a training stack.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# A trial's outcome (train.py decides it; WGAN-GP section 5.1 counts success separately).
OK, DIVERGED, COLLAPSED, FAILED = "ok", "diverged", "collapsed", "failed"
OUTCOMES = (OK, DIVERGED, COLLAPSED, FAILED)
# Outcomes that are answers: a resumed sweep keeps them; a failed trial gets another chance.
ANSWERS = (OK, DIVERGED, COLLAPSED)

# Success rule -> the outcomes that may succeed (beyond the threshold: `clears`). "paper": WGAN-GP
# sec. 5.1, the score alone decides (collapse is a diagnostic); "strict": collapse vetoes.
SUCCESS_RULES = {"paper": (OK, COLLAPSED), "strict": (OK,)}


def clears(score, threshold, lower_is_better=False):
    """Whether a score is beyond a threshold on its metric's better side: strictly above it (the
    paper's "score > min score"), or strictly below it for a metric where lower is better (a
    FID, a distance: evaluate/metrics.py declares which). NaN clears nothing. Elementwise on
    numpy arrays (`lower_is_better` may be one per score)."""
    score = np.asarray(score, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(lower_is_better, score < threshold, score > threshold)

# Summary figures: record fields, and the names of the child run's final metrics.
SUMMARY = ("wall_time_s", "train_time_s", "eval_time_s", "its_per_s")


@dataclass
class TrialRecord:
    trial_id: str
    arch_id: str
    objective: str
    seed: int
    status: str = OK
    headline: str | None = None          # the metric the success thresholds apply to
    metrics: dict = field(default_factory=dict)    # the last evaluation (and last losses, once stored)
    history: list = field(default_factory=list)    # [{"step": s, **metrics}] per evaluation
    error: str | None = None
    iterations: int = 0                  # generator iterations done
    wall_time_s: float = 0.0
    train_time_s: float = 0.0
    eval_time_s: float = 0.0
    its_per_s: float = 0.0               # generator iterations per second of training time
    resumed_from: int | None = None      # the checkpoint's iteration, when the trial continued from one
    params: dict = field(default_factory=dict)     # every setting that produced it (Trial.params())
    tracking: dict = field(default_factory=dict)   # where the store keeps it (run id, shard, attempt, ...)
    samples: Any = field(default=None, repr=False, compare=False)   # final samples: an artifact, not data

    @property
    def score(self) -> float:
        """The headline metric's final value; NaN where there is none."""
        value = self.metrics.get(self.headline) if self.headline else None
        return float(value) if value is not None else math.nan

    def summary(self) -> dict:
        return {k: getattr(self, k) for k in SUMMARY}

    def to_dict(self) -> dict:
        """Plain data (no samples) that survives pickling, JSON and Ray."""
        d = dataclasses.asdict(dataclasses.replace(self, samples=None))
        d.pop("samples")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrialRecord":
        known = {f.name for f in dataclasses.fields(cls)} - {"samples"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown trial record field(s) {sorted(unknown)}")
        return cls(**d)

    # ---- how MLflow keeps it (study/store.py writes and reads it through these two) ----------
    # Its scalar fields are the child run's tags, SUMMARY and `metrics` the run's metrics, `params`
    # its params; generated from the fields, so a field added above is written and read back typed.

    def to_mlflow(self) -> tuple[dict[str, str], dict[str, float]]:
        """(tags, metrics) of the child run; a field that is None (or an empty text) is left out."""
        tags = {name: str(getattr(self, name)) for name in TAG_FIELDS if getattr(self, name) not in (None, "")}
        return tags, {**self.summary(), **self.metrics}

    @classmethod
    def from_mlflow(cls, tags: dict, metrics: dict, params: dict, tracking: dict | None = None) -> "TrialRecord":
        """The record a child run holds: tags typed back by the fields' annotations (a missing
        one takes its default; a missing seed reads -1), params as MLflow keeps them (text)."""
        metrics = dict(metrics)
        summary = {k: float(metrics.pop(k, 0.0)) for k in SUMMARY}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values = {name: typed(tags[name], fields[name].type) for name in TAG_FIELDS if tags.get(name, "") != ""}
        values = {"trial_id": "", "arch_id": "", "objective": "", "seed": -1, **values}
        return cls(**values, metrics=metrics, params=dict(params), **summary, tracking=dict(tracking or {}))

    def to_row(self) -> dict:
        """One flat row: identity, outcome, summary, tracking, then params and final metrics.

        Params (`arch.*`, `budget.*`, `objective.*`, ...) and metrics (`is5k_...`,
        `loss_d`, ...) never share a name with a record field; a clash is a bug and raises.
        """
        row = {"trial_id": self.trial_id, "arch_id": self.arch_id, "objective": self.objective,
               "seed": self.seed, "status": self.status, "headline": self.headline, "score": self.score,
               "error": self.error, "iterations": self.iterations, "resumed_from": self.resumed_from,
               **self.summary(), **self.tracking}
        for source in (self.params, self.metrics):
            for key, value in source.items():
                if key in row and row[key] != value and key not in ("trial_id", "arch_id", "objective", "seed"):
                    raise ValueError(f"trial record column {key!r} appears twice with different values")
                row.setdefault(key, value)
        return row


# The record's scalar fields: the child run's tags.
TAG_FIELDS = tuple(f.name for f in dataclasses.fields(TrialRecord)
                   if f.name not in {"metrics", "history", "params", "tracking", "samples", *SUMMARY})
_TYPES = {"int": int, "float": float, "str": str}


def typed(text: str, annotation: str):
    """A tag's text as its field's type ('int', 'int | None', 'str | None', ...)."""
    return _TYPES[annotation.split("|")[0].strip()](text)


def file_stem(trial_id: str) -> str:
    """A trial id as a file or folder name (Tune's trial folder, a report's sample picture):
    anything but letters, digits, '.', '_' and '-' becomes '_'."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", trial_id)
