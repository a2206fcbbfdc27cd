"""The report's sections about success at the thresholds: the answer, outcomes, success counts and
rates, the pair tables, the published table beside ours, the architecture factors.

Each is a registered section (context.py); success is the success rule of results.py, so a
lower-is-better metric's tables count values below the threshold, and the prose says so
(`ReportContext.at`, `rule_note`).
"""
from __future__ import annotations

import pandas as pd

from ...published import published_pair_table
from .. import primary as primary_mod, results, scores
from ..factors import factor_effects, inert_factors
from .answer import families_sentence, noise_table, score_sentence, summary_sentences
from .context import ReportContext, report_section
from .document import Document, threshold_text
from .plots import plot_factor_effects, plot_success_rates


def count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def primary_comparison(doc: Document, df: pd.DataFrame, primary, metric: str, rule: str) -> None:
    """The primary comparison, first, tested alone."""
    doc.h(3, "Primary comparison")
    if primary is None:
        doc.p("No primary comparison: the experiment has a single objective.")
        return
    table = primary_mod.comparison(df, primary, rule)
    for sentence in primary_mod.sentences(table, primary, metric):
        doc.p(sentence)
    shown = table.assign(ci_low=[scores.ci_text(lo, hi) for lo, hi in zip(table["ci_low"], table["ci_high"])])
    shown = shown.rename(columns={"ci_low": "95% CI"}).drop(
        columns=["ci_high"] + (["only a", "only b"] if primary.threshold is None else [])
        + ([] if len(table) > 1 else ["p (Holm over the primary pairs)"]))
    doc.table(shown)


@report_section(order=200)
def answer(ctx: ReportContext, doc: Document) -> None:
    df, metric, diffs, tests = ctx.df, ctx.metric, ctx.diffs, ctx.factor_tests
    doc.h(2, "Answer")
    if ctx.real is not None:
        doc.p(f"Thresholds are fractions of the real data's own {metric} ({ctx.real:.4g}, the same evaluator on "
              f"{ctx.exp['eval']['n_samples']} real samples): "
              + ", ".join(f"{f:g} x real = {threshold_text(t)}" for f, t in zip(ctx.exp["thresholds"], ctx.thresholds))
              + ".")
    primary_comparison(doc, df, ctx.primary, metric, ctx.rule)
    doc.h(3, "Secondary results")
    doc.p(families_sentence(ctx.family, int(diffs["in family"].sum()) if diffs is not None else None,
                            int(tests["in_family"].sum()) if len(tests) else None))
    primary = ctx.primary
    noise_at = primary.threshold if primary is not None and primary.threshold is not None else ctx.t_ref
    for sentence in summary_sentences(df, ctx.exp, ctx.thresholds, ctx.t_ref, ctx.rule, noise_at):
        doc.p(sentence)
    by_threshold = results.noise_floor_by_threshold(df, ctx.thresholds, ctx.rule)
    if len(by_threshold) and by_threshold["groups"].sum():
        doc.table(noise_table(by_threshold))
    if diffs is not None:
        doc.p(score_sentence(diffs, metric, ctx.lower))
    doc.p(f"Net wins at {ctx.at(ctx.t_ref)}: row A, column B = (pairs only A survives) - (pairs only B "
          "survives); * p < 0.05, ** p < 0.01 (exact McNemar, Holm-adjusted over the pair tables' family, "
          f"{results.family_text(ctx.family)}).")
    doc.table(results.net_wins(df, ctx.t_ref, ctx.objectives, ctx.rule, ctx.thresholds), index=True)


@report_section(order=300)
def outcomes(ctx: ReportContext, doc: Document) -> None:
    doc.h(2, "Outcomes")
    doc.table(results.status_counts(ctx.df, ctx.objectives), index=True)


@report_section(order=400)
def successes(ctx: ReportContext, doc: Document) -> None:
    doc.h(2, "Successes per objective and threshold" + ctx.rule_note())
    total = results.status_counts(ctx.df, ctx.objectives)["total"]
    counts = results.success_counts(ctx.df, ctx.thresholds, ctx.objectives, ctx.rule)
    doc.table(counts.apply(lambda col: col.astype(str) + f" / {total[col.name]}"), index=True)
    rates = results.success_rates(ctx.df, ctx.thresholds, ctx.objectives, ctx.rule)
    path = plot_success_rates(rates, ctx.out / "plots" / "success_rate.png", ctx.metric, ctx.lower)
    doc.img(str(path.relative_to(ctx.out)),
            f"success rate against threshold, 95% confidence band over {rates['units'].iloc[0]} "
            "(harness/study/intervals.py)")


@report_section(order=500)
def pairs(ctx: ReportContext, doc: Document) -> None:
    family = ctx.family
    doc.p("Each pair below: (architecture, seed) pairs where only one of the two succeeded, the exact "
          "McNemar p on them, and that p Holm-adjusted over the family these tables show: every pair of objectives "
          f"at every threshold ({results.family_text(family)}), since a reader can pick any row. Then the same "
          "question with the architectures as the units (a claim about the space, not only the architectures "
          "sampled): how many architectures each side is ahead on over their seeds, and the exact sign-flip p "
          f"on those net wins, raw and Holm-adjusted over its own family ({family['architectures']} tests). "
          "A raw p below 0.05 that does not survive the adjustment is a lead, not a finding.")
    for (a, b), table in results.pair_tables(ctx.df, ctx.thresholds, ctx.objectives, ctx.rule).items():
        doc.h(2, f"{a} vs {b}" + ctx.rule_note())
        doc.table(results.drop_untested(table))


def published_comparison(df: pd.DataFrame, key: str, rule: str = "paper") -> tuple[pd.DataFrame, str] | None:
    """Ours next to the published pair table, at every threshold the source lists."""
    pub = published_pair_table(key)
    if df.empty or not {pub.a, pub.b} <= set(df["objective"]):
        return None
    ts = sorted(pub.rows)
    ours = results.pair_table(df, pub.a, pub.b, ts, rule)
    cols = [f"only {pub.a}", f"only {pub.b}", "both succeeded", "both failed"]
    rows = []
    for t, (_, r) in zip(ts, ours.iterrows()):
        rows.append({"threshold": t, **{c: f"{int(r[c])} / {p}" for c, p in zip(cols, pub.rows[t])}})
    note = (f"Ours / published ({pub.source}; {pub.setting}). Ours has {int(ours['pairs'].iloc[0])} "
            f"paired architectures, the paper {pub.n}.")
    return pd.DataFrame(rows), note


@report_section(order=600)
def published(ctx: ReportContext, doc: Document) -> None:
    """The published pair table beside ours: its thresholds are on a higher-is-better score (an
    Inception score), so a study judged by a lower-is-better metric has nothing to set beside it."""
    key = ctx.exp.get("reproduces")
    if not key:
        return
    if ctx.lower:
        doc.h(2, f"Beside the published table ({key})")
        doc.p(f"Not comparable: the published table counts scores above its thresholds; this study's success is "
              f"{ctx.metric} below them.")
        return
    comparison = published_comparison(ctx.df, key, ctx.rule)
    if comparison is not None:
        doc.h(2, f"Beside the published table ({key})")
        doc.p(comparison[1])
        doc.table(comparison[0])


@report_section(order=1100)
def factors(ctx: ReportContext, doc: Document) -> None:
    t_ref, objectives = ctx.t_ref, ctx.objectives
    effects = factor_effects(ctx.df, t_ref, objectives, ctx.rule)
    if effects.empty:
        return
    doc.h(2, f"Architecture factors ({ctx.at(t_ref)}, where about half the trials succeed)")
    for obj, names in inert_factors(ctx.df).items():
        doc.p(f"{', '.join(names)} has no effect for {obj} (its D has no norm layers whatever the factor "
              "says), so it is left out for it.")
    cells = effects.assign(cell=effects["rate"].map("{:.2f}".format) + " (" + effects["n"].astype(str) + ")")
    order = list(dict.fromkeys(zip(cells["factor"], cells["value"])))
    wide = cells.set_index(["factor", "value", "objective"])["cell"].unstack("objective")
    doc.table(wide.reindex(index=pd.MultiIndex.from_tuples(order, names=["factor", "value"]),
                           columns=[o for o in objectives if o in wide.columns]).fillna(""), index=True)
    fe = plot_factor_effects(effects, objectives, t_ref, ctx.out / "plots" / "factor_effects.png",
                             ctx.metric if ctx.lower else None)
    doc.img(str(fe.relative_to(ctx.out)), "success rate per factor value and objective")
    _factor_tests(doc, ctx)


def _factor_tests(doc: Document, ctx: ReportContext) -> None:
    tests, t_ref = ctx.factor_tests, ctx.t_ref
    if tests.empty:
        return
    tests.to_csv(ctx.out / "factor_tests.csv", index=False)
    n, rows = int(tests["in_family"].sum()), len(tests)
    untested = int(tests["p"].isna().sum())
    alike = rows - n - untested
    skipped = "; ".join(filter(None, [f"{untested} with a single architecture on one side have no test" if untested else "",
                                      f"{alike} where every architecture has the same rate have nothing to test"
                                      if alike else ""]))
    what = (f"Which factor values move an objective's success at {ctx.at(t_ref)}: each "
            "architecture's success rate over its seeds, architectures with the value against the rest, two-sided "
            "permutation test (harness/study/factor_tests.py). ")
    if not n:
        doc.p(what + f"None of the {rows} rows has anything to test ({skipped}); they are in factor_tests.csv.")
        return
    doc.p(what + f"{count(n, 'test')} of {rows} rows counted" + (f" ({skipped})" if skipped else "")
          + f", so about {0.05 * n:.1f} would fall below p = 0.05 by chance alone: p (Holm) is adjusted over all "
          f"{n} together, and a raw p below 0.05 that does not survive it is a lead, not a finding. Every row is in "
          "factor_tests.csv.")
    low = tests[tests["p"] < 0.1]
    if low.empty:
        doc.p(f"No factor value moves any objective's success with p < 0.1 (smallest p {tests['p'].min():.2g}).")
        return
    shown = low.assign(**{c: low[c].map("{:.2f}".format) for c in ("rate_with", "rate_without", "difference")},
                       p=low["p"].map("{:.3g}".format), p_holm=low["p_holm"].map("{:.3g}".format),
                       reading=["finding" if q < 0.05 else "lead, not a finding" for q in low["p_holm"]])
    doc.table(shown.drop(columns="in_family").rename(columns={"p_holm": "p (Holm)"}))
