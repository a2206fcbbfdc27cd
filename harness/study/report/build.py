"""results/NAME/ from the MLflow store alone: report.md / report.html, trials.csv, plots, samples.

Read-only: a sweep in MLflow's trash is reported as such, not restored. Every child run of
the sweep's MLflow experiment counts, so shards merge by themselves.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from ...config import check_name, from_dict
from ...errors import UsageError
from ...record import FAILED
from ...trial import trials_of
from .. import floors as floors_mod, primary as primary_mod, results, scores, store
from ..factor_tests import factor_tests
from ..mode_tables import METRICS as MODE_METRICS, mode_curves, mode_table
from ..time_budget import per_method_times, time_budget
from .answer import RULE_TEXT, families_sentence, noise_table, score_sentence, summary_sentences
from .document import Document, threshold_text
from ..learning_curves import curve_table, final_gains, settled_sentence
from .plots import (plot_curves, plot_distributions, plot_factor_effects, plot_learning_curves, plot_paired_differences,
                    plot_success_rates)

# Curves of the game itself (objectives' diagnostics, the true W1, JS and KLs and D's gap to
# the optimal D* on 2D mixtures, the losses), read back from each trial's MLflow history for
# up to CURVE_TRIALS trials per objective.
CURVE_METRICS = ("d_prob_real", "d_prob_fake", "loss_d_minus_2log2", "loss_g_ns_minus_log2", "w1_estimate", "divergence_estimate", "w1_exact_2k",
                 "js_kde", "kl_data_gen_kde", "kl_gen_data_kde", "d_gap_mean_abs",
                 "loss_d", "loss_g", "grad_norm_g")
CURVE_TRIALS = 10


def load_study(name: str):
    """(client, trials DataFrame, the sweep's experiment dict, parent runs), changing nothing."""
    check_name(name)
    client = store.get_client()
    mlflow_exp = store.find_experiment(client, name)
    if mlflow_exp is None:
        raise UsageError(f"name: no sweep named {name!r} in the MLflow store {store.tracking_uri()}")
    if mlflow_exp.lifecycle_stage == "deleted":
        raise UsageError(f"name: sweep {name!r} is in MLflow's trash; restore it first "
                         f"(mlflow experiments restore --experiment-id {mlflow_exp.experiment_id})")
    exp_id = mlflow_exp.experiment_id
    parent_runs = sorted(store.parents(client, exp_id), key=lambda r: r.data.tags.get("shard", ""))
    if not parent_runs:
        raise UsageError(f"name: the MLflow experiment {name!r} holds no sweep")
    experiment = store.load_experiment_dict(client, parent_runs[0].info.run_id)
    return client, results.frame(store.read_records(client, exp_id)), experiment, parent_runs


def _sample_grids(client, df: pd.DataFrame, objectives, out: Path) -> list[tuple[str, str]]:
    """The best trial's samples.png per objective, and the worst one where there are several."""
    picked = []
    for obj in objectives:
        sub = df[df["objective"] == obj].sort_values("score", ascending=False)
        sub = sub[sub["score"].notna()]
        chosen = [("best", sub.iloc[0])] if len(sub) else []
        if len(sub) > 1:
            chosen.append(("worst", sub.iloc[-1]))
        for label, row in chosen:
            try:
                path = Path(client.download_artifacts(row["run_id"], "samples.png", str(out)))
            except Exception:  # noqa: BLE001 - a trial without samples (diverged) has no grid
                continue
            target = out / (re.sub(r"[^A-Za-z0-9._-]", "_", row["trial_id"]) + ".png")
            path.replace(target)
            picked.append((f"samples/{target.name}",
                           f"{obj}, {label}: {row['trial_id']} ({row['headline']} {row['score']:.3g}, {row['status']})"))
    return picked


def _curves(client, df: pd.DataFrame, objectives, metrics=CURVE_METRICS, trials: int | None = CURVE_TRIALS) -> pd.DataFrame:
    """Long rows (run_id, arch_id, objective, metric, step, value) from the MLflow histories of
    up to `trials` trials per objective (None: all); arch_id lets an interval over them take the
    architectures as its units."""
    rows = []
    metrics = [m for m in metrics if m in df]
    for obj in objectives:
        sub = df.loc[df["objective"] == obj]
        sub = sub if trials is None else sub.head(trials)
        for run_id, arch_id in zip(sub["run_id"], sub["arch_id"] if "arch_id" in sub else [None] * len(sub)):
            for metric in metrics:
                rows += [{"run_id": run_id, "arch_id": arch_id, "objective": obj, "metric": metric, "step": h.step,
                          "value": h.value} for h in client.get_metric_history(run_id, metric)]
    return pd.DataFrame(rows, columns=["run_id", "arch_id", "objective", "metric", "step", "value"])


def _equilibrium_section(doc: Document, client, df: pd.DataFrame, objectives, out: Path) -> None:
    path = plot_curves(_curves(client, df, objectives), objectives, out / "plots" / "equilibrium.png")
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
    doc.img(str(path.relative_to(out)), "the game over training")


def _header(doc: Document, name: str, df: pd.DataFrame, exp: dict, parent_runs, metric: str, rule: str) -> None:
    doc.h(1, f"Robustness study: {name}")
    doc.p(f"{exp.get('description') or ''}".strip() or f"Experiment {exp.get('name')}.")
    shards = ", ".join(f"{r.data.tags.get('shard', '?')} ({r.info.status.lower()})" for r in parent_runs)
    evaluators = df["evaluator"].dropna() if "evaluator" in df else pd.Series(dtype=str)
    evaluator = evaluators.iloc[0] if len(evaluators) else exp["eval"]["evaluator"]
    answered = len(results.with_outcome(df))
    open_runs = f" ({len(df) - answered} without an outcome: running or cut off)" if answered < len(df) else ""
    mode = "conditional on the labels, G(z, y) and D(x, y); " if exp.get("conditional") else ""
    doc.p(f"Dataset {exp['dataset']}; {mode}objectives {', '.join(exp['objectives'])}; seeds {exp['seeds']}; "
          f"{exp['budget']['iterations']} generator iterations at batch {exp['budget']['batch_size']}; "
          f"evaluator {evaluator} with {exp['eval']['n_samples']} samples. Trials recorded: {len(df)}{open_runs}. "
          f"Sweep runs (shards): {shards}.")
    partial = coverage_sentence(exp, df, parent_runs)
    if partial:
        doc.p(partial)
    runs_by_setup: dict[tuple, list[str]] = {}
    for r in parent_runs:
        t = r.data.tags
        runs_by_setup.setdefault((t.get("command", "?"), t.get("hardware", "?"), t.get("versions", "?")), []).append(
            t.get("shard", "?"))
    for (command, hardware, versions), shards in runs_by_setup.items():
        which = f"Shard(s) {', '.join(shards)}: " if len(runs_by_setup) > 1 else ""
        doc.p(f"{which}Command: {command}. Hardware: {hardware}. Versions: {versions}.")
    doc.p(f"Success at threshold t: {RULE_TEXT[rule].replace('headline metric', metric)}. "
          "Pairs are matched by (architecture id, seed).")


def coverage_sentence(exp: dict, df: pd.DataFrame, parent_runs) -> str | None:
    """None when every trial of the experiment has an outcome; else what is missing, so a
    partial sharded study is never read as the whole one."""
    n = int(parent_runs[0].data.tags.get("shard", "1/1").split("/")[1])
    present = {r.data.tags.get("shard"): r.info.status for r in parent_runs}
    missing = [f"{k}/{n}" for k in range(1, n + 1) if f"{k}/{n}" not in present]
    unfinished = [s for s, status in sorted(present.items()) if status != "FINISHED"]
    expected = len(trials_of(from_dict(exp)))
    answered = len(results.with_outcome(df))
    if not missing and not unfinished and answered >= expected:
        return None
    return (f"**Partial study: {answered} of the experiment's {expected} trials have an outcome**"
            + (f"; shards not run yet: {', '.join(missing)}" if missing else "")
            + (f"; shards not finished: {', '.join(unfinished)}" if unfinished else "")
            + ". Every figure below covers only the trials recorded so far.")


def _mode_section(doc: Document, client, df: pd.DataFrame, exp: dict, objectives, floors) -> None:
    """One architecture on a 2D mixture (a mode-collapse study): PacGAN's three figures per method."""
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
    curves = _curves(client, df, objectives, [m for m, _, _ in MODE_METRICS], trials=None)
    tables = mode_curves(curves, objectives, exp["eval"].get("every"), floors)
    if tables:
        doc.h(2, "Learning curves")
        doc.p("The same figures at every evaluation (columns: generator iterations), mean over the seeds "
              "still training (a diverged trial leaves the mean when it stops): has the trend settled "
              "when the budget ends?")
        for label, wide in tables.items():
            doc.h(3, label)
            doc.table(wide, index=True)


def _scores_section(doc: Document, df: pd.DataFrame, metric: str, objectives, out: Path, floors,
                    diffs: pd.DataFrame | None) -> None:
    """The headline score before any threshold: summary per objective, paired differences, plot."""
    dist = plot_distributions(df, objectives, results.distribution_metrics(df), out / "plots" / "distributions.png")
    summary = scores.summary(df, objectives)
    if not dist and not summary["trials"].sum():
        return
    doc.h(2, "Final metric distributions")
    doc.p(f"{metric} at the budget, per objective, over the trials whose score counts (ok or collapsed; "
          "left out: diverged or failed): mean over architectures with the 95% t-interval over the architectures' "
          "means (the seeds, with one architecture), and the mean of each seed."
          + (" " + floors_mod.caption(floors) if floors is not None and metric in floors.index else ""))
    if floors is not None and metric in floors.index:
        summary["data itself"] = floors_mod.floor_text(floors, metric)
    doc.table(summary)
    if diffs is not None:
        doc.p(f"Paired differences of {metric} over the (architecture, seed) pairs where both trials count: "
              "mean over architectures of a - b with its 95% t-interval over the architectures' mean differences, "
              "and the exact sign-flip p with the architectures as the units (the seeds, with one architecture), raw "
              f"and Holm-adjusted over this table's family ({_count(int(diffs['in family'].sum()), 'test')}; a pair whose "
              "units all read 0 has nothing to test). Secondary: the primary comparison above is the one tested "
              "alone; here an interval clear of 0, or a raw p below 0.05, is a lead, not a finding, until the p "
              "after Holm says so.")
        doc.table(scores.readable(diffs))
        forest = plot_paired_differences(diffs, metric, out / "plots" / "paired_differences.png")
        if forest:
            doc.img(str(forest.relative_to(out)), f"paired differences of {metric} between objectives, 95% CI")
    if dist:
        doc.img(str(dist.relative_to(out)), "final metrics per objective (every trial with a value)")


def _estimators_section(doc: Document, df: pd.DataFrame, objectives, floors) -> None:
    """The 2D evaluator's estimates at the budget per objective (mean over architectures and its
    t-interval), each beside what the same estimator reads on the data itself."""
    if floors is None:
        return
    metrics = [m for m in floors.index if m in df and pd.to_numeric(df[m], errors="coerce").notna().any()]
    if not metrics:
        return
    ok = scores.scored(df)
    rows = []
    for obj in objectives:
        sub = ok[ok["objective"] == obj]
        row = {"objective": obj, "trials": len(sub)}
        for m in metrics:
            values = pd.to_numeric(sub[m], errors="coerce")
            keep = values.notna()
            mean, lo, hi = results.cluster_mean_ci(values[keep], sub.loc[keep, "arch_id"])
            row[m] = f"{mean:.3g} {scores.ci_text(lo, hi)}" if keep.any() else "-"
        rows.append(row)
    rows.append({"objective": "data itself", "trials": f"{int(floors.iloc[0]['draws'])} draws",
                 **{m: floors_mod.floor_text(floors, m) for m in metrics}})
    doc.h(2, "The 2D estimators beside what they read on the data itself")
    doc.p("Each estimate at the budget, mean over architectures with its 95% t-interval, over the trials whose score "
          "counts. " + floors_mod.caption(floors) + " The exact W1 between two samples of the same mixture is their "
          "sampling distance, and the KDE KLs carry the KDE's bias (either sign): a value near the data's own "
          "reading is as good as the estimator can tell.")
    doc.table(pd.DataFrame(rows))


def _learning_section(doc: Document, client, df: pd.DataFrame, exp: dict, metric: str, objectives, out: Path,
                      lines: dict[str, float], floors=None) -> None:
    """The headline metric over training (a mode-collapse study shows its own three figures
    instead); lines: levels drawn across the plot (label -> value)."""
    every, budget = exp["eval"].get("every"), exp.get("budget", {}).get("iterations")
    shown_by_mode_section = df["arch_id"].nunique() == 1 and metric in {m for m, _, _ in MODE_METRICS}
    if not every or not budget or budget < 2 * every or shown_by_mode_section:
        return
    curves = _curves(client, df, objectives, [metric], trials=None)
    table = curve_table(curves, objectives, metric, every)
    if table.shape[1] < 2:
        return
    doc.h(2, "Learning curves")
    doc.p(f"{metric} at every evaluation (columns: generator iterations), mean over the trials still "
          "training: has the climb settled when the budget ends? Thresholds above are read at the budget."
          + (" " + floors_mod.caption(floors) if floors is not None and metric in floors.index else ""))
    if floors is not None and metric in floors.index:
        table["data itself"] = floors_mod.floor_text(floors, metric)
    doc.table(table, index=True)
    gains = final_gains(curves, objectives, metric, budget, every)
    if not gains.empty:
        doc.p(settled_sentence(gains, metric, every) + " Gain over the last interval of the trials that trained the "
              "whole budget: mean over architectures (each one's mean over its seeds) with the 95% t-interval over "
              "them (column units), beside the interval before it:")
        shown = gains.assign(**{"gain, last interval": [f"{m:+.3g} [{lo:+.3g}, {hi:+.3g}]" for m, lo, hi in zip(
            gains["gain, last interval"], gains["ci_low"], gains["ci_high"])]}).drop(columns=["ci_low", "ci_high"])
        doc.table(shown.round(3))
    path = plot_learning_curves(curves, objectives, metric, out / "plots" / "learning_curves.png", lines)
    if path is not None:
        doc.img(str(path.relative_to(out)), f"{metric} over training: every trial (thin) and the mean per objective")


def _factor_section(doc: Document, df: pd.DataFrame, t_ref: float, objectives, out: Path, rule: str,
                    tests: pd.DataFrame) -> None:
    effects = results.factor_effects(df, t_ref, objectives, rule)
    if effects.empty:
        return
    doc.h(2, f"Architecture factors (threshold {threshold_text(t_ref)}, where about half the trials succeed)")
    for obj, factors in results.inert_factors(df).items():
        doc.p(f"{', '.join(factors)} has no effect for {obj} (its D has no norm layers whatever the factor "
              "says), so it is left out for it.")
    cells = effects.assign(cell=effects["rate"].map("{:.2f}".format) + " (" + effects["n"].astype(str) + ")")
    order = list(dict.fromkeys(zip(cells["factor"], cells["value"])))
    wide = cells.set_index(["factor", "value", "objective"])["cell"].unstack("objective")
    doc.table(wide.reindex(index=pd.MultiIndex.from_tuples(order, names=["factor", "value"]),
                           columns=[o for o in objectives if o in wide.columns]).fillna(""), index=True)
    fe = plot_factor_effects(effects, objectives, t_ref, out / "plots" / "factor_effects.png")
    doc.img(str(fe.relative_to(out)), "success rate per factor value and objective")
    _factor_tests_section(doc, tests, t_ref, out)


def _factor_tests_section(doc: Document, tests: pd.DataFrame, t_ref: float, out: Path) -> None:
    if tests.empty:
        return
    tests.to_csv(out / "factor_tests.csv", index=False)
    n, rows = int(tests["in_family"].sum()), len(tests)
    untested = int(tests["p"].isna().sum())
    alike = rows - n - untested
    skipped = "; ".join(filter(None, [f"{untested} with a single architecture on one side have no test" if untested else "",
                                      f"{alike} where every architecture has the same rate have nothing to test"
                                      if alike else ""]))
    what = (f"Which factor values move an objective's success at threshold {threshold_text(t_ref)}: each "
            "architecture's success rate over its seeds, architectures with the value against the rest, two-sided "
            "permutation test (harness/study/factor_tests.py). ")
    if not n:
        doc.p(what + f"None of the {rows} rows has anything to test ({skipped}); they are in factor_tests.csv.")
        return
    doc.p(what + f"{_count(n, 'test')} of {rows} rows counted" + (f" ({skipped})" if skipped else "")
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


def study_thresholds(exp: dict, parent_runs) -> tuple[list[float], float | None]:
    """(thresholds in the metric's units, the real data's score where they are relative)."""
    relative = bool(exp.get("thresholds_relative"))
    real = parent_runs[0].data.params.get("real_score") if relative else None
    real = float(real) if real is not None else None
    return results.absolute_thresholds(exp["thresholds"], relative, real), real


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _floors(exp: dict, df: pd.DataFrame):
    """The 2D evaluator's floors for this study's dataset and sample size (study/floors.py), or None."""
    evaluators = df["evaluator"].dropna() if "evaluator" in df else pd.Series(dtype=str)
    evaluator = evaluators.iloc[0] if len(evaluators) else exp.get("eval", {}).get("evaluator")
    if not floors_mod.applies(exp.get("dataset", ""), evaluator):
        return None
    return floors_mod.estimator_floors(exp["dataset"], int(exp["eval"]["n_samples"]))


def _primary_section(doc: Document, df: pd.DataFrame, primary, metric: str, rule: str) -> None:
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


def _results_sections(doc: Document, client, df: pd.DataFrame, exp: dict, metric: str, out: Path,
                      rule: str, thresholds: list[float], real: float | None) -> None:
    objectives = list(exp["objectives"])
    t_ref = results.reference_threshold(df, thresholds, rule)
    primary = primary_mod.resolve(exp, thresholds)
    floors = _floors(exp, df)
    long = results.all_pair_tables(df, thresholds, objectives, rule)
    family = results.pair_family(long)
    diffs = scores.paired_differences(df, objectives) if len(objectives) > 1 else None
    tests = factor_tests(df, t_ref, objectives, rule)
    doc.h(2, "Answer")
    if real is not None:
        doc.p(f"Thresholds are fractions of the real data's own {metric} ({real:.4g}, the same evaluator on "
              f"{exp['eval']['n_samples']} real samples): "
              + ", ".join(f"{f:g} x real = {threshold_text(t)}" for f, t in zip(exp["thresholds"], thresholds)) + ".")
    _primary_section(doc, df, primary, metric, rule)
    doc.h(3, "Secondary results")
    doc.p(families_sentence(family, int(diffs["in family"].sum()) if diffs is not None else None,
                            int(tests["in_family"].sum()) if len(tests) else None))
    noise_at = primary.threshold if primary is not None and primary.threshold is not None else t_ref
    for sentence in summary_sentences(df, exp, thresholds, t_ref, rule, noise_at):
        doc.p(sentence)
    by_threshold = results.noise_floor_by_threshold(df, thresholds, rule)
    if len(by_threshold) and by_threshold["groups"].sum():
        doc.table(noise_table(by_threshold))
    if diffs is not None:
        doc.p(score_sentence(diffs, metric))
    doc.p(f"Net wins at threshold {threshold_text(t_ref)}: row A, column B = (pairs only A survives) - (pairs only B "
          "survives); * p < 0.05, ** p < 0.01 (exact McNemar, Holm-adjusted over the pair tables' family, "
          f"{results.family_text(family)}).")
    doc.table(results.net_wins(df, t_ref, objectives, rule, thresholds), index=True)
    doc.h(2, "Outcomes")
    outcomes = results.status_counts(df, objectives)
    doc.table(outcomes, index=True)
    doc.h(2, "Successes per objective and threshold")
    counts = results.success_counts(df, thresholds, objectives, rule)
    doc.table(counts.apply(lambda col: col.astype(str) + f" / {outcomes['total'][col.name]}"), index=True)
    rates = results.success_rates(df, thresholds, objectives, rule)
    doc.img(str(plot_success_rates(rates, out / "plots" / "success_rate.png", metric).relative_to(out)),
            f"success rate against threshold, 95% confidence band over {rates['units'].iloc[0]} "
            "(harness/study/intervals.py)")
    doc.p("Each pair below: (architecture, seed) pairs where only one of the two succeeded, the exact "
          "McNemar p on them, and that p Holm-adjusted over the family these tables show: every pair of objectives "
          f"at every threshold ({results.family_text(family)}), since a reader can pick any row. Then the same "
          "question with the architectures as the units (a claim about the space, not only the architectures "
          "sampled): how many architectures each side is ahead on over their seeds, and the exact sign-flip p "
          f"on those net wins, raw and Holm-adjusted over its own family ({family['architectures']} tests). "
          "A raw p below 0.05 that does not survive the adjustment is a lead, not a finding.")
    for (a, b), table in results.pair_tables(df, thresholds, objectives, rule).items():
        doc.h(2, f"{a} vs {b}")
        doc.table(results.drop_untested(table))
    comparison = results.published_comparison(df, exp["reproduces"], rule) if exp.get("reproduces") else None
    if comparison is not None:
        doc.h(2, f"Beside the published table ({exp['reproduces']})")
        doc.p(comparison[1])
        doc.table(comparison[0])
    _mode_section(doc, client, df, exp, objectives, floors)
    _scores_section(doc, df, metric, objectives, out, floors, diffs)
    _estimators_section(doc, df, objectives, floors)
    lines = {f"threshold {threshold_text(t_ref)} (about half succeed)": t_ref,
             **({f"real data {real:.3g}": real} if real is not None else {})}
    _learning_section(doc, client, df, exp, metric, objectives, out, lines, floors)
    _factor_section(doc, df, t_ref, objectives, out, rule, tests)
    _equilibrium_section(doc, client, df, objectives, out)
    grids = _sample_grids(client, df, objectives, out / "samples")
    if grids:
        doc.h(2, "Samples")
        for rel, caption in grids:
            doc.img(rel, caption)
    failed = df[df["status"] == FAILED]
    if len(failed):
        doc.h(2, "Failed trials")
        doc.table(failed[["trial_id", "error"]].assign(error=failed["error"].fillna("").str.split("\n").str[0]))


def _time_section(doc: Document, client, df: pd.DataFrame, parent_runs) -> None:
    budget = time_budget(df, [s for r in parent_runs for s in store.sweep_run_seconds(client, r)])
    if budget is None:
        return
    doc.h(2, "Where the time went")
    doc.p(budget[1])
    doc.table(budget[0])
    per_method = per_method_times(df)
    if per_method is not None:
        doc.p("Per trial and method: wall minutes (evaluation included; trials run side by side share the "
              "machine) over the trials that ran in one go, and training speed in generator iterations/s.")
        doc.table(per_method)


def build_report(name: str, out_root: str | Path = "results", primary: list[str] | None = None) -> Path:
    """Write results/NAME/{report.md, report.html, trials.csv, plots/, samples/}; returns report.md.
    primary: `--primary` values for a study stored without one (primary.declare)."""
    client, df, exp, parent_runs = load_study(name)
    declared = primary_mod.declare(exp, primary)   # a bad --primary stops here, before anything is written
    out = Path(out_root) / name
    for images in (out / "plots", out / "samples"):
        images.mkdir(parents=True, exist_ok=True)
        for stale in images.glob("*.png"):   # a rebuilt study must not keep an earlier run's images
            stale.unlink()
    headlines = df["headline"].dropna() if len(df) else pd.Series(dtype=str)
    metric = (headlines.iloc[0] if len(headlines) else None) or exp.get("success_metric") or "headline metric"
    df.drop(columns=[c for c in ("start_time", "end_time") if c in df]).to_csv(out / "trials.csv", index=False)

    rule = exp.get("success_rule", "paper")   # sweeps stored before the rule existed: the paper's
    thresholds, real = study_thresholds(exp, parent_runs)
    doc = Document()
    _header(doc, name, df, exp, parent_runs, metric, rule)
    answered = results.with_outcome(df)     # trials.csv above lists every trial, with its state
    if answered.empty:
        doc.p("No trial has an outcome yet.")
    else:
        _results_sections(doc, client, answered, declared, metric, out, rule, thresholds, real)
        _time_section(doc, client, answered, parent_runs)
    doc.h(2, "Experiment")
    doc.code(json.dumps(exp, indent=1))
    (out / "report.md").write_text(doc.markdown())
    (out / "report.html").write_text(doc.html(f"Robustness study: {name}", base=out))
    return out / "report.md"
