"""The report chooses from the metrics' metadata: a lower-is-better success metric turns every
table and sentence, precision / recall / density / coverage get their section, and a section
registered from outside build.py (a plugin's) takes its place among the built-in ones."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from harness.config import from_dict
from harness.record import TrialRecord
from harness.study import store
from harness.study.report import context, measures
from harness.study.report.build import build_report
from harness.study.report.context import ReportContext, report_section, write_sections
from harness.study.report.document import Document
from harness.trial import trials_of

pytestmark = pytest.mark.usefixtures("stand_in_floors")   # tests/conftest.py

W1 = "w1_exact_2k"
# wgan-gp reaches the data and spreads over it; gan stays far and keeps to a few modes
FINAL = {"gan": {W1: 0.9, "modes_covered": 3.0, "precision_2k": 0.9, "recall_2k": 0.2, "density_2k": 1.2,
                 "coverage_2k": 0.3},
         "wgan-gp": {W1: 0.1, "modes_covered": 8.0, "precision_2k": 0.8, "recall_2k": 0.7, "density_2k": 0.9,
                     "coverage_2k": 0.8}}


def w1_store(name="w1"):
    exp = from_dict({"name": name, "dataset": "ring8", "objectives": ["gan", "wgan-gp"], "seeds": [0, 1],
                     "space": {"mode": "sample", "n": 3, "seed": 0}, "thresholds": [0.05, 0.5, 1.0],
                     "success_metric": W1, "budget": {"iterations": 200}, "eval": {"every": 100}})
    client = store.get_client()
    exp_id = store.open_experiment(client, name)
    pid = store.start_parent(client, exp_id, name, "1/1", exp.to_dict(), len(trials_of(exp)), "w.yaml")
    runs = store.ChildRuns(client, exp_id, pid, name, "1/1")
    for t in trials_of(exp):
        final = FINAL[t.objective]
        runs.start(t.id, t.params())
        runs.log(t.id, [(100, {W1: 1.5}), (200, {W1: final[W1]})])
        runs.finish(TrialRecord(t.id, t.arch.id, t.objective, t.seed, headline=W1, metrics=dict(final),
                                iterations=200, wall_time_s=1.0))
    store.end_run(client, pid, "FINISHED")
    return exp


@pytest.fixture
def plugin_section(monkeypatch):
    """A section registered as a plugin would register it, removed again after the test."""
    monkeypatch.setattr(context, "SECTIONS", dict(context.SECTIONS))

    @report_section(order=850)
    def mine(ctx: ReportContext, doc: Document) -> None:
        doc.h(2, "A plugin's section")
        doc.p(f"{ctx.metric}: {ctx.info.direction_text()}; {len(ctx.df)} trials.")
    return mine


def test_a_lower_is_better_study_reports_success_below_its_thresholds(project, plugin_section):
    w1_store()
    path = build_report("w1", out_root=project / "results")
    md = path.read_text()
    assert f"Success at threshold t: {W1} < threshold (lower is better; the paper's rule" in md
    successes = md.split(f"## Successes per objective and threshold (success: {W1} < threshold)")[1].split("\n## ")[0]
    assert "| 0.05 | 0 / 6 | 0 / 6 |" in successes and "| 0.5 | 0 / 6 | 6 / 6 |" in successes
    assert "| 1 | 6 / 6 | 6 / 6 |" in successes
    pair = md.split(f"## gan vs wgan-gp (success: {W1} < threshold)")[1].split("\n## ")[0]
    assert "| 0.5 | 0 | 6 | 0 | 0 | 6 |" in pair                            # only wgan-gp, on all 6 pairs
    answer = md.split("## Answer")[1].split("\n## ")[0]
    assert f"At {W1} < 0.5 (where about half of all trials succeed)" in answer
    assert "wgan-gp over gan (6 vs 0 pairs" in answer and f"Net wins at {W1} < 0.5:" in answer
    assert f"{W1} itself (lower is better), paired differences" in answer
    assert f"{W1} (lower is better) at the budget, per objective" in md
    assert "has the descent settled when the budget ends (lower is better)?" in md
    # quality against diversity: each objective's mean over its 3 architectures (the seeds agree)
    qd = md.split("## Quality against diversity")[1].split("\n## ")[0]
    assert ("| objective | trials | precision_2k (quality) | density_2k (quality) | recall_2k (diversity) "
            "| coverage_2k (diversity) |") in qd
    assert "| gan | 6 | 0.9 [0.9, 0.9] | 1.2 [1.2, 1.2] | 0.2 [0.2, 0.2] | 0.3 [0.3, 0.3] |" in qd
    assert "density_2k about 1" in qd
    assert (path.parent / "plots" / "quality_diversity.png").stat().st_size > 0
    # the plugin's section, between the distributions (800) and the 2D estimators (900)
    assert md.index("## Final metric distributions") < md.index("## A plugin's section") < md.index(
        "## The 2D estimators beside")
    assert f"{W1}: lower is better; 12 trials." in md


def _ctx(df: pd.DataFrame, out: Path) -> ReportContext:
    exp = {"objectives": ["gan", "wgan-gp"], "dataset": "fashion_mnist", "eval": {"n_samples": 500}}
    return ReportContext(name="x", client=None, recorded=df, df=df, exp=exp, parent_runs=[], metric="is500_fmnistclf",
                         info=None, rule="paper", thresholds=[1.0], real=None, out=out)


def test_the_quality_diversity_section_needs_both_halves(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(measures, "plot_quality_diversity", lambda df, objs, x, y, path: drawn.append((x.name, y.name)))
    base = {"trial_id": ["t1", "t2"], "arch_id": ["a", "a"], "objective": ["gan", "wgan-gp"], "seed": [0, 0],
            "status": ["ok", "ok"], "headline": ["is500_fmnistclf"] * 2, "score": [3.0, 4.0]}
    old = pd.DataFrame({**base, "fid500_train_fmnistclf": [40.0, 30.0]})         # stored before these metrics
    doc = Document()
    measures.quality_and_diversity(_ctx(old, tmp_path), doc)
    assert doc.markdown() == "" and not drawn
    quality_only = old.assign(precision500_train_fmnistclf=[0.9, 0.8])
    measures.quality_and_diversity(_ctx(quality_only, tmp_path), doc)
    assert doc.markdown() == ""
    both = quality_only.assign(recall500_train_fmnistclf=[0.2, 0.6], coverage500_train_fmnistclf=[0.3, 0.7])
    measures.quality_and_diversity(_ctx(both, tmp_path), doc)
    text = doc.markdown()
    assert "| gan | 1 | 0.9 - | 0.2 - | 0.3 - |" in text      # one architecture, one seed: no interval
    assert drawn == [("recall500_train_fmnistclf", "precision500_train_fmnistclf")]


def test_sections_run_in_order_and_wait_for_outcomes(monkeypatch):
    monkeypatch.setattr(context, "SECTIONS", {})
    calls = []
    for order, needs in ((300, True), (100, False), (200, True)):
        def write(ctx, doc, order=order):
            calls.append(order)
        write.__qualname__ = f"section_{order}"
        report_section(order, needs_outcomes=needs)(write)
    write_sections(SimpleNamespace(df=pd.DataFrame({"x": [1]})), Document())
    assert calls == [100, 200, 300]
    calls.clear()
    write_sections(SimpleNamespace(df=pd.DataFrame()), Document())
    assert calls == [100]


def test_distribution_panels_come_from_the_declared_summary_figures():
    image = pd.DataFrame({"headline": ["is5k_fmnistclf"], "is5k_fmnistclf": [3.0], "kid5k_train_fmnistclf": [0.1],
                          "fid5k_train_fmnistclf": [40.0], "kid5k_train_fmnistclf_std": [0.01],
                          "precision5k_train_fmnistclf": [0.5]})
    assert measures.distribution_metrics(image) == ["is5k_fmnistclf", "fid5k_train_fmnistclf", "kid5k_train_fmnistclf"]
    modes = pd.DataFrame({"headline": ["modes_covered"], "modes_covered": [8.0], "hq_share": [0.5],
                          "reverse_kl": [0.1], W1: [0.2]})
    assert measures.distribution_metrics(modes) == ["modes_covered", "hq_share", "reverse_kl"]
    by_w1 = modes.assign(headline=W1)
    assert measures.distribution_metrics(by_w1) == [W1, "hq_share", "reverse_kl"]
