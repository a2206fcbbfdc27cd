"""The report's answer, first and in words: success rates with CIs at the reference threshold,
the pairs that differ beyond noise, the seed noise floor, and why "no difference" may say nothing."""
from __future__ import annotations

import pandas as pd

from .. import results
from .document import md_table, threshold_text


RULE_TEXT = {"paper": "headline metric > threshold (the paper's rule; diverged and failed trials never succeed, "
                      "collapse is a diagnostic)",
             "strict": "status ok and headline metric > threshold (strict rule: collapsed trials fail too)"}


def tables_markdown(df: pd.DataFrame, thresholds, objectives, rule: str = "paper") -> str:
    """Success counts and every pair table as markdown (also the parent run's artifact)."""
    parts = [f"## Successes per objective ({RULE_TEXT[rule]})", "",
             md_table(results.success_counts(df, thresholds, objectives, rule), index=True), ""]
    for (a, b), table in results.pair_tables(df, thresholds, objectives, rule).items():
        parts += [f"## {a} vs {b} (paired by architecture and seed; exact McNemar p on the discordant pairs, "
                  "and Holm-adjusted over the pairs of objectives)", "", md_table(results.drop_untested(table)), ""]
    return "\n".join(parts)


def summary_sentences(df: pd.DataFrame, exp: dict, thresholds, t_ref: float, rule: str) -> list[str]:
    """The answer first: rates at the reference threshold, significant pairs, the noise floor."""
    objectives = list(exp["objectives"])
    rates = results.success_rates(df, [t_ref], objectives, rule).set_index("objective")
    n_arch, seeds = df["arch_id"].nunique(), sorted(int(s) for s in df["seed"].dropna().unique())
    n_pairs = len(df[["arch_id", "seed"]].drop_duplicates())   # fewer than n_arch x seeds in a partial study
    out = [f"At threshold {threshold_text(t_ref)} (where about half of all trials succeed), over {n_pairs} (architecture, seed) "
           f"pairs ({n_arch} architectures, seeds {seeds}), {exp['budget']['iterations']} generator iterations each: "
           + "; ".join(f"{o} no outcome yet" if pd.isna(rates.loc[o, "rate"]) else
                       f"{o} {rates.loc[o, 'rate']:.2f} [{rates.loc[o, 'ci_low']:.2f}, {rates.loc[o, 'ci_high']:.2f}]"
                       for o in objectives) + f" (success rate, 95% CI resampling {rates['resampled'].iloc[0]})."]
    pairs = results.all_pair_tables(df, [t_ref], objectives, rule)
    out.append(pair_sentence(pairs))
    arch = architecture_sentence(pairs)
    if arch:
        out.append(arch)
    share, groups = results.noise_floor(df, thresholds, rule)
    out.append(f"Noise floor: {100 * share:.0f}% of {groups} (architecture, objective, threshold) outcomes change "
               "between seeds." if groups else
               "Noise floor: not measured (one seed per architecture): low-threshold outcomes may be coin flips.")
    return out


def _won(r) -> str:
    a_first = r.only_a > r.only_b
    winner, loser = (r.a, r.b) if a_first else (r.b, r.a)
    text = (f"{winner} over {loser} ({max(r.only_a, r.only_b)} vs {min(r.only_a, r.only_b)} pairs, "
            f"p = {r.p_mcnemar:.2g}, Holm {r.p_holm:.2g}")
    if pd.notna(r.p_arch):
        ahead, behind = (r.arch_ahead_a, r.arch_ahead_b) if a_first else (r.arch_ahead_b, r.arch_ahead_a)
        text += f"; architectures {ahead} vs {behind} of {r.architectures}, Holm {r.p_arch_holm:.2g}"
    return text + ")"


def architecture_sentence(pairs: pd.DataFrame) -> str:
    """Which of the held pairs also hold with the architectures as the units (the claim about
    the space, not only about the architectures sampled); '' where that test was not made."""
    held = pairs[pairs["p_holm"] < 0.05]
    if not len(held) or held["p_arch"].isna().all():
        return ""
    k, m = int(held["architectures"].max()), int(pairs["p_arch"].notna().sum())
    floor = min(1.0, m * 2.0 ** (1 - k))
    both = held[held["p_arch_holm"] < 0.05]
    names = "; ".join(f"{r.a} vs {r.b}" for r in both.itertuples())
    return (f"McNemar counts each (architecture, seed) pair as independent: a claim about these {k} architectures "
            "under seed noise. As a claim about the architecture space (each architecture's net wins over its "
            f"seeds as one unit, exact sign-flip test, Holm-adjusted over the {m} pairs; with {k} architectures it "
            f"cannot go below p = {floor:.2g}): " + (f"holds for {names}." if len(both) else "none of these holds.")
            + (" More architectures, not more seeds, would make such a claim possible." if floor >= 0.05 else ""))


def pair_sentence(pairs: pd.DataFrame) -> str:
    """Which pairs of objectives differ beyond noise at one threshold: exact McNemar, judged
    after Holm's adjustment over every pair compared (m pairs give m chances of a small p);
    pairs below 0.05 only before the adjustment are named apart, as suggestive."""
    m = len(pairs)
    held = pairs[pairs["p_holm"] < 0.05]
    raw_only = pairs[(pairs["p_mcnemar"] < 0.05) & (pairs["p_holm"] >= 0.05)]
    family = f"exact McNemar on the discordant pairs, Holm-adjusted over the {m} pair{'s' if m != 1 else ''} of objectives compared"
    if len(held):
        text = f"Differences beyond noise ({family}, p < 0.05): " + "; ".join(map(_won, held.itertuples())) + "."
    else:
        text = f"No pair of objectives differs beyond noise at this threshold ({family}: all >= 0.05)."
    if len(raw_only):
        text += (" Below 0.05 only before the adjustment (suggestive, not established): "
                 + "; ".join(map(_won, raw_only.itertuples())) + ".")
    if not len(held):
        text += power_caveat(int(pairs["pairs"].max()) if m else 0)
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
