"""Where a sweep's time went, from its own MLflow records: training, evaluation, a trial's
set-up, and what Ray, Tune and MLflow add around each trial and around the whole sweep.

Each trial's record splits its run_trial wall time into training, evaluation and the rest
(building nets, loading data, final samples); its child run's lifetime (created when Tune
starts the trial, ended when the driver records it) adds the Ray worker, Tune's reporting
and MLflow's writes; each sweep run (a sweep or one --resume of it, timed by the driver) adds Ray's start-up,
the checks and the aggregation. A shard resumed days later is timed per sweep run, so the
gap between sessions never counts as the sweep's time.
"""
from __future__ import annotations

import pandas as pd

from .store import LOST_TAG, SWEEP_CLOCK_S

PARTS = ("training", "evaluation", "trial set-up and final samples", "Ray, Tune and MLflow around the trial")
LOST_PART = "attempts lost to failures (retried from a checkpoint)"


def busy_seconds(spans) -> float:
    """Seconds during which at least one of the (start ms, end ms) spans was open."""
    busy, end = 0.0, None
    for s, e in sorted(spans):
        if end is None or s > end:
            busy, end = busy + (e - s), e
        elif e > end:
            busy, end = busy + (e - end), e
    return busy / 1000.0


def time_budget(df: pd.DataFrame, sweep_seconds: list[float]) -> tuple[pd.DataFrame, str] | None:
    """(table of seconds and shares per part, one sentence on the sweep as a whole), or None
    when the records lack the times (runs still going, or stored by an older version).
    df: trials with wall/train/eval seconds and the child runs' start/end (ms);
    sweep_seconds: the wall time of each sweep run (store.sweep_run_seconds)."""
    need = {"wall_time_s", "train_time_s", "eval_time_s", "start_time", "end_time"}
    if df.empty or not need <= set(df.columns):
        return None
    d = df.dropna(subset=list(need))
    d = d[(d["end_time"] > 0) & (d["wall_time_s"] > 0)]
    if d.empty:
        return None
    child_s = (d["end_time"] - d["start_time"]) / 1000.0
    seconds = [d["train_time_s"].sum(), d["eval_time_s"].sum(),
               (d["wall_time_s"] - d["train_time_s"] - d["eval_time_s"]).clip(lower=0).sum(),
               (child_s - d["wall_time_s"]).clip(lower=0).sum()]
    parts = list(PARTS)
    lost = pd.to_numeric(d[LOST_TAG], errors="coerce").fillna(0).sum() if LOST_TAG in d else 0.0
    if lost > 0:   # attempts that failed (a dead node, an error Tune retried): their runs were replaced
        parts.append(LOST_PART)
        seconds.append(lost)
    total = sum(seconds)
    table = pd.DataFrame({"part": parts, "seconds": [round(s, 1) for s in seconds],
                          "share": [f"{100 * s / total:.1f} %" for s in seconds]})
    sentence = (f"{len(d)} trials, {total:.0f} s of trial time in all ({total / len(d):.1f} s per trial); "
                f"outside training: {100 * (total - seconds[0]) / total:.1f} %.")
    wall = sum(s for s in sweep_seconds if s > 0)
    lost_ms = 1000 * pd.to_numeric(d[LOST_TAG], errors="coerce").fillna(0) if LOST_TAG in d else 0
    busy = busy_seconds(zip(d["start_time"] - lost_ms, d["end_time"]))   # a lost attempt ran before its retry
    if wall > 0 and busy > wall + SWEEP_CLOCK_S * len(sweep_seconds):
        # trials only run inside sweep runs, whose logged times are short by at most one clock
        # interval each (a killed run): beyond that, a run's time is missing (one killed
        # outright by a version that logged its time only at its end)
        sentence += (f" Trials were running for {busy:.0f} s of wall time, more than the {wall:.0f} s the sweep "
                     "runs logged: the time of a sweep run killed before it logged it is missing, so no "
                     "overlap figure is given.")
    elif wall > 0:
        around = max(0.0, wall - busy)
        sentence += (f" The sweep ran {wall:.0f} s of wall time ({len(sweep_seconds)} sweep run(s)); trials overlapped "
                     f"{total / wall:.2f}-fold on average; for {around:.0f} s ({100 * around / wall:.1f} %) "
                     "no trial was running (Ray start-up, checks, aggregation).")
    return table, sentence



def per_method_times(df: pd.DataFrame) -> pd.DataFrame | None:
    """Per method: the wall minutes one trial took (fastest / mean / slowest) and its training
    speed in generator iterations per second, the figures a reader needs to price a rerun or a
    larger study. A trial continued from a checkpoint records only its last attempt's wall time,
    so it is left out of the wall columns (counted under "resumed"); its speed covers all attempts."""
    if df.empty or not {"objective", "wall_time_s", "its_per_s"} <= set(df.columns):
        return None
    d = df[pd.to_numeric(df["wall_time_s"], errors="coerce").gt(0)]
    if d.empty:
        return None
    resumed = (pd.to_numeric(d["resumed_from"], errors="coerce").gt(0) if "resumed_from" in d
               else pd.Series(False, index=d.index))
    rows = []
    for method, g in d.groupby("objective", sort=False):
        minutes = g.loc[~resumed[g.index], "wall_time_s"] / 60.0
        speed = pd.to_numeric(g["its_per_s"], errors="coerce")
        rows.append({"method": method, "trials": len(g), "resumed": int(resumed[g.index].sum()),
                     "fastest (min)": round(minutes.min(), 1), "mean (min)": round(minutes.mean(), 1),
                     "slowest (min)": round(minutes.max(), 1),
                     "iterations/s": f"{speed.min():.3g}-{speed.max():.3g}"})
    return pd.DataFrame(rows)
