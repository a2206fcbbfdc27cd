"""Which architecture factor values move an objective's success: permutation tests over architectures.

A trial's seeds share its architecture, so trials are not independent draws: a test that
counts trials (Fisher, chi-squared) would claim more certainty than the study has. Here the
unit is the architecture: each architecture's success rate is the mean over its seeds, and
for every (objective, factor, value) the architectures with that value are compared with
the rest by an exact / Monte Carlo permutation test of the difference in mean rate
(scipy.stats.permutation_test, two-sided). With a handful of architectures per value the
power is low, and a study's factor tests are many (objectives x factor values): they are one
family, and `p_holm` is each p Holm-adjusted over all of them together. A row whose side has a
single architecture has no test (p NaN), and a row where every architecture has the same rate
has nothing to test (p = 1 whatever the factor does): neither counts in the family
(`in_family`), and the report counts only the rows that do.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import permutation_test

from ..space import FACTORS
from .factors import factor_value_order, inert_factors
from .results import holm, success

COLUMNS = ["objective", "factor", "value", "rate_with", "rate_without", "difference",
           "archs_with", "archs_without", "p", "in_family", "p_holm"]


def _mean_difference(a, b, axis=-1):
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def permutation_p(with_value: np.ndarray, without: np.ndarray, seed: int = 0) -> float:
    """Two-sided p of the difference in mean rate; 1.0 when every rate is the same; NaN when
    a side has a single architecture (scipy asks for two, and one is no comparison)."""
    if min(len(with_value), len(without)) < 2:
        return float("nan")
    if np.ptp(np.concatenate([with_value, without])) == 0:
        return 1.0
    res = permutation_test((with_value, without), _mean_difference, permutation_type="independent",
                           alternative="two-sided", n_resamples=9999, vectorized=True,
                           random_state=np.random.default_rng(seed))
    return float(res.pvalue)


def _values_to_test(values: list) -> list:
    """Every value of a factor; a two-valued factor gets one row (the other is its mirror)."""
    ordered = sorted(values, key=factor_value_order)
    return ordered[-1:] if len(ordered) == 2 else ordered


def factor_tests(df: pd.DataFrame, threshold: float, objectives, rule: str = "paper") -> pd.DataFrame:
    """One row per (objective, factor, value): architecture-level success rates with and
    without the value, their difference, the permutation p, whether it counts in the family,
    and p Holm-adjusted over the family; sorted by p."""
    if df.empty:
        return pd.DataFrame(columns=COLUMNS)
    cols = [f"arch.{f}" for f in FACTORS if f"arch.{f}" in df and df[f"arch.{f}"].nunique() > 1]
    per_arch = (df.assign(ok=success(df, threshold, rule).astype(float))
                .groupby(["objective", "arch_id"] + cols, dropna=False)["ok"].mean().reset_index())
    inert = inert_factors(df)
    rows = []
    for obj in objectives:
        archs = per_arch[per_arch["objective"] == obj]
        for col in cols:
            factor = col.removeprefix("arch.")
            if factor in inert.get(obj, ()):
                continue
            for value in _values_to_test(list(archs[col].dropna().unique())):
                mask = (archs[col] == value).to_numpy()
                a, b = archs["ok"].to_numpy()[mask], archs["ok"].to_numpy()[~mask]
                if len(a) == 0 or len(b) == 0:
                    continue
                p = permutation_p(a, b)
                rows.append({"objective": obj, "factor": factor, "value": value,
                             "rate_with": a.mean(), "rate_without": b.mean(),
                             "difference": a.mean() - b.mean(), "archs_with": len(a),
                             "archs_without": len(b), "p": p,
                             "in_family": bool(np.isfinite(p) and np.ptp(np.concatenate([a, b])) > 0)})
    out = pd.DataFrame(rows, columns=COLUMNS[:-1])
    out["in_family"] = out["in_family"].astype(bool)
    out["p_holm"] = holm(out["p"].to_numpy(dtype=float), out["in_family"].to_numpy()) if len(out) else []
    return out.sort_values(["p", "objective"], kind="stable", na_position="last").reset_index(drop=True)
