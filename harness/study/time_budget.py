"""Where a sweep's time went, from its own MLflow records: training, evaluation, a trial's
set-up, and what Ray, Tune and MLflow add around each trial and around the whole sweep.

Each trial's record splits its run_trial wall time into training, evaluation and the rest
(building nets, loading data, final samples); its child run's lifetime (created when Tune
starts the trial, ended when the driver records it) adds the Ray worker, Tune's reporting
and MLflow's writes; the parent run's lifetime adds Ray's start-up, the checks and the
aggregation.
"""
from __future__ import annotations

import pandas as pd

PARTS = ("training", "evaluation", "trial set-up and final samples", "Ray, Tune and MLflow around the trial")


def time_budget(df: pd.DataFrame, sweep_spans: list[tuple[int, int]]) -> tuple[pd.DataFrame, str] | None:
    """(table of seconds and shares per part, one sentence on the sweep as a whole), or None
    when the records lack the times (runs still going, or stored by an older version).
    df: trials with wall/train/eval seconds and the child runs' start/end (ms);
    sweep_spans: each parent run's (start ms, end ms)."""
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
    total = sum(seconds)
    table = pd.DataFrame({"part": PARTS, "seconds": [round(s, 1) for s in seconds],
                          "share": [f"{100 * s / total:.1f} %" for s in seconds]})
    spans = [(s, e) for s, e in sweep_spans if s is not None and e is not None and e > s]
    sentence = (f"{len(d)} trials, {total:.0f} s of trial time in all ({total / len(d):.1f} s per trial); "
                f"outside training: {100 * (total - seconds[0]) / total:.1f} %.")
    if spans:
        wall = sum(e - s for s, e in spans) / 1000.0
        first, last = d["start_time"].min(), d["end_time"].max()
        around = max(0.0, wall - (last - first) / 1000.0)
        sentence += (f" The sweep ran {wall:.0f} s of wall time ({len(spans)} sweep run(s)); trials overlapped "
                     f"{total / max(wall, 1e-9):.2f}-fold on average; {around:.0f} s "
                     f"({100 * around / wall:.1f} %) passed before the first trial started or after the last "
                     "ended (Ray start-up, checks, aggregation; with resumed runs, the gap between them too).")
    return table, sentence
