"""The report's answer, first and in words: the primary comparison (tested alone), then the
secondary results, each judged after the adjustment over the family the reader is shown, with
what only clears 0.05 before it called a lead, not a finding; the seed noise floor; and why
"no difference" may say nothing."""
from __future__ import annotations

import pandas as pd

from .. import results
from .document import md_table, threshold_text

RULE_TEXT = {"paper": "headline metric > threshold (the paper's rule; diverged and failed trials never succeed, "
                      "collapse is a diagnostic)",
             "strict": "status ok and headline metric > threshold (strict rule: collapsed trials fail too)"}
LEAD = "a lead, not a finding"


def rule_text(rule: str, metric: str | None = None, lower: bool = False) -> str:
    """RULE_TEXT[rule] with the metric named, and turned where lower is better: 'w1_exact_2k <
    threshold (lower is better; the paper's rule; ...)'."""
    text = RULE_TEXT[rule].replace("headline metric", metric or "headline metric")
    if lower:
        text = text.replace(" > threshold (", " < threshold (lower is better; ", 1)
    return text


def at_text(df: pd.DataFrame, t: float) -> str:
    """'threshold 5', or 'w1_exact_2k < 0.2' where the frame's metric is lower-is-better."""
    metric = results.metric_of(df)
    return f"{metric} < {threshold_text(t)}" if results.lower_is_better(df) else f"threshold {threshold_text(t)}"


def tables_markdown(df: pd.DataFrame, thresholds, objectives, rule: str = "paper") -> str:
    """Success counts and every pair table as markdown (also the parent run's artifact)."""
    long = results.all_pair_tables(df, thresholds, objectives, rule)
    family = results.family_text(results.pair_family(long))
    lower = results.lower_is_better(df)
    rule_shown = rule_text(rule, results.metric_of(df), lower) if lower else RULE_TEXT[rule]
    parts = [f"## Successes per objective ({rule_shown})", "",
             md_table(results.success_counts(df, thresholds, objectives, rule), index=True), ""]
    for (a, b), table in results.pair_tables(df, thresholds, objectives, rule).items():
        parts += [f"## {a} vs {b} (paired by architecture and seed; exact McNemar p on the discordant pairs, "
                  f"and Holm-adjusted over the family of these tables, {family})", "",
                  md_table(results.drop_untested(table)), ""]
    return "\n".join(parts)


def families_sentence(pair_family: dict, score_tests: int | None, factor_tests: int | None) -> str:
    """Which family each secondary p is adjusted over, and its size."""
    arch = pair_family["architectures"]
    parts = [f"the pair tables and the net-wins matrix: every pair at every threshold, "
             f"{results.family_text(pair_family)} (McNemar"
             + (f"; {arch} with the architectures as the units)" if arch else ")")]
    if score_tests is not None:
        parts.append(f"the score's paired differences: {score_tests} test{'s' if score_tests != 1 else ''}")
    if factor_tests is not None:
        parts.append(f"the factor tests: all {factor_tests} together" if factor_tests else
                     "the factor tests: none has anything to test")
    return ("Everything after the primary comparison is secondary: each of its p-values is Holm-adjusted over the "
            "family of tests the reader is shown (a test with nothing to test, p = 1 whatever the objectives do, "
            "is left out of the count): " + "; ".join(parts) + f". A secondary p below 0.05 only before that "
            f"adjustment is {LEAD}.")


def summary_sentences(df: pd.DataFrame, exp: dict, thresholds, t_ref: float, rule: str,
                      noise_at: float | None = None) -> list[str]:
    """Rates at the reference threshold, the pairs that survive their family, the noise floor
    (at `noise_at`: the primary comparison's threshold, else the reference one)."""
    objectives = list(exp["objectives"])
    rates = results.success_rates(df, [t_ref], objectives, rule).set_index("objective")
    n_arch, seeds = df["arch_id"].nunique(), sorted(int(s) for s in df["seed"].dropna().unique())
    n_pairs = len(df[["arch_id", "seed"]].drop_duplicates())   # fewer than n_arch x seeds in a partial study
    out = [f"At {at_text(df, t_ref)} (where about half of all trials succeed), over {n_pairs} (architecture, seed) "
           f"pairs ({n_arch} architectures, seeds {seeds}), {exp['budget']['iterations']} generator iterations each: "
           + "; ".join(f"{o} no outcome yet" if pd.isna(rates.loc[o, "rate"]) else
                       f"{o} {rates.loc[o, 'rate']:.2f} [{rates.loc[o, 'ci_low']:.2f}, {rates.loc[o, 'ci_high']:.2f}]"
                       for o in objectives) + f" (success rate, 95% CI over {rates['units'].iloc[0]}, "
           "harness/study/intervals.py)."]
    long = results.all_pair_tables(df, thresholds, objectives, rule)
    family = results.pair_family(long)
    at = long[long["threshold"] == float(t_ref)]
    out.append(pair_sentence(at, family))
    arch = architecture_sentence(at, family)
    if arch:
        out.append(arch)
    noise_at = t_ref if noise_at is None else noise_at
    out.append(noise_sentence(results.noise_floor_by_threshold(df, thresholds, rule), noise_at, at_text(df, noise_at)))
    return out


def noise_sentence(by_threshold: pd.DataFrame, at: float, where: str | None = None) -> str:
    """The seed noise floor at one threshold (pooled over thresholds it is diluted by those
    where every trial is on one side); the per-threshold table follows it in the report."""
    if by_threshold.empty or not by_threshold["groups"].sum():
        return "Noise floor: not measured (one seed per architecture): low-threshold outcomes may be coin flips."
    row = by_threshold[by_threshold["threshold"] == float(at)]
    if row.empty:
        return "Noise floor: per threshold below."
    r = row.iloc[0]
    where = where or f"threshold {threshold_text(at)}"
    return (f"Noise floor at {where}: {100 * r['share']:.0f}% of {int(r['groups'])} "
            "(architecture, objective) outcomes change between seeds (per threshold below; pooled over "
            "thresholds it reads lower, diluted by thresholds where every trial is on one side).")


def _won(r) -> str:
    a_first = r.only_a > r.only_b
    winner, loser = (r.a, r.b) if a_first else (r.b, r.a)
    text = (f"{winner} over {loser} ({max(r.only_a, r.only_b)} vs {min(r.only_a, r.only_b)} pairs, "
            f"p = {r.p_mcnemar:.2g}, Holm {r.p_holm:.2g}")
    if pd.notna(r.p_arch):
        ahead, behind = (r.arch_ahead_a, r.arch_ahead_b) if a_first else (r.arch_ahead_b, r.arch_ahead_a)
        text += f"; architectures {ahead} vs {behind} of {r.architectures}, Holm {r.p_arch_holm:.2g}"
    return text + ")"


def _family_size(pairs: pd.DataFrame, family: dict | None, column: str) -> tuple[int, str]:
    """(m, its description): the family given, else the pairs at hand (one threshold)."""
    if family is None:
        family = results.pair_family(pairs)
    key = "mcnemar" if column == "p_mcnemar" else "architectures"
    return family[key], results.family_text(family, key)


def architecture_sentence(pairs: pd.DataFrame, family: dict | None = None) -> str:
    """Which of the held pairs also hold with the architectures as the units (the claim about
    the space, not only about the architectures sampled); '' where that test was not made.
    family: results.pair_family of the whole family (default: these rows alone)."""
    held = pairs[pairs["p_holm"] < 0.05]
    if not len(held) or held["p_arch"].isna().all():
        return ""
    k = int(held["architectures"].max())
    m, described = _family_size(pairs, family, "p_arch")
    floor = min(1.0, max(m, 1) * 2.0 ** (1 - k))
    both = held[held["p_arch_holm"] < 0.05]
    leads = held[(held["p_arch"] < 0.05) & (held["p_arch_holm"] >= 0.05)]
    names = "; ".join(f"{r.a} vs {r.b}" for r in both.itertuples())
    text = (f"McNemar counts each (architecture, seed) pair as independent: a claim about these {k} architectures "
            "under seed noise. As a claim about the architecture space (each architecture's net wins over its "
            f"seeds as one unit, exact sign-flip test, Holm-adjusted over {described}; with {k} architectures "
            f"it cannot go below p = {floor:.2g}): " + (f"holds for {names}." if len(both) else "none of these holds."))
    if len(leads):
        text += (f" Below 0.05 only before the adjustment ({LEAD}): "
                 + "; ".join(f"{r.a} vs {r.b} (p = {r.p_arch:.2g})" for r in leads.itertuples()) + ".")
    if floor >= 0.05:
        text += " More architectures, not more seeds, would make such a claim possible."
    return text


def pair_sentence(pairs: pd.DataFrame, family: dict | None = None) -> str:
    """Which pairs of objectives differ beyond noise at one threshold: exact McNemar, judged
    after Holm's adjustment over the family (every pair at every threshold the reader is shown;
    default: these rows alone); pairs below 0.05 only before it are named apart, as leads."""
    held = pairs[pairs["p_holm"] < 0.05]
    raw_only = pairs[(pairs["p_mcnemar"] < 0.05) & (pairs["p_holm"] >= 0.05)]
    _, described = _family_size(pairs, family, "p_mcnemar")
    what = f"exact McNemar on the discordant pairs, Holm-adjusted over {described}"
    if len(held):
        text = f"Differences beyond noise ({what}, p < 0.05): " + "; ".join(map(_won, held.itertuples())) + "."
    else:
        text = f"No pair of objectives differs beyond noise at this threshold ({what}: all >= 0.05)."
    if len(raw_only):
        text += (f" Below 0.05 only before the adjustment ({LEAD}): "
                 + "; ".join(map(_won, raw_only.itertuples())) + ".")
    if not len(held):
        text += power_caveat(int(pairs["pairs"].max()) if len(pairs) else 0)
    return text


def score_sentence(diffs: pd.DataFrame, metric: str, lower: bool = False) -> str:
    """The score's paired differences that survive their family (Holm over the pairs), and the
    leads (an interval clear of 0 or p < 0.05 before the adjustment, not after); lower: the
    metric is lower-is-better, so a negative a - b favours a (the sentence says so)."""
    if diffs.empty:
        return ""
    m = int(diffs["in family"].sum()) if "in family" in diffs else len(diffs)
    held = diffs[diffs["p (Holm)"] < 0.05]
    leads = diffs[(diffs["p (Holm)"] >= 0.05) & ((diffs["p (sign flips)"] < 0.05) |
                                                 (diffs["ci_low"] > 0) | (diffs["ci_high"] < 0))]

    def name(r):
        return f"{r['a']} - {r['b']} = {r['a - b']:.3g} (p = {r['p (sign flips)']:.2g}, Holm {r['p (Holm)']:.2g})"
    better = " (lower is better)" if lower else ""
    text = (f"{metric} itself{better}, paired differences (exact sign-flip test, Holm-adjusted over {m} "
            f"test{'s' if m != 1 else ''}): " + ("; ".join(name(r) for _, r in held.iterrows()) + " differ."
                                                 if len(held) else "no pair differs after the adjustment."))
    if len(leads):
        text += f" {LEAD[0].upper() + LEAD[1:]}: " + "; ".join(name(r) for _, r in leads.iterrows()) + "."
    return text


def power_caveat(n_pairs: int) -> str:
    """Why 'no difference' can say nothing: an exact two-sided McNemar test on n pairs cannot go
    below p = 2^(1-n), even when one side wins every pair (0.0625 for 5 pairs)."""
    floor = 2.0 ** (1 - n_pairs) if n_pairs else 1.0
    if floor < 0.05:
        return ""
    return (f" With {n_pairs} pairs per comparison this test cannot reach p < 0.05 even when one side wins "
            f"every pair (smallest attainable p = {floor:.3g}): the study is too small to tell objectives "
            "apart; more seeds or architectures would.")


def noise_table(by_threshold: pd.DataFrame) -> pd.DataFrame:
    """The per-threshold seed noise floor as a table."""
    return by_threshold.assign(share=(100 * by_threshold["share"]).round(0).astype(int).astype(str) + "%").rename(
        columns={"groups": "(architecture, objective) groups", "differ": "seeds disagree", "share": "share"})

