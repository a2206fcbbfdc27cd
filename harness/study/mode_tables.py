"""Mode-collapse figures per method (mean +- standard error over seeds) beside PacGAN / VEEGAN.

PacGAN's Table 1 reports modes covered, the high-quality share in percent and the reverse KL
of the high-quality samples' mode histogram as mean +- standard error over runs; ours are the
same three (toy2d evaluator: `modes_covered`, `hq_share`, `reverse_kl`) over the study's
seeds, so the columns read alike. The budget differs (the report says which); the table is
a comparison of protocol-matched figures, not a test. Given the evaluator's floors (what it
reads on the data itself, study/floors.py), a last row and a last column say what a perfect
generator would read: the high-quality share of the data is about 99 %, not 100, and its
reverse KL is small but not 0.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..published import published_mode_rows
from .floors import floor_text
from .learning_curves import curve_table

METRICS = (("modes_covered", 1.0, "{:.1f}"), ("hq_share", 100.0, "{:.1f}"), ("reverse_kl", 1.0, "{:.2f}"))


def _mean_se(values: pd.Series, scale: float, fmt: str) -> str:
    v = pd.to_numeric(values, errors="coerce").dropna() * scale
    if v.empty:
        return "-"
    se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
    return fmt.format(v.mean()) + ("" if np.isnan(se) else " +- " + fmt.format(se))


def _published(value, se, fmt: str) -> str:
    if value is None:
        return "-"
    return fmt.format(value) + ("" if se is None else " +- " + fmt.format(se))


def mode_table(df: pd.DataFrame, objectives, dataset: str, floors: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per method (ours, n seeds) followed by its published rows, if any; then, given
    floors, the data itself."""
    if df.empty or "modes_covered" not in df:
        return pd.DataFrame()
    rows = []
    for obj in objectives:
        ours = df[df["objective"] == obj]
        if ours.empty:
            continue
        rows.append({"method": obj, "source": f"ours ({ours['seed'].nunique()} seeds)",
                     **{m: _mean_se(ours[m] if m in ours else pd.Series(dtype=float), s, f) for m, s, f in METRICS}})
        for pub in published_mode_rows(obj, dataset):
            rows.append({"method": pub.label, "source": pub.source,
                         "modes_covered": _published(pub.modes, pub.modes_se, "{:.1f}"),
                         "hq_share": _published(pub.hq_percent, pub.hq_se, "{:.1f}"),
                         "reverse_kl": _published(pub.reverse_kl, pub.reverse_kl_se, "{:.2f}")})
    if floors is not None and rows:
        r = floors.iloc[0]
        rows.append({"method": "data itself", "source": f"{int(r['draws'])} draws of {int(r['n']):,} points",
                     **{m: floor_text(floors, m, s) for m, s, _ in METRICS}})   # 3 digits: 0.0012, not 0.00
    return pd.DataFrame(rows).rename(columns={"hq_share": "high quality %"})


def mode_curves(curves: pd.DataFrame, objectives, every: int | None = None,
                floors: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """The same three figures at every evaluation, mean over seeds: one table per figure, a
    row per method and a column per generator iteration (high quality in %), so a reader
    sees whether the trend had settled when the budget ran out.
    curves: long rows (objective, metric, step, value), as the report reads them from MLflow.
    every: the evaluation schedule; only its steps become columns, so a diverged trial's last
    evaluation (at whatever step it stopped) does not add a column of its own: it leaves
    the mean when it stops. floors: a last column with what the data itself reads."""
    tables = {}
    for metric, scale, _ in METRICS:
        wide = curve_table(curves, objectives, metric, every, scale)
        if not wide.empty:
            if floors is not None:
                wide["data itself"] = floor_text(floors, metric, scale)
            tables[{"hq_share": "high quality %"}.get(metric, metric)] = wide
    return tables
