"""Pair tests on a report's trials.csv alone: `python -m harness pairs results/NAME/trials.csv`.

A committed study keeps its trials.csv even where its MLflow store is gone, and a reader may
want a threshold the report did not single out, a subset of objectives, or the statistics a
later version of the harness computes (the Holm adjustment arrived after the 2D studies
ran). This reads the csv, keeps the trials with an outcome, and prints success counts and
every pair's exact McNemar p, raw and Holm-adjusted over the pairs, at each threshold; then
the score itself before any threshold (`scores.py`: summary per objective, paired differences
with the sign-flip p over architectures).
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..errors import UsageError
from . import results, scores
from .report.answer import RULE_TEXT, architecture_sentence, pair_sentence
from .report.document import md_table, threshold_text

NEEDED = ("arch_id", "objective", "seed", "status", "score")


def read_trials(path: Path) -> pd.DataFrame:
    """The csv's trials that have an outcome; a clear error for a file that is not a trials.csv."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file (a report's trials.csv, e.g. results/quick/trials.csv)")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise UsageError(f"{path}: not a readable csv ({err})") from err
    missing = [c for c in NEEDED if c not in df]
    if missing:
        raise UsageError(f"{path}: not a trials.csv of this harness; missing columns {missing}")
    return results.with_outcome(df)


def pairs_text(path: Path, thresholds: list[float], objectives: list[str] | None = None,
               rule: str = "paper") -> str:
    """Markdown: per threshold, success counts, the answer's pair sentence and the pair table; then
    the scores' summary and paired differences."""
    bad = [t for t in thresholds if not math.isfinite(t)]
    if bad or not thresholds:
        raise UsageError(f"--threshold: finite numbers needed, got {bad or 'none'}")
    df = read_trials(path)
    present = list(dict.fromkeys(df["objective"]))
    objectives = objectives or present
    unknown = [o for o in objectives if o not in present]
    if unknown:
        raise UsageError(f"--objectives: {unknown} not in {path} (it has {present})")
    if len(objectives) < 2:
        raise UsageError(f"--objectives: two or more needed to compare, got {objectives}")
    df = df[df["objective"].isin(objectives)]
    parts = [f"# Pairs in {path} ({len(df)} trials with an outcome; success: {RULE_TEXT[rule]})", "",
             md_table(results.success_counts(df, thresholds, objectives, rule), index=True), ""]
    pairs = results.all_pair_tables(df, thresholds, objectives, rule)
    for t in thresholds:
        at = pairs[pairs["threshold"] == float(t)]
        parts += [f"## threshold {threshold_text(t)}", "", " ".join(filter(None, [pair_sentence(at), architecture_sentence(at)])), "",
                  md_table(results.drop_untested(at.drop(columns="threshold"))), ""]
    parts += ["## the score itself, no threshold", "", md_table(scores.summary(df, objectives)), "",
              md_table(scores.readable(scores.paired_differences(df, objectives))), ""]
    return "\n".join(parts)
