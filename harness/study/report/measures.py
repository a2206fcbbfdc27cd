"""The report's sections about the measured values themselves, before or beside any threshold:
PacGAN's mode figures, the score's distribution and paired differences, the 2D estimators beside
the data's own reading, quality against diversity, the headline over training, the game's
curves, sample grids.

Which metrics each one shows comes from their declared metadata (evaluate/metrics.py): the
summary figures (`summary`), the curves of the game (`curve`), the quality and diversity halves
of the k-NN manifold metrics (`family="prdc"`, `group`), and which side of each is better.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...evaluate import metrics
from ...record import file_stem
from .. import floors as floors_mod, results, scores
from ..learning_curves import curve_table, final_gains, settled_sentence
from ..mode_tables import METRICS as MODE_METRICS, mode_curves, mode_table
from .context import ReportContext, report_section
from .document import Document
from .plots import (plot_curves, plot_distributions, plot_learning_curves, plot_paired_differences,
                    plot_quality_diversity)


def distribution_metrics(df: pd.DataFrame) -> list[str]:
    """The headline metric(s), then the summary figures the trials' evaluators declare (FID, KID;
    on the 2D mixtures PacGAN's high-quality share and reverse KL), at most four panels."""
    if df.empty:
        return []
    heads = [h for h in df["headline"].dropna().unique() if h]
    return list(dict.fromkeys(heads + [i.name for i in metrics.select(df.columns, summary=True)]))[:4]


def _direction(metric: str) -> str:
    """' (lower is better)' for a metric declared so: what a reader must be told; '' otherwise."""
    return " (lower is better)" if metrics.lower_is_better(metric) else ""


@report_section(order=700)
def modes(ctx: ReportContext, doc: Document) -> None:
    """One architecture on a 2D mixture (a mode-collapse study): PacGAN's three figures per method."""
    df, exp, objectives, floors = ctx.df, ctx.exp, ctx.objectives, ctx.floors
    if df.empty or df["arch_id"].nunique() != 1:
        return
    table = mode_table(df, objectives, exp["dataset"], floors)
    if table.empty:
        return
    budget = exp.get("budget", {})
    doc.h(2, "Modes, quality and reverse KL beside PacGAN / VEEGAN")
    doc.p(f"Mean +- standard error over seeds of the final evaluation. Budgets differ: ours "
          f"{budget.get('iterations', '?'):,} generator iterations at batch {budget.get('batch_size', '?')}; "
          "PacGAN 400 epochs of 100,000 points (400,000 iterations at batch 100); VEEGAN as its paper "
          "states. High quality = within 3 standard deviations of a mode; reverse KL of the "
          "high-quality samples' mode histogram (PacGAN's)." + (" " + floors_mod.caption(floors) if floors is not None else ""))
    doc.table(table)
    curves = ctx.curves([m for m, _, _ in MODE_METRICS], trials=None)
    tables = mode_curves(curves, objectives, exp["eval"].get("every"), floors)
    if tables:
        doc.h(2, "Learning curves")
        doc.p("The same figures at every evaluation (columns: generator iterations), mean over the seeds "
              "still training (a diverged trial leaves the mean when it stops): has the trend settled "
              "when the budget ends?")
        for label, wide in tables.items():
            doc.h(3, label)
            doc.table(wide, index=True)


@report_section(order=800)
def score_distributions(ctx: ReportContext, doc: Document) -> None:
    """The headline score before any threshold: summary per objective, paired differences, plot."""
    df, metric, objectives, floors, diffs, out = ctx.df, ctx.metric, ctx.objectives, ctx.floors, ctx.diffs, ctx.out
    dist = plot_distributions(df, objectives, distribution_metrics(df), out / "plots" / "distributions.png")
    summary = scores.summary(df, objectives)
    if not dist and not summary["trials"].sum():
        return
    floored = floors is not None and metric in floors.index
    doc.h(2, "Final metric distributions")
    doc.p(f"{metric}{_direction(metric)} at the budget, per objective, over the trials whose score counts (ok or "
          "collapsed; left out: diverged or failed): mean over architectures with the 95% t-interval over the "
          "architectures' means (the seeds, with one architecture), and the mean of each seed."
          + (" " + floors_mod.caption(floors) if floored else ""))
    if floored:
        summary["data itself"] = floors_mod.floor_text(floors, metric)
    doc.table(summary)
    if diffs is not None:
        doc.p(f"Paired differences of {metric} over the (architecture, seed) pairs where both trials count: "
              "mean over architectures of a - b with its 95% t-interval over the architectures' mean differences, "
              "and the exact sign-flip p with the architectures as the units (the seeds, with one architecture), raw "
              f"and Holm-adjusted over this table's family ({_count(int(diffs['in family'].sum()), 'test')}; a pair "
              "whose units all read 0 has nothing to test)."
              + (" Lower is better: a negative a - b favours a." if ctx.lower else "")
              + " Secondary: the primary comparison above is the one tested "
              "alone; here an interval clear of 0, or a raw p below 0.05, is a lead, not a finding, until the p "
              "after Holm says so.")
        doc.table(scores.readable(diffs))
        forest = plot_paired_differences(diffs, metric, out / "plots" / "paired_differences.png", ctx.lower)
        if forest:
            doc.img(str(forest.relative_to(out)), f"paired differences of {metric} between objectives, 95% CI")
    if dist:
        doc.img(str(dist.relative_to(out)), "final metrics per objective (every trial with a value)")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _cells(ok: pd.DataFrame, objectives, names) -> list[dict]:
    """Per objective: each metric's mean over architectures with its 95% t-interval, as text."""
    rows = []
    for obj in objectives:
        sub = ok[ok["objective"] == obj]
        row = {"objective": obj, "trials": len(sub)}
        for m in names:
            values = pd.to_numeric(sub[m], errors="coerce")
            keep = values.notna()
            mean, lo, hi = results.cluster_mean_ci(values[keep], sub.loc[keep, "arch_id"])
            row[m] = f"{mean:.3g} {scores.ci_text(lo, hi)}" if keep.any() else "-"
        rows.append(row)
    return rows


def _measured(df: pd.DataFrame, names) -> list[str]:
    return [m for m in names if m in df and pd.to_numeric(df[m], errors="coerce").notna().any()]


@report_section(order=900)
def estimators(ctx: ReportContext, doc: Document) -> None:
    """The 2D evaluator's estimates at the budget per objective (mean over architectures and its
    t-interval), each beside what the same estimator reads on the data itself."""
    floors = ctx.floors
    if floors is None:
        return
    names = _measured(ctx.df, floors.index)
    if not names:
        return
    rows = _cells(scores.scored(ctx.df), ctx.objectives, names)
    rows.append({"objective": "data itself", "trials": f"{int(floors.iloc[0]['draws'])} draws",
                 **{m: floors_mod.floor_text(floors, m) for m in names}})
    doc.h(2, "The 2D estimators beside what they read on the data itself")
    doc.p("Each estimate at the budget, mean over architectures with its 95% t-interval, over the trials whose score "
          "counts. " + floors_mod.caption(floors) + " The exact W1 between two samples of the same mixture is their "
          "sampling distance, and the KDE KLs carry the KDE's bias (either sign): a value near the data's own "
          "reading is as good as the estimator can tell.")
    doc.table(pd.DataFrame(rows))


@report_section(order=950)
def quality_and_diversity(ctx: ReportContext, doc: Document) -> None:
    """Precision and density (quality) against recall and coverage (diversity), where the trials
    have them (evaluate/prdc.py): a collapsed generator keeps its quality and loses diversity,
    which no single score shows. Skipped for studies stored before these metrics existed."""
    found = [i for i in metrics.select(ctx.df.columns, family="prdc") if i.name in _measured(ctx.df, [i.name])]
    quality = [i for i in found if i.group == "quality"]
    diversity = [i for i in found if i.group == "diversity"]
    if not quality or not diversity:
        return
    shown = [*quality, *diversity]
    ok = scores.scored(ctx.df)
    rows = _cells(ok, ctx.objectives, [i.name for i in shown])
    if ctx.floors is not None and any(i.name in ctx.floors.index for i in shown):
        rows.append({"objective": "data itself", "trials": f"{int(ctx.floors.iloc[0]['draws'])} draws",
                     **{i.name: floors_mod.floor_text(ctx.floors, i.name) for i in shown}})
    table = pd.DataFrame(rows).rename(columns={i.name: f"{i.name} ({i.group})" for i in shown})
    ideal = [f"{i.name} about {i.ideal:g}" for i in shown if i.ideal is not None]
    doc.h(2, "Quality against diversity")
    doc.p("k-nearest-neighbour manifold estimates (k = 5, harness/evaluate/prdc.py) at the budget, mean over "
          "architectures with its 95% t-interval, over the trials whose score counts: quality ("
          + ", ".join(i.name for i in quality) + ": do the samples lie where the data does?) against diversity ("
          + ", ".join(i.name for i in diversity) + ": how much of the data do they reach?). Higher is better for "
          "each; shares lie in [0, 1]" + (f", and a generator matching the data reads {', '.join(ideal)}" if ideal
                                          else "") + ". A collapsed generator keeps its quality and loses diversity."
          + (" " + floors_mod.caption(ctx.floors) if len(rows) > len(ctx.objectives) else ""))
    doc.table(table)
    path = plot_quality_diversity(ok, ctx.objectives, diversity[0], quality[0],
                                  ctx.out / "plots" / "quality_diversity.png")
    if path is not None:
        doc.img(str(path.relative_to(ctx.out)), f"{quality[0].name} against {diversity[0].name}, every trial "
                                                "whose score counts, by objective")


@report_section(order=1000)
def learning(ctx: ReportContext, doc: Document) -> None:
    """The headline metric over training (a mode-collapse study shows its own three figures
    instead), with the reference threshold and the real data's score drawn across."""
    df, exp, metric, floors = ctx.df, ctx.exp, ctx.metric, ctx.floors
    every, budget = exp["eval"].get("every"), exp.get("budget", {}).get("iterations")
    shown_by_mode_section = df["arch_id"].nunique() == 1 and metric in {m for m, _, _ in MODE_METRICS}
    if not every or not budget or budget < 2 * every or shown_by_mode_section:
        return
    curves = ctx.curves([metric], trials=None)
    table = curve_table(curves, ctx.objectives, metric, every)
    if table.shape[1] < 2:
        return
    floored = floors is not None and metric in floors.index
    doc.h(2, "Learning curves")
    doc.p(f"{metric} at every evaluation (columns: generator iterations), mean over the trials still "
          + ("training: has the descent settled when the budget ends (lower is better)?" if ctx.lower else
             "training: has the climb settled when the budget ends?")
          + " Thresholds above are read at the budget." + (" " + floors_mod.caption(floors) if floored else ""))
    if floored:
        table["data itself"] = floors_mod.floor_text(floors, metric)
    doc.table(table, index=True)
    gains = final_gains(curves, ctx.objectives, metric, budget, every)
    if not gains.empty:
        doc.p(settled_sentence(gains, metric, every, ctx.lower) + " Gain over the last interval of the trials that "
              "trained the whole budget: mean over architectures (each one's mean over its seeds) with the 95% "
              "t-interval over them (column units), beside the interval before it:")
        shown = gains.assign(**{"gain, last interval": [f"{m:+.3g} [{lo:+.3g}, {hi:+.3g}]" for m, lo, hi in zip(
            gains["gain, last interval"], gains["ci_low"], gains["ci_high"])]}).drop(columns=["ci_low", "ci_high"])
        doc.table(shown.round(3))
    lines = {f"{ctx.at(ctx.t_ref)} (about half succeed)": ctx.t_ref,
             **({f"real data {ctx.real:.3g}": ctx.real} if ctx.real is not None else {})}
    path = plot_learning_curves(curves, ctx.objectives, metric, ctx.out / "plots" / "learning_curves.png", lines,
                                ctx.lower)
    if path is not None:
        doc.img(str(path.relative_to(ctx.out)), f"{metric} over training: every trial (thin) and the mean per objective")


@report_section(order=1200)
def equilibrium(ctx: ReportContext, doc: Document) -> None:
    path = plot_curves(ctx.curves(), ctx.objectives, ctx.out / "plots" / "equilibrium.png")
    if path is None:
        return
    doc.h(2, "Equilibrium")
    doc.p("Mean over up to 10 trials per objective: D's probability on real and generated samples "
          "(1/2 at the GAN equilibrium, dashed), the critic's W1 estimate (Wasserstein objectives), the "
          "f-divergence bound (f-GAN), and on the 2D mixtures the true W1 by optimal transport, JS and "
          "both KLs with p_g by a kernel density estimate (JS at most log 2, dashed) and D's mean "
          "distance from the optimal D* = p_data / (p_data + p_g) (objectives whose D is a probability "
          "with that optimum, D judging single samples), so that a reader sees which divergence each "
          "objective drove down; then the losses and G's gradient norm. KLs and gradient norms on a "
          "symlog scale.")
    doc.img(str(path.relative_to(ctx.out)), "the game over training")


def sample_grids(client, df: pd.DataFrame, objectives, out: Path, lower: bool = False) -> list[tuple[str, str]]:
    """The best trial's samples.png per objective, and the worst one where there are several
    (best: the highest score, the lowest where lower is better)."""
    picked = []
    for obj in objectives:
        sub = df[df["objective"] == obj].sort_values("score", ascending=lower)
        sub = sub[sub["score"].notna()]
        chosen = [("best", sub.iloc[0])] if len(sub) else []
        if len(sub) > 1:
            chosen.append(("worst", sub.iloc[-1]))
        for label, row in chosen:
            try:
                path = Path(client.download_artifacts(row["run_id"], "samples.png", str(out)))
            except Exception:  # noqa: BLE001 - a trial without samples (diverged) has no grid
                continue
            target = out / (file_stem(row["trial_id"]) + ".png")
            path.replace(target)
            picked.append((f"samples/{target.name}",
                           f"{obj}, {label}: {row['trial_id']} ({row['headline']} {row['score']:.3g}, {row['status']})"))
    return picked


@report_section(order=1300)
def samples(ctx: ReportContext, doc: Document) -> None:
    grids = sample_grids(ctx.client, ctx.df, ctx.objectives, ctx.out / "samples", ctx.lower)
    if grids:
        doc.h(2, "Samples")
        for rel, caption in grids:
            doc.img(rel, caption)
