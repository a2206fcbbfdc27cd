"""The primary comparison: the one question a study is run to answer, tested alone.

A report prints many tests (every pair of objectives at every threshold, the score's paired
differences, the factor tests), and a statement that picks the threshold or the pair where a
test is strongest has had all those chances to find something. The experiment file names, in
advance, the comparison the study is for (`primary:` in harness/config.py): one or more pairs of
objectives, and either one of its thresholds or none (the headline score itself, before any
threshold). That comparison is tested alone, with no adjustment for the rest of the report
(several named pairs: Holm over those pairs only); everything else is secondary and adjusted
over the family the reader is shown (results.pair_tables, scores.paired_differences,
factor_tests).

Without `primary:` the default is the headline score's paired difference for the first two
objectives the experiment lists (its order is the author's: `objectives: [gan, wgan-gp]` reads
"gan against wgan-gp"); the report says that it is the default.

A study finished before `primary:` existed was still built for one comparison (the FMNIST study
for gan against wgan-gp, WGAN-GP's Table 5). `report NAME --primary A,B[@T]` and `pairs CSV
--primary A,B[@T]` declare it after the fact (`declare`): the stored experiment keeps what it
was run with (changing the yaml would break --resume's check), the report says in words that the
comparison was declared after the fact, and a study that named its primary in advance refuses
one declared later (choosing it after the data would be the forking path it exists to close).

The statistic, on the (architecture, seed) pairs where both trials have an outcome:
- headline score: the mean over architectures of a - b with its t-interval, and the exact
  sign-flip p over the architectures' mean differences (scores.paired_differences);
- at a threshold: the difference of the success rates with the MOVER interval
  (intervals.rate_difference_interval), only-a / only-b, and the sign-flip p over the
  architectures' net wins (results.pair_table); with a single architecture, McNemar on the seeds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import UsageError
from ..evaluate import metrics
from . import results, scores
from .intervals import rate_difference_interval

COLUMNS = ["a", "b", "measure", "pairs", "units", "a - b", "ci_low", "ci_high", "only a", "only b",
           "test", "p", "p (Holm over the primary pairs)"]


@dataclass
class Primary:
    pairs: list[tuple[str, str]]
    threshold: float | None      # in the metric's units; None: the headline score
    given: float | None          # the threshold as the experiment file gives it (a fraction when relative)
    named: bool                  # named in the experiment file, or the default
    after_the_fact: bool = False  # declared with --primary for a study stored without one

    def source(self) -> str:
        if self.after_the_fact:
            return ("declared after the fact with --primary (the study was built for it; its experiment "
                    "named none in advance)")
        if self.named:
            return "named in the experiment file (primary:)"
        return ("the default: the experiment names no primary comparison, so it is the headline score's paired "
                "difference for the first two objectives it lists")

    def measure(self, metric: str) -> str:
        """What is compared, in words: the score, or success on the metric's better side of the threshold."""
        if self.threshold is None:
            return f"{metric} (no threshold)"
        return f"success at {metric} {'<' if metrics.lower_is_better(metric) else '>'} {self.threshold:.4g}"


def resolve(exp: dict, thresholds: list[float]) -> Primary | None:
    """The experiment's primary comparison (a stored experiment dict; sweeps stored before the
    field existed get the default); None with fewer than two objectives. thresholds: the
    experiment's thresholds in the metric's units, in the order of exp['thresholds']."""
    spec = exp.get("primary") or {}
    pairs = [tuple(p) for p in spec.get("pairs") or []]
    given = spec.get("threshold")
    objectives = list(exp.get("objectives") or [])
    if not pairs:
        if len(objectives) < 2:
            return None
        return Primary([(objectives[0], objectives[1])], _absolute(exp, thresholds, given), given, named=False)
    return Primary(pairs, _absolute(exp, thresholds, given), given, named=True,
                   after_the_fact=bool(spec.get(AFTER_THE_FACT)))


AFTER_THE_FACT = "declared_after_the_fact"   # the key `declare` marks its primary with


def parse(texts: list[str]) -> tuple[list[list[str]], float | None]:
    """`--primary A,B[@T]` (repeatable, one threshold for all) -> ([[A, B], ...], T or None). A
    method may carry settings (gan@n_critic=5,gan-minimax@n_critic=5@0.5): T is after the last '@'
    where that part is not a setting."""
    pairs, given = [], set()
    for text in texts:
        pair_text, at, threshold = text.rpartition("@")
        if not at or "=" in threshold:       # no threshold; '@NAME=VALUE' is a method's setting (gan@n_critic=5)
            pair_text, threshold = text, ""
        pair = [x.strip() for x in pair_text.split(",")]
        if len(pair) != 2 or not all(pair):
            raise UsageError(f"--primary {text!r}: expected two objectives, A,B or A,B@THRESHOLD")
        try:
            given.add(float(threshold) if threshold.strip() else None)
        except ValueError:
            raise UsageError(f"--primary {text!r}: the threshold after @ is not a number") from None
        pairs.append(pair)
    if len(given) > 1:
        raise UsageError(f"--primary: one threshold for every pair (a primary comparison is one measure), "
                         f"got {sorted(given, key=str)}")
    return pairs, given.pop() if given else None


def declare(exp: dict, texts: list[str] | None) -> dict:
    """A copy of the stored experiment dict whose `primary` is the one declared after the fact
    (texts: the --primary values; None or empty: exp unchanged). Checked as the experiment file's
    `primary:` is (config._validate_primary): objectives of the experiment, distinct pairs named
    once, a threshold as written in its `thresholds`; refused where the experiment names one."""
    if not texts:
        return exp
    stored = exp.get("primary") or {}
    if stored.get("pairs") or stored.get("threshold") is not None:
        raise UsageError(f"--primary: the experiment names its primary comparison in advance ({stored}); "
                         "a comparison declared after the data cannot replace it")
    pairs, threshold = parse(texts)
    objectives = list(exp.get("objectives") or [])
    for a, b in pairs:
        unknown = [x for x in (a, b) if x not in objectives]
        if unknown:
            raise UsageError(f"--primary {a},{b}: {unknown} not among the study's objectives {objectives}")
        if a == b:
            raise UsageError(f"--primary {a},{b}: compares {a!r} with itself")
    if len({tuple(sorted(p)) for p in pairs}) != len(pairs):
        raise UsageError("--primary: a pair is named twice")
    listed = [float(t) for t in exp.get("thresholds") or []]
    if threshold is not None and threshold not in listed:
        raise UsageError(f"--primary: threshold {threshold:g} is not one of the study's thresholds "
                         f"{[f'{t:g}' for t in listed]} (as the experiment or --threshold writes them; the tables "
                         "hold only those)")
    return {**exp, "primary": {"pairs": pairs, "threshold": threshold, AFTER_THE_FACT: True}}


def _absolute(exp: dict, thresholds: list[float], given) -> float | None:
    if given is None:
        return None
    listed = [float(t) for t in exp.get("thresholds") or []]
    return thresholds[listed.index(float(given))] if float(given) in listed else float(given)


def comparison(df: pd.DataFrame, primary: Primary, rule: str = "paper") -> pd.DataFrame:
    """One row per primary pair: the statistic above, its 95 % CI and its p (raw; Holm over the
    primary pairs when there are several)."""
    rows = [(_on_score if primary.threshold is None else _at_threshold)(df, a, b, primary.threshold, rule)
            for a, b in primary.pairs]
    out = pd.DataFrame(rows, columns=COLUMNS[:-1])
    out[COLUMNS[-1]] = results.holm(out["p"].to_numpy(dtype=float)) if len(out) else []
    return out


def _on_score(df: pd.DataFrame, a: str, b: str, _threshold, _rule) -> dict:
    d = scores.paired_differences(df, [a, b]).iloc[0]
    return {"a": a, "b": b, "measure": "score", "pairs": int(d["pairs"]), "units": d["units"], "a - b": d["a - b"],
            "ci_low": d["ci_low"], "ci_high": d["ci_high"], "only a": np.nan, "only b": np.nan,
            "test": "sign flips over " + d["units"].split(" ", 1)[-1], "p": d["p (sign flips)"]}


def _at_threshold(df: pd.DataFrame, a: str, b: str, threshold: float, rule: str) -> dict:
    table = results.pair_table(df, a, b, [threshold], rule).iloc[0]
    keys = ["arch_id", "seed"]
    ok = df.assign(ok=results.success(df, threshold, rule).astype(float)) if len(df) else df.assign(ok=[])
    m = ok[ok["objective"] == a][keys + ["ok"]].merge(ok[ok["objective"] == b][keys + ["ok"]], on=keys,
                                                      suffixes=("_a", "_b"))
    by_arch = m.groupby("arch_id")[["ok_a", "ok_b"]].mean()
    if len(by_arch) > 1:
        units, kind, p, test = by_arch, "architectures", table["p (architectures)"], "sign flips over architectures"
    else:
        units, kind, p, test = m[["ok_a", "ok_b"]], "seeds", table["p (McNemar)"], "McNemar over seeds"
    d, low, high = (float(v) for v in rate_difference_interval(units["ok_a"].to_numpy(), units["ok_b"].to_numpy(),
                                                                len(m))) if len(m) else (np.nan,) * 3
    return {"a": a, "b": b, "measure": f"success at {threshold:.4g}", "pairs": len(m), "units": f"{len(units)} {kind}",
            "a - b": d, "ci_low": low, "ci_high": high, "only a": table[f"only {a}"], "only b": table[f"only {b}"],
            "test": test, "p": p}


def verdict(p: float) -> str:
    if not np.isfinite(p):
        return "not tested (too few units)"
    return "a finding (p < 0.05)" if p < 0.05 else "no difference established (p >= 0.05)"


def shown(table: pd.DataFrame, primary: Primary) -> pd.DataFrame:
    """The comparison's table as the reader sees it: the CI as one text column, the columns that
    do not apply (counts on the score, the Holm column for one pair) left out."""
    out = table.assign(ci_low=[scores.ci_text(lo, hi) for lo, hi in zip(table["ci_low"], table["ci_high"])])
    return out.rename(columns={"ci_low": "95% CI"}).drop(
        columns=["ci_high"] + (["only a", "only b"] if primary.threshold is None else [])
        + ([] if len(table) > 1 else [COLUMNS[-1]]))


def sentences(table: pd.DataFrame, primary: Primary, metric: str) -> list[str]:
    """The primary comparison in words, first in the report."""
    several = len(table) > 1
    head = (f"Primary comparison, {primary.source()}: {primary.measure(metric)}, "
            + ("tested alone (no adjustment for the rest of the report)" if not several else
               f"Holm-adjusted over its {len(table)} pairs only (no adjustment for the rest of the report)") + ".")
    out = [head]
    for r in table.to_dict("records"):
        p = r[COLUMNS[-1]] if several else r["p"]
        ci = scores.ci_text(r["ci_low"], r["ci_high"])
        what = "mean difference of the score" if r["measure"] == "score" else "difference of the success rates"
        counts = "" if r["measure"] == "score" else f"; only {r['a']} {int(r['only a'])}, only {r['b']} {int(r['only b'])}"
        out.append(f"{r['a']} - {r['b']}: {what} {r['a - b']:.3g} {ci} (95% CI over {r['units']}; {r['pairs']} "
                   f"(architecture, seed) pairs{counts}); {r['test']} p = {p:.3g}: {verdict(p)}.")
    return out
