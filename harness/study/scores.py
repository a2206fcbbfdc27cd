"""The headline score itself, before any threshold: per-objective summary and paired differences.

Success counts at thresholds (results.py) are the paper's statistic, but they discard how far
a trial cleared or missed a threshold: two objectives can split no (architecture, seed) pair at
any threshold and still differ by a few tenths of a score, or be the same within a tenth. The
paired difference of the score says which: its mean over the architectures (each one's mean
over its matched seeds) with the 95 % t-interval over those architecture means
(`intervals.mean_interval`, the unit every interval of the report uses), and the exact
sign-flip p with the architectures as the units (`results.sign_flip_p`; the seeds with a
single architecture), Holm-adjusted over the pairs of objectives this table shows (its own
family; the report's primary comparison, `primary.py`, is tested alone).

Only trials whose score counts for success have one here (status ok or collapsed, the paper
rule's `record.SUCCESS_RULES`): a diverged trial's score is missing or stale. The summary says
how many trials of each objective that leaves out; a pair needs both trials scored.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ..record import SUCCESS_RULES
from .results import cluster_mean_ci, cluster_units, holm, sign_flip_p


def scored(df: pd.DataFrame) -> pd.DataFrame:
    """The trials with a usable score, the score as a float."""
    if df.empty:
        return df.assign(score=pd.Series(dtype=float))
    out = df.assign(score=pd.to_numeric(df["score"], errors="coerce"))
    return out[out["status"].isin(SUCCESS_RULES["paper"]) & np.isfinite(out["score"])]


def ci_text(low: float, high: float) -> str:
    return f"[{low:.3g}, {high:.3g}]" if np.isfinite(low) and np.isfinite(high) else "-"


def summary(df: pd.DataFrame, objectives) -> pd.DataFrame:
    """Per objective: trials scored and left out, mean with 95 % CI, sd, min / median / max,
    and the mean of each seed (do the seeds agree?)."""
    ok = scored(df)
    rows = []
    for obj in objectives:
        sub = ok[ok["objective"] == obj]
        mean, lo, hi = cluster_mean_ci(sub["score"], sub["arch_id"])
        seeds = sub.groupby("seed")["score"].mean()
        rows.append({"objective": obj, "trials": len(sub),
                     "left out": int((df["objective"] == obj).sum()) - len(sub) if len(df) else 0,
                     "mean": mean, "95% CI": ci_text(lo, hi), "sd": sub["score"].std(),
                     "min": sub["score"].min(), "median": sub["score"].median(), "max": sub["score"].max(),
                     "mean per seed": " / ".join(f"{v:.3g}" for v in seeds) or "-"})
    return pd.DataFrame(rows)


def paired_differences(df: pd.DataFrame, objectives) -> pd.DataFrame:
    """Every pair (a, b) of objectives over the (architecture, seed) pairs where both are scored:
    mean of a - b with its 95 % CI, how many pairs a scored higher, and the sign-flip p on the
    architectures' mean differences (on the pairs with one architecture), raw and Holm-adjusted
    over the pairs (a pair whose units are all 0 has nothing to test: p = 1, not counted)."""
    ok = scored(df).set_index(["arch_id", "seed"])
    rows = []
    for a, b in itertools.combinations(objectives, 2):
        both = pd.concat([ok[ok["objective"] == a]["score"].rename("a"),
                          ok[ok["objective"] == b]["score"].rename("b")], axis=1, join="inner")
        diff = (both["a"] - both["b"]).reset_index()
        mean, lo, hi = cluster_mean_ci(diff[0], diff["arch_id"])
        units, kind = cluster_units(diff[0], diff["arch_id"])
        rows.append({"a": a, "b": b, "pairs": len(diff), "a - b": mean, "ci_low": lo, "ci_high": hi,
                     "a higher": f"{int((diff[0] > 0).sum())} / {len(diff)}", "units": f"{len(units)} {kind}",
                     "p (sign flips)": sign_flip_p(units), "in family": bool(np.any(units != 0))})
    out = pd.DataFrame(rows, columns=["a", "b", "pairs", "a - b", "ci_low", "ci_high", "a higher", "units",
                                      "p (sign flips)", "in family"])
    out["p (Holm)"] = holm(out["p (sign flips)"].to_numpy(), out["in family"].to_numpy(dtype=bool)) if len(out) else []
    return out


def readable(diffs: pd.DataFrame) -> pd.DataFrame:
    """paired_differences with its CI as one '[low, high]' column, for a table."""
    text = [ci_text(lo, hi) for lo, hi in zip(diffs["ci_low"], diffs["ci_high"])]
    return diffs.drop(columns=["ci_low", "ci_high"]).assign(**{"95% CI": text})[
        ["a", "b", "pairs", "a - b", "95% CI", "a higher", "units", "p (sign flips)", "p (Holm)"]]
