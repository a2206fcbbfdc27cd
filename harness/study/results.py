"""Pure pandas over trial records: success, the paper's pair tables, rates, factor effects.

Success of a trial at threshold t, the paper's rule (WGAN-GP sec. 5.1, "inception score >
min score"): its headline metric (the evaluator's, e.g. an Inception score or modes covered, or
the experiment's `success_metric`) is beyond t on its better side: > t, or < t for a metric
declared lower-is-better (a FID, the exact W1: evaluate/metrics.py; the frame's `headline`
column names the metric, so every table built on `success` turns with it). Diverged and failed
trials never succeed (their metric is missing or stale); collapsed is a diagnostic reported
beside, not a veto. The `strict` rule (experiment `success_rule: strict`) also refuses collapsed trials.
Trials are paired by (arch_id, seed) for the only-A / only-B / both / neither tables.
"""
from __future__ import annotations

import itertools
from typing import Iterable

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..evaluate import metrics
from ..record import OUTCOMES, SUCCESS_RULES, TrialRecord, clears
from .intervals import mean_interval, rate_interval

IDENTITY = ["trial_id", "arch_id", "objective", "seed", "status", "headline", "score"]


def absolute_thresholds(thresholds, relative: bool, real_score: float | None) -> list[float]:
    """The thresholds in the metric's units: as given, or as fractions of the real data's score."""
    if not relative:
        return [float(t) for t in thresholds]
    if real_score is None or not np.isfinite(real_score):
        raise ValueError("relative thresholds need the real data's score (the sweep's parent run records it)")
    if real_score <= 0:   # fractions of 0 are all 0; of a negative score, they turn the rule around
        raise ConfigError("thresholds_relative", f"the real data's own score is {real_score:.4g}: thresholds as "
                                                 "fractions of it mean nothing; give absolute thresholds")
    return [round(float(t) * real_score, 6) for t in thresholds]


def frame(records: Iterable[TrialRecord]) -> pd.DataFrame:
    """One row per trial (`TrialRecord.to_row`). Should two attempts of one trial ever be
    stored, the latest started (`start_time`) is kept."""
    rows = [r.to_row() for r in records]
    df = pd.DataFrame(rows) if rows else pd.DataFrame(columns=IDENTITY)
    if df.empty:
        return df
    df["seed"] = pd.to_numeric(df["seed"], errors="coerce")
    if "start_time" in df:
        df = df.sort_values("start_time", kind="stable")
    df = df.drop_duplicates("trial_id", keep="last")
    return df.sort_values("trial_id").reset_index(drop=True)


def with_outcome(df: pd.DataFrame) -> pd.DataFrame:
    """The trials that have an outcome (record.OUTCOMES). A trial still running, or cut off
    with its sweep run, is neither a success nor a failure: every statistic leaves it out."""
    return df[df["status"].isin(OUTCOMES)] if len(df) else df


def metric_of(df: pd.DataFrame) -> str | None:
    """The success metric the frame's trials were judged by (its `headline` column)."""
    heads = df["headline"].dropna() if len(df) and "headline" in df else pd.Series(dtype=object)
    return str(heads.iloc[0]) if len(heads) else None


def lower_is_better(df: pd.DataFrame) -> bool:
    """Whether the frame's success metric succeeds below a threshold (evaluate/metrics.py)."""
    return metrics.lower_is_better(metric_of(df))


def success(df: pd.DataFrame, threshold: float, rule: str = "paper") -> pd.Series:
    """Which trials succeed at `threshold`: an outcome the rule counts, and a score beyond the
    threshold on the better side of each trial's own headline metric (`record.clears`)."""
    if df.empty:
        return pd.Series(dtype=bool)
    heads = df["headline"].tolist() if "headline" in df else [None] * len(df)
    known = {h: metrics.lower_is_better(h) for h in set(heads) if isinstance(h, str)}
    lower = np.array([known.get(h, False) for h in heads], dtype=bool)
    beyond = clears(pd.to_numeric(df["score"], errors="coerce").to_numpy(dtype=float), threshold, lower)
    return df["status"].isin(SUCCESS_RULES[rule]) & pd.Series(beyond, index=df.index)


def success_counts(df: pd.DataFrame, thresholds, objectives, rule: str = "paper") -> pd.DataFrame:
    """Rows: thresholds; columns: objectives; cells: trials that succeeded."""
    out = pd.DataFrame(0, index=pd.Index([float(t) for t in thresholds], name="threshold"),
                       columns=list(objectives), dtype=int)
    if df.empty:
        return out
    for t in out.index:
        ok = success(df, t, rule)
        for obj in objectives:
            out.loc[t, obj] = int(ok[df["objective"] == obj].sum())
    return out


def pair_table(df: pd.DataFrame, a: str, b: str, thresholds, rule: str = "paper") -> pd.DataFrame:
    """The paper's table for objectives a and b: trials paired by (arch_id, seed), with McNemar's
    p on the discordant pairs; then the architectures as the units: on how many each side
    survives more of the seeds, and the sign-flip p on those per-architecture net wins."""
    rows = []
    keys = ["arch_id", "seed"]
    for t in thresholds:
        s = df.assign(success=success(df, t, rule)) if len(df) else pd.DataFrame(columns=keys + ["objective", "success"])
        left = s[s["objective"] == a][keys + ["success"]]
        right = s[s["objective"] == b][keys + ["success"]]
        m = left.merge(right, on=keys, suffixes=("_a", "_b"))
        sa, sb = m["success_a"].astype(bool), m["success_b"].astype(bool)
        only_a, only_b = int((sa & ~sb).sum()), int((~sa & sb).sum())
        net = (sa.astype(int) - sb.astype(int)).groupby(m["arch_id"]).sum().to_numpy()
        rows.append({"threshold": float(t), f"only {a}": only_a, f"only {b}": only_b,
                     "both succeeded": int((sa & sb).sum()), "both failed": int((~sa & ~sb).sum()),
                     "pairs": len(m), "p (McNemar)": mcnemar_p(only_a, only_b),
                     "architectures": len(net), f"{a} ahead": int((net > 0).sum()), f"{b} ahead": int((net < 0).sum()),
                     "p (architectures)": sign_flip_p(net)})
    return pd.DataFrame(rows)


def all_pair_tables(df: pd.DataFrame, thresholds, objectives, rule: str = "paper") -> pd.DataFrame:
    """Every pair of objectives in long format: a, b, threshold, only_a, only_b, both, neither,
    pairs, p_mcnemar and p_holm (adjusted over the family: every pair at every threshold given),
    and the same with the architectures as the units."""
    rows = []
    for (a, b), table in pair_tables(df, thresholds, objectives, rule).items():
        for r in table.to_dict("records"):
            rows.append({"a": a, "b": b, "threshold": r["threshold"], "only_a": r[f"only {a}"],
                         "only_b": r[f"only {b}"], "both": r["both succeeded"], "neither": r["both failed"],
                         "pairs": r["pairs"], "p_mcnemar": r["p (McNemar)"], "p_holm": r["p (Holm)"],
                         "architectures": r["architectures"], "arch_ahead_a": r[f"{a} ahead"], "arch_ahead_b": r[f"{b} ahead"],
                         "p_arch": r["p (architectures)"], "p_arch_holm": r["p (arch., Holm)"]})
    return pd.DataFrame(rows, columns=["a", "b", "threshold", "only_a", "only_b", "both", "neither", "pairs",
                                       "p_mcnemar", "p_holm", "architectures", "arch_ahead_a", "arch_ahead_b",
                                       "p_arch", "p_arch_holm"])


def pair_tables(df: pd.DataFrame, thresholds, objectives, rule: str = "paper") -> dict[tuple[str, str], pd.DataFrame]:
    """pair_table for every pair of objectives, with "p (Holm)" and "p (arch., Holm)": its McNemar
    and architecture-level p adjusted over the whole family a reader of these tables is shown,
    every pair at every threshold (a statement that picks the threshold where a test is
    strongest has had pairs x thresholds chances). A test with nothing to test (no discordant
    pair; every architecture tied) reads p = 1 and is left out of the count (`in_family`)."""
    tables = {(a, b): pair_table(df, a, b, thresholds, rule) for a, b in itertools.combinations(objectives, 2)}
    if not tables:
        return tables
    for raw_column, adjusted_column, kind in (("p (McNemar)", "p (Holm)", "mcnemar"),
                                              ("p (architectures)", "p (arch., Holm)", "architectures")):
        raw = np.concatenate([t[raw_column].to_numpy(dtype=float) for t in tables.values()])
        counted = np.concatenate([_in_family(t, a, b, kind) for (a, b), t in tables.items()])
        adjusted = holm(raw, counted) if raw.size else raw
        start = 0
        for table in tables.values():
            table.insert(table.columns.get_loc(raw_column) + 1, adjusted_column, adjusted[start:start + len(table)])
            start += len(table)
    return tables


def _in_family(table: pd.DataFrame, a: str, b: str, kind: str) -> np.ndarray:
    """Which rows of a pair table hold a test that could come out below 1: McNemar given at least
    one discordant pair, the sign-flip test given at least one architecture not tied. Both tests
    are conditional on exactly that count, so leaving out the others keeps Holm's guarantee."""
    if kind == "mcnemar":
        return (table[f"only {a}"] + table[f"only {b}"]).to_numpy() > 0
    return ((table[f"{a} ahead"] + table[f"{b} ahead"]).to_numpy() > 0) & table["p (architectures)"].notna().to_numpy()


def pair_family(long: pd.DataFrame) -> dict[str, int]:
    """The size of the family behind `all_pair_tables`' adjusted p-values: pairs, thresholds, and
    how many McNemar and architecture-level tests it counts."""
    if long.empty:
        return {"pairs": 0, "thresholds": 0, "mcnemar": 0, "architectures": 0}
    mcnemar = (long["only_a"] + long["only_b"]) > 0
    arch = ((long["arch_ahead_a"] + long["arch_ahead_b"]) > 0) & long["p_arch"].notna()
    return {"pairs": len(long[["a", "b"]].drop_duplicates()),
            "thresholds": long["threshold"].nunique() if "threshold" in long else 1,
            "mcnemar": int(mcnemar.sum()), "architectures": int(arch.sum())}


def family_text(family: dict[str, int], column: str = "mcnemar") -> str:
    """'15 pairs x 7 thresholds: 98 tests (7 with nothing to test left out)', for prose."""
    shown = family["pairs"] * family["thresholds"]
    counted = family[column]
    return (f"{family['pairs']} pair{'s' if family['pairs'] != 1 else ''} x {family['thresholds']} "
            f"threshold{'s' if family['thresholds'] != 1 else ''}: {counted} test{'s' if counted != 1 else ''}"
            + (f" ({shown - counted} with nothing to test left out)" if shown > counted else ""))


ARCHITECTURE_COLUMNS = ("architectures", "p (architectures)", "p (arch., Holm)",
                        "arch_ahead_a", "arch_ahead_b", "p_arch", "p_arch_holm")


def drop_untested(table: pd.DataFrame) -> pd.DataFrame:
    """A pair table as a reader wants it: without the architecture-level columns when no such
    test could be made (a study of one architecture, where the seeds are the units and McNemar
    is the test)."""
    p = table["p (architectures)"] if "p (architectures)" in table else table.get("p_arch")
    if p is None or p.notna().any():
        return table
    return table.drop(columns=[c for c in table.columns if c in ARCHITECTURE_COLUMNS or c.endswith(" ahead")])


def holm(p, counted=None) -> np.ndarray:
    """Holm's step-down adjustment (Holm 1979): p-values comparable with 0.05 as a bound on the
    chance of any false 'difference' among the m tests of one family. With 6 objectives one
    threshold compares 15 pairs, so about 0.75 raw p-values below 0.05 are expected by chance
    alone. The k-th smallest p is multiplied by m - k + 1, running maxima keep the order, and
    nothing exceeds 1. (scipy offers only the false-discovery-rate adjustments.)
    counted: which tests the family counts (default: every finite p); a NaN p (no test made)
    is never counted and stays NaN, an uncounted finite p is returned as it is."""
    p = np.asarray(p, dtype=float)
    adjusted = p.copy()
    counted = np.isfinite(p) if counted is None else np.asarray(counted, dtype=bool) & np.isfinite(p)
    tested = np.flatnonzero(counted)
    order = tested[np.argsort(p[tested], kind="stable")]
    m = len(order)
    adjusted[order] = np.maximum.accumulate((m - np.arange(m)) * p[order]).clip(max=1.0)
    return adjusted


def status_counts(df: pd.DataFrame, objectives) -> pd.DataFrame:
    """Rows: objectives; columns: each outcome and the total."""
    out = pd.DataFrame(0, index=pd.Index(list(objectives), name="objective"), columns=list(OUTCOMES), dtype=int)
    if not df.empty:
        for obj in objectives:
            sub = df[df["objective"] == obj]
            for st in OUTCOMES:
                out.loc[obj, st] = int((sub["status"] == st).sum())
    out["total"] = out.sum(axis=1)
    return out


def cluster_units(values: pd.Series, arch: pd.Series) -> tuple[np.ndarray, str]:
    """The independent units behind a per-trial quantity: each architecture's mean over its
    seeds, or, with a single architecture, the trials (its seeds) themselves; and which."""
    per_arch = values.groupby(arch).mean().to_numpy() if len(values) else np.array([])
    return (per_arch, "architectures") if len(per_arch) > 1 else (values.to_numpy(dtype=float), "seeds")


def cluster_mean_ci(values: pd.Series, arch: pd.Series) -> tuple[float, float, float]:
    """(mean, CI low, CI high) of a continuous per-trial quantity: the mean over architectures
    of each one's mean over its seeds, with the 95 % t-interval over those architecture means
    (`intervals.mean_interval`; the seeds with one architecture). NaN bounds under two units."""
    units, _ = cluster_units(values, arch)
    mean = float(values.groupby(arch).mean().mean()) if len(values) else np.nan
    _, low, high = mean_interval(units)
    return mean, float(low), float(high)


def cluster_rate_ci(ok: pd.Series, arch: pd.Series) -> tuple[float, float, float]:
    """(rate, CI low, CI high) of a success indicator: the mean over architectures of each
    one's success share, with the 95 % interval of `intervals.rate_interval` (never zero-width,
    at 0/n and n/n included); NaN with no trial."""
    if not len(ok):
        return np.nan, np.nan, np.nan
    units, _ = cluster_units(ok.astype(float), arch)
    rate, low, high = rate_interval(units, len(ok))
    return float(rate), float(low), float(high)


def success_rates(df: pd.DataFrame, thresholds, objectives, rule: str = "paper") -> pd.DataFrame:
    """Success rate per objective and threshold with its 95 % interval over architectures: the
    rate is the mean over architectures of each one's success share across its seeds, the
    interval `cluster_rate_ci`'s. With a single architecture its seeds are the units (column
    `units` says which)."""
    rows = []
    for obj in objectives:
        sub = df[df["objective"] == obj] if len(df) else df
        arch = sub["arch_id"] if len(sub) else pd.Series(dtype=object)
        for t in thresholds:
            ok = success(sub, t, rule).astype(float) if len(sub) else pd.Series(dtype=float)
            rate, lo, hi = cluster_rate_ci(ok, arch)
            rows.append({"objective": obj, "threshold": float(t), "rate": rate, "ci_low": lo, "ci_high": hi,
                         "n": len(sub), "architectures": arch.nunique(), "units": cluster_units(ok, arch)[1]})
    return pd.DataFrame(rows)


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact McNemar test: two-sided p that the discordant pairs split 50/50 (1.0 with none)."""
    from scipy.stats import binomtest
    n = only_a + only_b
    return float(binomtest(only_b, n, 0.5).pvalue) if n else 1.0


SIGN_FLIP_RESAMPLES = 20_000
SIGN_FLIP_CELLS = 2 ** 22   # units x resamples held at once in the Monte Carlo branch (32 MB of float64)


def sign_flip_p(units) -> float:
    """Exact two-sided sign-flip test that the mean of independent paired differences is zero;
    NaN under two units. Used with the architectures as the units (`pair_table`,
    `scores.paired_differences`): McNemar counts every (architecture, seed) pair as independent,
    which holds for a claim about the architectures sampled (seed noise only) but not about the
    space they were drawn from: seeds of one architecture mostly agree (the report's noise floor),
    so 11 pairs won may be 4 architectures won 3 times over. With k units it cannot go below
    2^(1-k). Equal-magnitude differences (one seed per architecture) make it the exact sign test
    (binomial, as McNemar); otherwise scipy's permutation_test enumerates the sign flips, up to
    16 nonzero units. Past that, a Monte Carlo of 20,000 random sign flips, drawn in batches of
    bounded size as one matrix product each: scipy's permutation_test spends a Python call per
    resample there (35 s for 10,000 units, and all resamples in memory at once by default),
    which made a large trials.csv take minutes and gigabytes (issue 23). Its p counts the
    observed statistic among the resamples, (hits + 1) / (resamples + 1), as scipy's does."""
    from scipy.stats import binomtest, permutation_test
    values = np.asarray(units, dtype=float)
    if len(values) < 2:
        return np.nan
    nonzero = values[values != 0]
    if not len(nonzero):
        return 1.0
    if np.allclose(np.abs(nonzero), abs(nonzero[0])):
        return float(binomtest(int((nonzero > 0).sum()), len(nonzero), 0.5).pvalue)
    if len(nonzero) <= 16:
        return float(permutation_test((nonzero,), np.mean, permutation_type="samples", alternative="two-sided",
                                      n_resamples=np.inf, rng=np.random.default_rng(0)).pvalue)
    rng = np.random.default_rng(0)
    k, total = len(nonzero), nonzero.sum()
    observed = abs(total) * (1 - 1e-12)      # scipy's relative tolerance for ties with the observed value
    batch, hits, done = max(1, SIGN_FLIP_CELLS // k), 0, 0
    while done < SIGN_FLIP_RESAMPLES:
        n = min(batch, SIGN_FLIP_RESAMPLES - done)
        # a random bit per unit (8 per random byte); the flipped sum is 2 x (sum where the bit is 1) - total
        plus = np.unpackbits(rng.integers(0, 256, size=(n, (k + 7) // 8), dtype=np.uint8), axis=1, count=k)
        hits += int((np.abs(2 * (plus.astype(float) @ nonzero) - total) >= observed).sum())
        done += n
    return (hits + 1) / (SIGN_FLIP_RESAMPLES + 1)


def significance_mark(p: float) -> str:
    return "**" if p < 0.01 else "*" if p < 0.05 else ""


def net_wins(df: pd.DataFrame, threshold: float, objectives, rule: str = "paper", thresholds=None) -> pd.DataFrame:
    """Row A, column B: (only A) - (only B) over the (architecture, seed) pairs, with * for
    McNemar p < 0.05 and ** for p < 0.01, both Holm-adjusted over the family of the pair tables
    (every pair at every one of `thresholds`; default: `threshold` alone).
    Positive: A survives where B fails more often."""
    out = pd.DataFrame("", index=pd.Index(list(objectives), name="A \\ B"), columns=list(objectives))
    family = list(thresholds) if thresholds is not None else [threshold]
    if float(threshold) not in {float(t) for t in family}:
        family.append(threshold)
    long = all_pair_tables(df, family, objectives, rule)
    for r in long[long["threshold"] == float(threshold)].itertuples():
        mark = significance_mark(r.p_holm)
        out.loc[r.a, r.b], out.loc[r.b, r.a] = f"{r.only_a - r.only_b:+d}{mark}", f"{r.only_b - r.only_a:+d}{mark}"
    for a in objectives:
        out.loc[a, a] = "-"
    return out


def noise_floor(df: pd.DataFrame, thresholds, rule: str = "paper") -> tuple[float, int]:
    """Share of (architecture, objective, threshold) outcomes that differ between seeds, over
    the groups with two seeds or more; and how many such groups there were. Pooled over
    thresholds, it is diluted by thresholds where every trial is on one side:
    `noise_floor_by_threshold` gives it per threshold."""
    table = noise_floor_by_threshold(df, thresholds, rule)
    groups = int(table["groups"].sum()) if len(table) else 0
    return (float(table["differ"].sum() / groups), groups) if groups else (float("nan"), 0)


def noise_floor_by_threshold(df: pd.DataFrame, thresholds, rule: str = "paper") -> pd.DataFrame:
    """Per threshold: the (architecture, objective) groups with two seeds or more, how many of
    them have seeds that disagree (some succeed, some fail), and that share."""
    columns = ["threshold", "groups", "differ", "share"]
    multi = df.groupby(["arch_id", "objective"])["seed"].transform("nunique") > 1 if len(df) else pd.Series(dtype=bool)
    sub = df[multi] if len(df) else df
    if sub.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for t in thresholds:
        differ = sub.assign(ok=success(sub, t, rule)).groupby(["arch_id", "objective"])["ok"].nunique() > 1
        rows.append({"threshold": float(t), "groups": len(differ), "differ": int(differ.sum()),
                     "share": float(differ.mean())})
    return pd.DataFrame(rows, columns=columns)


def reference_threshold(df: pd.DataFrame, thresholds, rule: str = "paper") -> float:
    """The threshold whose overall success rate is nearest 50 %: where factors tell most apart;
    of two as near, the laxer (the lower one, the higher one where lower is better)."""
    lax = -1.0 if lower_is_better(df) else 1.0
    if df.empty:
        return min((lax * float(t), float(t)) for t in thresholds)[1]
    return min((abs(success(df, t, rule).mean() - 0.5), lax * float(t), float(t)) for t in thresholds)[2]
