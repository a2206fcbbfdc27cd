"""results/NAME/ from the MLflow store alone: report.md / report.html, trials.csv, plots, samples.

Read-only: a sweep in MLflow's trash is reported as such, not restored. Every child run of
the sweep's MLflow experiment counts, so shards merge by themselves. The report is the
registered sections (context.py) in order: the header, time and experiment sections here, the
success tables in sections.py, the measured values in measures.py, and any a plugin registers.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ...config import check_name, from_dict
from ...errors import UsageError
from ...evaluate import metrics
from ...record import FAILED
from ...trial import trials_of
from .. import primary as primary_mod, results, store
from ..time_budget import per_method_times, time_budget
from . import measures, sections  # noqa: F401 - importing them registers the built-in sections
from .answer import rule_text
from .context import CURVE_TRIALS, ReportContext, read_curves, report_section, write_sections
from .document import Document

_curves = read_curves   # the names tests and older callers use
_primary_section = sections.primary_comparison
__all__ = ["CURVE_TRIALS", "build_report", "coverage_sentence", "load_study", "study_thresholds"]


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


@report_section(order=100, needs_outcomes=False)
def header(ctx: ReportContext, doc: Document) -> None:
    name, df, exp, parent_runs = ctx.name, ctx.recorded, ctx.stored, ctx.parent_runs
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
    doc.p(f"Success at threshold t: {rule_text(ctx.rule, ctx.metric, ctx.lower)}. "
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


@report_section(order=150, needs_outcomes=False)
def no_outcome(ctx: ReportContext, doc: Document) -> None:
    if ctx.df.empty:
        doc.p("No trial has an outcome yet.")


@report_section(order=1400)
def failed(ctx: ReportContext, doc: Document) -> None:
    trials = ctx.df[ctx.df["status"] == FAILED]
    if len(trials):
        doc.h(2, "Failed trials")
        doc.table(trials[["trial_id", "error"]].assign(error=trials["error"].fillna("").str.split("\n").str[0]))


def study_thresholds(exp: dict, parent_runs) -> tuple[list[float], float | None]:
    """(thresholds in the metric's units, the real data's score where they are relative)."""
    relative = bool(exp.get("thresholds_relative"))
    real = parent_runs[0].data.params.get("real_score") if relative else None
    real = float(real) if real is not None else None
    return results.absolute_thresholds(exp["thresholds"], relative, real), real


@report_section(order=1500)
def time_spent(ctx: ReportContext, doc: Document) -> None:
    df = ctx.df
    budget = time_budget(df, [s for r in ctx.parent_runs for s in store.sweep_run_seconds(ctx.client, r)])
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


@report_section(order=9000, needs_outcomes=False)
def experiment(ctx: ReportContext, doc: Document) -> None:
    doc.h(2, "Experiment")
    doc.code(json.dumps(ctx.stored, indent=1))


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
    thresholds, real = study_thresholds(exp, parent_runs)
    ctx = ReportContext(name=name, client=client, recorded=df, df=results.with_outcome(df), exp=declared,
                        parent_runs=parent_runs, metric=metric, info=metrics.find_metric(metric),
                        rule=exp.get("success_rule", "paper"),   # sweeps stored before the rule existed: the paper's
                        thresholds=thresholds, real=real, out=out, stored=exp)
    doc = Document()
    write_sections(ctx, doc)
    (out / "report.md").write_text(doc.markdown())
    (out / "report.html").write_text(doc.html(f"Robustness study: {name}", base=out))
    return out / "report.md"
