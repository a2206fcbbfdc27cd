"""Report tables on hand-made trials, and a report rebuilt from a hand-made two-shard MLflow store."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness import report


def frame(rows):
    """rows: (objective, arch_id, status, score); seed 0, headline 'is'."""
    return pd.DataFrame([{"trial_id": f"{a}-{o}-s0", "objective": o, "arch_id": a, "seed": 0, "status": s,
                          "headline": "is", "m:is": v, "arch.depth_g": "4" if a in ("a1", "a2") else "8"}
                         for o, a, s, v in rows])


ROWS = [
    ("gan", "a1", "ok", 5.0), ("wgan-gp", "a1", "ok", 6.0),
    ("gan", "a2", "collapsed", 7.0), ("wgan-gp", "a2", "ok", 4.0),   # collapsed never succeeds
    ("gan", "a3", "diverged", np.nan), ("wgan-gp", "a3", "ok", 2.5),
    ("gan", "a4", "ok", 3.5), ("wgan-gp", "a4", "failed", np.nan),
]


def test_success_needs_status_ok_and_score_above_threshold():
    df = frame(ROWS)
    assert list(report.success(df, 3.0)) == [True, True, False, True, False, False, True, False]
    assert not report.success(df, 6.0).any()        # strictly above
    counts = report.success_counts(df, [1.0, 3.0, 5.5], ["gan", "wgan-gp"])
    assert counts.loc[1.0].tolist() == [2, 3] and counts.loc[3.0].tolist() == [2, 2]
    assert counts.loc[5.5].tolist() == [0, 1]


def test_pair_table_in_the_papers_format():
    t = report.pair_table(frame(ROWS), "gan", "wgan-gp", [3.0]).iloc[0]
    # a1 both, a2 only wgan-gp (gan collapsed), a3 neither (2.5 < 3), a4 only gan (wgan-gp failed)
    assert (t["only gan"], t["only wgan-gp"], t["both succeeded"], t["both failed"], t["pairs"]) == (1, 1, 1, 1, 4)
    long = report.all_pair_tables(frame(ROWS), [3.0], ["gan", "wgan-gp"])
    assert long[["only_a", "only_b", "both", "neither"]].iloc[0].tolist() == [1, 1, 1, 1]


def test_rates_with_bootstrap_ci_and_factor_effects():
    rates = report.success_rates(frame(ROWS), [3.0], ["gan", "wgan-gp"], n_resamples=200)
    r = rates.set_index("objective").loc["wgan-gp"]
    assert r["rate"] == 0.5 and r["ci_low"] <= 0.5 <= r["ci_high"] and r["n"] == 4
    eff = report.factor_effects(frame(ROWS), 3.0, ["gan", "wgan-gp"])
    g = eff[(eff["factor"] == "depth_g") & (eff["objective"] == "gan")].set_index("value")["rate"]
    assert g["4"] == 0.5 and g["8"] == 0.5
    assert report.status_counts(frame(ROWS), ["gan"]).loc["gan"].tolist() == [2, 1, 1, 0, 4]


def test_published_table_beside_ours():
    rows = [(o, f"a{i}", "ok", 6.0 if o == "wgan-gp" else 2.0) for i in range(4) for o in ("gan", "wgan-gp")]
    table, note = report.published_comparison(frame(rows), "gulrajani2017", [1.0, 3.0])
    assert table["threshold"].tolist() == [1.0, 3.0, 5.0, 7.0, 9.0]
    assert table.set_index("threshold").loc[5.0, "only wgan-gp"] == "4 / 147"
    assert "200" in note


@pytest.fixture
def two_shard_store(project):
    """A store as two shards of one sweep would leave it, made with MlflowClient directly."""
    from harness import tracking
    from harness.config import from_dict
    exp = from_dict({"name": "shards", "dataset": "ring8", "objectives": ["gan", "wgan-gp"],
                     "space": {"mode": "sample", "n": 4, "seed": 0}, "thresholds": [1.0, 3.0, 5.0, 7.0, 9.0],
                     "reproduces": "gulrajani2017"})
    client = tracking.get_client()
    exp_id = tracking.experiment_id(client, "shards", create=True)
    from harness.sweep import shard_trials
    scores = {"gan": 2.0, "wgan-gp": 6.0}
    for i in (1, 2):
        trials = shard_trials(exp.trials(), i, 2)
        pid = tracking.start_parent(client, exp_id, "shards", f"{i}/2", exp.to_dict(), len(trials), "x.yaml")
        runs = tracking.ChildRuns(client, exp_id, pid, "shards", f"{i}/2")
        for t in trials:
            runs.start(t.id, t.params())
            runs.log(t.id, [(10, {"loss_d": 1.0}), (20, {"loss_d": 0.5})])
            runs.finish(t.id, {"status": "ok", "metrics": {"modes_covered": scores[t.objective]},
                               "iterations": 20, "headline": "modes_covered", "wall_time_s": 1.0})
        tracking.end_run(client, pid, "FINISHED")
    return exp


def test_report_merges_shards_from_mlflow_alone(project, two_shard_store):
    path = report.build_report("shards", out_root=project / "results")
    out = path.parent
    csv = pd.read_csv(out / "trials.csv")
    assert len(csv) == len(two_shard_store.trials()) and set(csv["shard"]) == {"1/2", "2/2"}
    md = path.read_text()
    assert "only wgan-gp" in md and "4 / 147" in md          # ours / published at threshold 5
    assert (out / "report.html").read_text().count("<table") >= 3
    for png in ("success_rate.png", "distributions.png", "factor_effects.png"):
        assert (out / "plots" / png).is_file()


def test_report_of_an_unknown_sweep_is_a_usage_error(project):
    from harness import cli
    assert cli.main(["report", "nothing-here"]) == 2
