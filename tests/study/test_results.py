"""Report tables on hand-made trial records (pure pandas, no store)."""
from __future__ import annotations

import math

import pytest

from harness.published import PUBLISHED
from harness.record import TrialRecord
from harness.study import results


def frame(rows):
    """rows: (objective, arch_id, status, score); seed 0, headline 'is'."""
    return results.frame(
        TrialRecord(f"{a}-{o}-s0", a, o, 0, status=s, headline="is",
                    metrics={} if math.isnan(v) else {"is": v},
                    params={"arch.depth_g": "4" if a in ("a1", "a2") else "8"})
        for o, a, s, v in rows)


NAN = float("nan")
ROWS = [
    ("gan", "a1", "ok", 5.0), ("wgan-gp", "a1", "ok", 6.0),
    ("gan", "a2", "collapsed", 7.0), ("wgan-gp", "a2", "ok", 4.0),   # collapsed never succeeds
    ("gan", "a3", "diverged", NAN), ("wgan-gp", "a3", "ok", 2.5),
    ("gan", "a4", "ok", 3.5), ("wgan-gp", "a4", "failed", NAN),
]


def test_success_needs_status_ok_and_score_above_threshold():
    df = frame(ROWS)
    ok = results.success(df, 3.0)
    assert sorted(df.loc[ok, "trial_id"]) == ["a1-gan-s0", "a1-wgan-gp-s0", "a2-wgan-gp-s0", "a4-gan-s0"]
    assert not results.success(df, 6.0).any()        # strictly above
    counts = results.success_counts(df, [1.0, 3.0, 5.5], ["gan", "wgan-gp"])
    assert counts.loc[1.0].tolist() == [2, 3] and counts.loc[3.0].tolist() == [2, 2]
    assert counts.loc[5.5].tolist() == [0, 1]


def test_pair_table_in_the_papers_format():
    t = results.pair_table(frame(ROWS), "gan", "wgan-gp", [3.0]).iloc[0]
    # a1 both, a2 only wgan-gp (gan collapsed), a3 neither (2.5 < 3), a4 only gan (wgan-gp failed)
    assert (t["only gan"], t["only wgan-gp"], t["both succeeded"], t["both failed"], t["pairs"]) == (1, 1, 1, 1, 4)
    long = results.all_pair_tables(frame(ROWS), [3.0], ["gan", "wgan-gp"])
    assert long[["only_a", "only_b", "both", "neither"]].iloc[0].tolist() == [1, 1, 1, 1]


def test_rates_with_bootstrap_ci_and_factor_effects():
    rates = results.success_rates(frame(ROWS), [3.0], ["gan", "wgan-gp"], n_resamples=200)
    r = rates.set_index("objective").loc["wgan-gp"]
    assert r["rate"] == 0.5 and r["ci_low"] <= 0.5 <= r["ci_high"] and r["n"] == 4
    eff = results.factor_effects(frame(ROWS), 3.0, ["gan", "wgan-gp"])
    g = eff[(eff["factor"] == "depth_g") & (eff["objective"] == "gan")].set_index("value")["rate"]
    assert g["4"] == 0.5 and g["8"] == 0.5
    assert results.status_counts(frame(ROWS), ["gan"]).loc["gan"].tolist() == [2, 1, 1, 0, 4]


def test_the_latest_attempt_of_a_trial_counts_once():
    old = TrialRecord("a1-gan-s0", "a1", "gan", 0, status="failed", tracking={"start_time": 1})
    new = TrialRecord("a1-gan-s0", "a1", "gan", 0, status="ok", tracking={"start_time": 2})
    df = results.frame([new, old])
    assert len(df) == 1 and df["status"].iloc[0] == "ok"


def test_published_table_beside_ours():
    rows = [(o, f"a{i}", "ok", 6.0 if o == "wgan-gp" else 2.0) for i in range(4) for o in ("gan", "wgan-gp")]
    table, note = results.published_comparison(frame(rows), "gulrajani2017")
    assert table["threshold"].tolist() == [1.0 + 0.5 * i for i in range(17)]
    assert table.set_index("threshold").loc[5.0, "only wgan-gp"] == "4 / 147"
    assert "200" in note


@pytest.mark.parametrize("key", sorted(PUBLISHED))
def test_published_rows_account_for_every_architecture(key):
    pub = PUBLISHED[key]
    assert {t: sum(row) for t, row in pub.rows.items()} == {t: pub.n for t in pub.rows}
