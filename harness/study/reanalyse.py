"""Pair tests on a report's trials.csv alone: `python -m harness pairs results/NAME/trials.csv`.

A committed study keeps its trials.csv even where its MLflow store is gone, and a reader may
want a threshold the report did not single out, a subset of objectives, or the statistics a
later version of the harness computes (the Holm adjustment arrived after the 2D studies
ran). This reads the csv, keeps the trials with an outcome, and prints success counts and
every pair's exact McNemar p at each threshold, raw and Holm-adjusted over the family asked
for (every pair at every --threshold given: a reader comparing thresholds has had that many
chances); then the score itself before any threshold (`scores.py`: summary per objective,
paired differences with the sign-flip p over architectures, Holm over the pairs).

The csv is checked first (`read_trials`): a trial named twice, a score that is text or
infinite, or missing where the trial's outcome counts it, is refused with its row and column
rather than counted as a success or a failure; and the rows are bounded (MAX_ROWS).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UsageError
from ..record import SUCCESS_RULES
from . import primary as primary_mod, results, scores
from .report.answer import RULE_TEXT, architecture_sentence, pair_sentence, rule_text, score_sentence
from .report.document import md_table, threshold_text

NEEDED = ("arch_id", "objective", "seed", "status", "score")
KEY = ("arch_id", "objective", "seed")
# A study is a few hundred trials (the whole 9,216-architecture grid under 5 methods and 3 seeds
# is 138,240); past this the file is not a study's trials.csv, and the pair tables' pandas work
# grows with it (a million rows took 6.6 GB): refused by name before it is read whole.
MAX_ROWS = 200_000


def read_trials(path: Path) -> pd.DataFrame:
    """The csv's trials that have an outcome; a clear error for a file that is not a trials.csv,
    names the row and column of a value that would be miscounted (a trial named twice; a score
    that is text, infinite or missing where the trial's outcome counts it), and bounds the rows."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file (a report's trials.csv, e.g. results/quick/trials.csv)")
    try:
        header = pd.read_csv(path, nrows=0)
        missing = [c for c in NEEDED if c not in header]
        if missing:
            raise UsageError(f"{path}: not a trials.csv of this harness; missing columns {missing}")
        df = pd.read_csv(path, usecols=lambda c: c in NEEDED or c == "headline",   # headline: which side succeeds
                         dtype=str, keep_default_na=False, nrows=MAX_ROWS + 1)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as err:
        raise UsageError(f"{path}: not a readable csv ({err})") from err
    if len(df) > MAX_ROWS:
        raise UsageError(f"{path}: more than {MAX_ROWS:,} rows; a study's trials.csv holds one row per trial "
                         f"(reanalyse.MAX_ROWS bounds what the pairs command reads)")
    df = df.apply(lambda col: col.str.strip())
    _check_scores(path, df)
    _check_unique(path, df)
    df["score"] = pd.to_numeric(df["score"], errors="coerce")   # checked above: only missing ones become NaN
    df["seed"] = pd.to_numeric(df["seed"], errors="raise")
    return results.with_outcome(df)


def _line(i: int) -> str:
    return f"row {i + 1} (line {i + 2})"     # the header is line 1


def _check_scores(path: Path, df: pd.DataFrame) -> None:
    """Every score a number: finite where the trial's outcome counts its score (an infinite one
    would succeed at every threshold), empty allowed only where it does not (diverged, failed,
    still running); text or an infinite value anywhere is a damaged file."""
    numbers = pd.to_numeric(df["score"].replace("", np.nan), errors="coerce")
    text = numbers.isna() & (df["score"] != "") & ~df["score"].str.lower().isin(["nan", "na", "null", "none"])
    if text.any():
        i = int(np.flatnonzero(text.to_numpy())[0])
        raise UsageError(f"{path}: {_line(i)}, column score: {df['score'].iloc[i]!r} is not a number")
    infinite = np.isinf(numbers.to_numpy(dtype=float))
    if infinite.any():
        i = int(np.flatnonzero(infinite)[0])
        raise UsageError(f"{path}: {_line(i)}, column score: {df['score'].iloc[i]!r} is not finite "
                         "(it would count as a success at every threshold)")
    counted = df["status"].isin(SUCCESS_RULES["paper"]).to_numpy() & numbers.isna().to_numpy()
    if counted.any():
        i = int(np.flatnonzero(counted)[0])
        raise UsageError(f"{path}: {_line(i)}, column score: empty for a trial with status "
                         f"{df['status'].iloc[i]!r}, whose score decides success (it would count as a failure)")
    seeds = pd.to_numeric(df["seed"], errors="coerce")
    bad = seeds.isna() | ~np.isfinite(seeds.to_numpy(dtype=float))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise UsageError(f"{path}: {_line(i)}, column seed: {df['seed'].iloc[i]!r} is not a number")


def _check_unique(path: Path, df: pd.DataFrame) -> None:
    """One row per (arch_id, objective, seed): a pair test pairs them, and a repeat would count
    one trial twice (or, with two different outcomes, be two answers for one trial)."""
    key = df[list(KEY)].assign(seed=pd.to_numeric(df["seed"]))
    repeats = key.duplicated(keep="first").to_numpy()
    if repeats.any():
        second = int(np.flatnonzero(repeats)[0])
        first = int(np.flatnonzero((key == key.iloc[second]).all(axis=1).to_numpy())[0])
        raise UsageError(f"{path}: {_line(second)} repeats {_line(first)}: the same (arch_id, objective, seed) = "
                         f"({df['arch_id'].iloc[first]}, {df['objective'].iloc[first]}, {df['seed'].iloc[first]}); "
                         "a trials.csv holds one row per trial")


def pairs_text(path: Path, thresholds: list[float], objectives: list[str] | None = None,
               rule: str = "paper", primary: list[str] | None = None) -> str:
    """Markdown: per threshold, success counts, the answer's pair sentence and the pair table; then
    the scores' summary and paired differences. primary: `--primary A,B[@T]` values, the
    comparison the study was built for, declared after the fact (primary.py), tested alone first."""
    bad = [t for t in thresholds if not math.isfinite(t)]
    if bad or not thresholds:
        raise UsageError(f"--threshold: finite numbers needed, got {bad or 'none'}")
    thresholds = list(dict.fromkeys(float(t) for t in thresholds))   # one threshold named twice is one family member
    df = read_trials(path)
    present = list(dict.fromkeys(df["objective"]))
    objectives = objectives or present
    unknown = [o for o in objectives if o not in present]
    if unknown:
        raise UsageError(f"--objectives: {unknown} not in {path} (it has {present})")
    if len(objectives) < 2:
        raise UsageError(f"--objectives: two or more needed to compare, got {objectives}")
    declared = primary_mod.declare({"objectives": objectives, "thresholds": thresholds}, primary)
    df = df[df["objective"].isin(objectives)]
    lower = results.lower_is_better(df)   # the csv's headline declared lower-is-better: success is below t
    shown_rule = rule_text(rule, results.metric_of(df), lower) if lower else RULE_TEXT[rule]
    parts = [f"# Pairs in {path} ({len(df)} trials with an outcome; success: {shown_rule})", "",
             md_table(results.success_counts(df, thresholds, objectives, rule), index=True), ""]
    if primary:
        chosen = primary_mod.resolve(declared, thresholds)
        table = primary_mod.comparison(df, chosen, rule)
        parts += ["## primary comparison", "", *[s + "\n" for s in primary_mod.sentences(table, chosen, "the score")],
                  md_table(primary_mod.shown(table, chosen)), "", "## secondary results", ""]
    pairs = results.all_pair_tables(df, thresholds, objectives, rule)
    family = results.pair_family(pairs)
    parts += [f"Family of the adjusted p-values (p_holm, p_arch_holm): every pair at every threshold asked for, "
              f"{results.family_text(family)} (McNemar), {family['architectures']} with the architectures as the "
              "units. A raw p below 0.05 that does not survive it is a lead, not a finding.", ""]
    for t in thresholds:
        at = pairs[pairs["threshold"] == float(t)]
        parts += [f"## threshold {threshold_text(t)}", "",
                  " ".join(filter(None, [pair_sentence(at, family), architecture_sentence(at, family)])), "",
                  md_table(results.drop_untested(at.drop(columns="threshold"))), ""]
    diffs = scores.paired_differences(df, objectives)
    parts += ["## the score itself, no threshold", "", md_table(scores.summary(df, objectives)), "",
              md_table(scores.readable(diffs)), "", score_sentence(diffs, "the score", lower), ""]
    return "\n".join(parts)
