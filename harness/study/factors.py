"""Success rate per architecture factor value: the report's factor table and what the factor tests take.

Kept apart from results.py (the success rule, pair tables, rates) so that each stays a module a
reader can hold; `factor_tests.py` tests what `factor_effects` describes.
"""
from __future__ import annotations

import pandas as pd

from ..space import FACTORS
from .results import success


def inert_factors(df: pd.DataFrame) -> dict[str, list[str]]:
    """objective -> factors that change nothing in its networks: norm_d where the objective's
    D has no norm layers whatever the factor says (SN-GAN: spectral norm is its normalization)."""
    if df.empty or "objective.d_norm" not in df:
        return {}
    no_norm = df.loc[df["objective.d_norm"].astype(str) == "none", "objective"].unique()
    return {obj: ["norm_d"] for obj in no_norm}


def factor_effects(df: pd.DataFrame, threshold: float, objectives, rule: str = "paper") -> pd.DataFrame:
    """Success rate of each objective among trials with each value of each architecture factor
    (factors inert for an objective, see `inert_factors`, are left out for it)."""
    columns = ["factor", "value", "objective", "rate", "n"]
    if df.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    ok = success(df, threshold, rule)
    inert = inert_factors(df)
    for f in FACTORS:
        col = f"arch.{f}"
        if col not in df or df[col].nunique() < 2:
            continue
        for value in sorted(df[col].dropna().unique(), key=factor_value_order):
            for obj in objectives:
                if f in inert.get(obj, ()):
                    continue
                mask = (df[col] == value) & (df["objective"] == obj)
                if mask.any():
                    rows.append({"factor": f, "value": value, "objective": obj,
                                 "rate": float(ok[mask].mean()), "n": int(mask.sum())})
    return pd.DataFrame(rows, columns=columns)


def factor_value_order(v):
    try:
        return (0, float(v), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(v))
