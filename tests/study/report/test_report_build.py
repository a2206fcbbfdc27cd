"""A report rebuilt from a hand-made two-shard MLflow store, and the report's refusals."""
from __future__ import annotations

import pandas as pd
import pytest

from harness import cli
from harness.config import from_dict
from harness.record import TrialRecord
from harness.study import store
from harness.study.report.build import build_report
from harness.study.sweep.plan import shard_trials
from harness.trial import trials_of

pytestmark = pytest.mark.usefixtures("stand_in_floors")   # tests/conftest.py


def shard_store(shards=(1, 2), status="FINISHED"):
    """A store as shards of one two-shard sweep would leave it, made through the store's own writers."""
    exp = from_dict({"name": "shards", "dataset": "ring8", "objectives": ["gan", "wgan-gp"],
                     "space": {"mode": "sample", "n": 4, "seed": 0}, "thresholds": [1.0, 3.0, 5.0, 7.0, 9.0],
                     "reproduces": "gulrajani2017"})
    client = store.get_client()
    exp_id = store.open_experiment(client, "shards")
    scores = {"gan": 2.0, "wgan-gp": 6.0}
    for i in shards:
        trials = shard_trials(trials_of(exp), i, 2)
        pid = store.start_parent(client, exp_id, "shards", f"{i}/2", exp.to_dict(), len(trials), "x.yaml")
        runs = store.ChildRuns(client, exp_id, pid, "shards", f"{i}/2")
        for t in trials:
            runs.start(t.id, t.params())
            runs.log(t.id, [(10, {"loss_d": 1.0}), (20, {"loss_d": 0.5})])
            runs.finish(TrialRecord(t.id, t.arch.id, t.objective, t.seed, headline="modes_covered",
                                    metrics={"modes_covered": scores[t.objective], "w1_exact_2k": 8.0 / scores[t.objective]},
                                    iterations=20, wall_time_s=1.0))
        store.end_run(client, pid, status)
    return exp


@pytest.fixture
def two_shard_store(project):
    return shard_store()


def test_report_merges_shards_from_mlflow_alone(project, two_shard_store):
    path = build_report("shards", out_root=project / "results")
    out = path.parent
    csv = pd.read_csv(out / "trials.csv")
    assert len(csv) == len(trials_of(two_shard_store)) and set(csv["shard"]) == {"1/2", "2/2"}
    assert {"score", "modes_covered", "loss_d", "arch.nonlin_g", "objective.lr_d"} <= set(csv.columns)
    assert not [c for c in csv.columns if c.startswith("m:")]
    md = path.read_text()
    assert "only wgan-gp" in md and "4 / 147" in md          # ours / published at threshold 5
    assert (out / "report.html").read_text().count("<table") >= 3
    assert "## Equilibrium" in md and "Partial study" not in md
    # ahead on all 4 architectures at 3 and at 5: the family holds those 2 of its 2 x 5 (pair, threshold) rows
    assert "| 3 | 0 | 4 | 0 | 0 | 4 | 0.125 | 0.25 | 4 | 0 | 4 | 0.125 | 0.25 |" in md
    assert "every pair of objectives at every threshold (1 pair x 5 thresholds: 2 tests (3 with nothing to test left out))" in md
    # the primary comparison (the default: the first two objectives' score), first and alone
    answer = md.split("## Answer")[1].split("\n## ")[0]
    assert answer.index("### Primary comparison") < answer.index("### Secondary results")
    assert "Primary comparison, the default: the experiment names no primary comparison" in answer
    assert "gan - wgan-gp: mean difference of the score -4 [-4, -4] (95% CI over 4 architectures" in answer
    assert "sign flips over architectures p = 0.125: no difference established (p >= 0.05)" in answer
    # 2D estimators beside what they read on the data itself (the stand-in evaluation of tests/conftest.py)
    estimators = md.split("## The 2D estimators beside what they read on the data itself")[1].split("\n## ")[0]
    assert "| gan | 4 | 2 [2, 2] | 4 [4, 4] |" in estimators                    # modes_covered, w1_exact_2k
    assert "| data itself | 5 draws | 8 | 0.13 [0.11, 0.15] |" in estimators     # w1: 0.1 + 0.01 x seed 1..5
    assert "| gan | 4 | 0 | 2 | [2, 2] | 0 | 2 | 2 | 2 | 2 | 8 |" in md           # the headline beside the data's
    # the score before any threshold: 4 architectures x 1 seed, gan 2 and wgan-gp 6 everywhere
    assert "| gan | 4 | 0 | 2 | [2, 2] | 0 | 2 | 2 | 2 | 2 |" in md
    assert "| gan | wgan-gp | 4 | -4 | [-4, -4] | 0 / 4 | 4 architectures | 0.125 | 0.125 |" in md
    for png in ("success_rate.png", "distributions.png", "paired_differences.png", "factor_effects.png", "equilibrium.png"):
        assert (out / "plots" / png).is_file()


def test_a_rebuilt_report_drops_images_of_an_earlier_build(project, two_shard_store):
    stale = project / "results" / "shards" / "samples" / "trial-of-an-earlier-run.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"png")
    build_report("shards", out_root=project / "results")
    assert not stale.exists() and (project / "results" / "shards" / "plots" / "success_rate.png").is_file()


def test_a_partial_sharded_study_says_what_is_missing(project):
    exp = shard_store(shards=(1,), status="KILLED")
    md = build_report("shards", out_root=project / "results").read_text()
    half = len(shard_trials(trials_of(exp), 1, 2))
    assert f"Partial study: {half} of the experiment's {len(trials_of(exp))} trials have an outcome" in md
    assert "shards not run yet: 2/2" in md and "shards not finished: 1/2" in md
    recorded = {(t.arch.id, t.seed) for t in shard_trials(trials_of(exp), 1, 2)}
    assert f"over {len(recorded)} (architecture, seed) pairs (" in md     # what was recorded, not the plan


def test_trials_without_an_outcome_count_neither_as_successes_nor_as_failures(project):
    exp = from_dict({"name": "open", "dataset": "ring8", "objectives": ["gan", "wgan-gp"], "seeds": [0, 1],
                     "space": {"mode": "sample", "n": 2, "seed": 0}, "thresholds": [1.0, 5.0]})
    client = store.get_client()
    exp_id = store.open_experiment(client, "open")
    pid = store.start_parent(client, exp_id, "open", "1/1", exp.to_dict(), 8, "o.yaml")
    runs = store.ChildRuns(client, exp_id, pid, "open", "1/1")
    for t in trials_of(exp):
        runs.start(t.id, t.params())
        if t.objective == "gan" or t.seed == 0:       # wgan-gp seed 1 still running when the report is built
            runs.finish(TrialRecord(t.id, t.arch.id, t.objective, t.seed, headline="modes_covered",
                                    metrics={"modes_covered": 8.0}, iterations=20, wall_time_s=1.0))
    md = build_report("open", out_root=project / "results").read_text()
    assert "Trials recorded: 8 (2 without an outcome: running or cut off)" in md
    assert "| 5 | 4 / 4 | 2 / 2 |" in md                  # wgan-gp: 2 of its 2 outcomes, not 2 of 4
    # 2 architectures, 1 seed each, both succeed: never a zero-width interval
    assert "wgan-gp 1.00 [0.16, 1.00]" in md
    assert len(pd.read_csv(project / "results" / "open" / "trials.csv")) == 8   # the csv still lists them


def test_report_of_an_unknown_sweep_is_a_usage_error(project, capsys):
    assert cli.main(["report", "nothing-here"]) == 2
    assert "no sweep named 'nothing-here'" in capsys.readouterr().err


def test_report_does_not_restore_a_deleted_sweep(project, two_shard_store, capsys):
    client = store.get_client()
    client.delete_experiment(store.find_experiment(client, "shards").experiment_id)
    assert cli.main(["report", "shards"]) == 2
    assert "trash" in capsys.readouterr().err
    assert store.find_experiment(client, "shards").lifecycle_stage == "deleted"
    assert not (project / "results" / "shards").exists()


def test_equilibrium_curves_include_the_kde_divergences_and_the_gap_to_d_star(tmp_path):
    """The KDE metrics come from the evaluation history: _curves picks them up by name, and the
    plot draws them (KLs of thousands of nats on a symlog axis)."""
    from types import SimpleNamespace

    from harness.study.report.build import _curves
    from harness.study.report.plots import plot_curves

    class Client:
        def get_metric_history(self, run_id, metric):
            values = {"kl_data_gen_kde": (8000.0, 0.3)}.get(metric, (0.6, 0.1))
            return [SimpleNamespace(step=s, value=v) for s, v in zip((150, 300), values)]
    df = pd.DataFrame({"objective": ["gan", "gan-minimax"], "run_id": ["a", "b"], "js_kde": [0.1, 0.2],
                       "kl_data_gen_kde": [0.3, 0.4], "kl_gen_data_kde": [0.3, 0.4], "d_gap_mean_abs": [0.1, 0.2]})
    curves = _curves(Client(), df, ["gan", "gan-minimax"])
    assert {"js_kde", "kl_data_gen_kde", "kl_gen_data_kde", "d_gap_mean_abs"} == set(curves["metric"])
    assert len(curves) == 2 * 4 * 2
    assert plot_curves(curves, ["gan", "gan-minimax"], tmp_path / "eq.png").stat().st_size > 0


def test_a_mode_collapse_study_reports_its_learning_curves(project):
    exp = from_dict({"name": "modes", "dataset": "ring8", "objectives": ["gan", "gan+pack:2"], "seeds": [0, 1],
                     "space": {"mode": "presets", "presets": ["pacgan-2d"]}})
    client = store.get_client()
    exp_id = store.open_experiment(client, "modes")
    pid = store.start_parent(client, exp_id, "modes", "1/1", exp.to_dict(), 4, "m.yaml")
    runs = store.ChildRuns(client, exp_id, pid, "modes", "1/1")
    for t in trials_of(exp):
        runs.start(t.id, t.params())
        runs.log(t.id, [(500, {"modes_covered": 4.0 + t.seed}), (1000, {"modes_covered": 8.0})])
        runs.finish(TrialRecord(t.id, t.arch.id, t.objective, t.seed, headline="modes_covered",
                                metrics={"modes_covered": 8.0, "hq_share": 0.5, "reverse_kl": 0.1}, iterations=1000,
                                wall_time_s=1.0))
    store.end_run(client, pid, "FINISHED")
    md = build_report("modes", out_root=project / "results").read_text()
    assert "smallest attainable p = 0.5" in md           # 2 pairs: no test could separate them
    assert md.count("## Learning curves") == 1           # the mode section's, not a second of modes_covered
    curves = md[md.index("## Learning curves"):]
    assert "| 500 | 1,000 |" in curves.replace("method | ", "")
    assert "| gan | 4.5 | 8 |" in curves and "| gan+pack:2 | 4.5 | 8 |" in curves   # seeds 0 and 1 averaged


def test_a_robustness_study_shows_its_headline_metric_over_training_and_whether_it_settled(project):
    exp = from_dict({"name": "curves", "dataset": "ring8", "objectives": ["gan", "wgan-gp"], "seeds": [0, 1],
                     "space": {"mode": "sample", "n": 3, "seed": 0}, "budget": {"iterations": 300},
                     "eval": {"every": 100}, "thresholds": [2.0, 4.0, 6.0]})
    client = store.get_client()
    exp_id = store.open_experiment(client, "curves")
    pid = store.start_parent(client, exp_id, "curves", "1/1", exp.to_dict(), 12, "c.yaml")
    runs = store.ChildRuns(client, exp_id, pid, "curves", "1/1")
    last = {"gan": iter([5.5, 6.0, 6.5, 5.8, 6.2, 6.0]),             # still climbing at the budget
            "wgan-gp": iter([4.1, 3.9, 4.05, 3.95, 4.02, 3.98])}   # flat from 200 on
    for t in trials_of(exp):
        values = {100: 2.0, 200: 4.0, 300: next(last[t.objective])}
        runs.start(t.id, t.params())
        runs.log(t.id, [(s, {"modes_covered": v}) for s, v in values.items()])
        runs.finish(TrialRecord(t.id, t.arch.id, t.objective, t.seed, headline="modes_covered",
                                metrics={"modes_covered": values[300]}, iterations=300, wall_time_s=1.0))
    store.end_run(client, pid, "FINISHED")
    path = build_report("curves", out_root=project / "results")
    section = path.read_text().split("## Learning curves")[1].split("\n## ")[0]
    assert "| gan | 2 | 4 | 6 |" in section and "| wgan-gp | 2 | 4 | 4 |" in section
    assert "still climbing at the budget" in section and "100 iterations above 0, 95% CI): gan;" in section
    assert "no change distinguishable from 0 in the last interval: wgan-gp." in section
    # 6 trials trained the whole budget (3 architectures the units of the interval), mean 6 there, gain 2
    assert "| gan | 6 | 3 architectures | 6 | +2 [" in section
    assert (path.parent / "plots" / "learning_curves.png").stat().st_size > 0
