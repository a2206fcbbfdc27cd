"""Has the headline metric settled when the budget ends?

A robustness table counts trials above a threshold at one budget; if the metric is still
climbing there, a larger budget moves trials across the threshold and the table says more
about the budget than about the objectives. This module turns the metric histories the
report reads from MLflow into (a) the mean per objective at every evaluation and (b) the
gain over the last evaluation interval of every trial that trained the whole budget, averaged
per architecture and then over architectures, with the 95 % t-interval over those architecture
means (`intervals.mean_interval`: the same unit as every other interval of the report; the
seeds of one architecture mostly move together, so counting them as independent trials would
claim more certainty than the study has), beside the gain in the interval before it, so a
reader sees whether the climb is slowing.

curves: long rows (run_id, objective, metric, step, value, and arch_id where known), as
report.build reads them. Without arch_id (or with a single architecture) the trials are the units.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .intervals import mean_interval
from .results import cluster_mean_ci, cluster_units


def on_schedule(curves: pd.DataFrame, every: int | None) -> pd.DataFrame:
    """Only the evaluation schedule's steps (a diverged trial's last evaluation, at whatever
    step it stopped, adds no column of its own: it leaves the mean when it stops)."""
    return curves[curves["step"] % every == 0] if every else curves


def per_trial(curves: pd.DataFrame, metric: str, every: int | None = None) -> pd.DataFrame:
    """One value of `metric` per (objective, trial, step): the last one logged, since a trial's
    final record repeats its last evaluation. Histories without run_id pass through as they are."""
    sub = on_schedule(curves[curves["metric"] == metric], every)
    if sub.empty or "run_id" not in sub:
        return sub
    return sub.groupby(["objective", "run_id", "step"], as_index=False, sort=False)["value"].last()


def curve_table(curves: pd.DataFrame, objectives, metric: str, every: int | None = None,
                scale: float = 1.0) -> pd.DataFrame:
    """Mean of `metric` over the trials at each evaluation: a row per objective, a column per
    generator iteration (label '1,000'); empty when there is no history of it."""
    sub = per_trial(curves, metric, every)
    if sub.empty:
        return pd.DataFrame()
    wide = sub.assign(value=sub["value"] * scale).groupby(["objective", "step"])["value"].mean().unstack("step")
    wide = wide.reindex([o for o in objectives if o in wide.index]).round(2)
    wide.columns = [f"{int(c):,}" for c in wide.columns]
    wide.index.name = "method"
    return wide


def final_gains(curves: pd.DataFrame, objectives, metric: str, budget: int, every: int) -> pd.DataFrame:
    """Per objective, over the trials whose history of `metric` reaches `budget`: their mean
    at the budget, the mean gain over the last interval (budget - every to budget) with its
    95 % CI over architectures, the mean gain over the interval before, and how many rose in
    the last one."""
    if "run_id" not in curves:
        return pd.DataFrame()
    sub = per_trial(curves, metric, every)
    if sub.empty:
        return pd.DataFrame()
    wide = sub.set_index(["objective", "run_id", "step"])["value"].unstack("step")
    arch_of = (curves.drop_duplicates("run_id").set_index("run_id")["arch_id"] if "arch_id" in curves
               else pd.Series(dtype=object))
    last, before, earlier = budget, budget - every, budget - 2 * every
    rows = []
    for obj in objectives:
        if obj not in wide.index.get_level_values("objective") or last not in wide or before not in wide:
            continue
        trials = wide.loc[obj]
        trials = trials[trials[last].notna() & trials[before].notna()]
        if trials.empty:
            continue
        gain = (trials[last] - trials[before]).astype(float)
        arch = pd.Series(arch_of.reindex(gain.index).to_numpy(), index=gain.index)
        if arch.isna().any():                    # architectures unknown: the trials are the units
            mean, lo, hi = (float(v) for v in mean_interval(gain.to_numpy()))
            units, kind = gain.to_numpy(), "trials"
        else:
            mean, lo, hi = cluster_mean_ci(gain, arch)
            units, kind = cluster_units(gain, arch)
        prior = (trials[before] - trials[earlier]).dropna() if earlier in trials and earlier > 0 else pd.Series(dtype=float)
        rows.append({"objective": obj, "trials": len(trials), "units": f"{len(units)} {kind}",
                     f"mean at {last:,}": trials[last].mean(),
                     "gain, last interval": mean, "ci_low": lo, "ci_high": hi,
                     "gain, interval before": prior.mean() if len(prior) else np.nan,
                     "rose in the last interval": f"{int((gain > 0).sum())} / {len(gain)}"})
    return pd.DataFrame(rows)


def settled_sentence(gains: pd.DataFrame, metric: str, every: int, lower: bool = False) -> str:
    """One sentence a reader can act on: which objectives were still improving over the last
    interval (95% CI of the mean gain above 0; below 0 where lower is better), which were getting
    worse, which neither."""
    up, down = gains[gains["ci_low"] > 0], gains[gains["ci_high"] < 0]
    flat = gains[~((gains["ci_low"] > 0) | (gains["ci_high"] < 0))]
    if lower:
        groups = {"improving": down, "worsening": up, "flat": flat}
        text = {"improving": f"still falling at the budget (mean change over the last {every:,} iterations below 0, "
                             "95% CI; lower is better): {}; a larger budget would move their trials further below "
                             "the thresholds",
                "worsening": "rising over the last interval (mean change above 0, 95% CI; lower is better): {}; the "
                             "figures at the budget are worse than what these trials had reached"}
    else:
        groups = {"improving": up, "worsening": down, "flat": flat}
        text = {"improving": f"still climbing at the budget (mean gain over the last {every:,} iterations above 0, "
                             "95% CI): {}; a larger budget would move their trials up the thresholds",
                "worsening": "falling over the last interval (mean change below 0, 95% CI): {}; the figures at the "
                             "budget are below what these trials had reached"}
    text["flat"] = "no change distinguishable from 0 in the last interval: {}"
    parts = [text[k].format(", ".join(g["objective"])) for k, g in groups.items() if len(g)]
    return f"{metric}: " + "; ".join(parts) + "."
