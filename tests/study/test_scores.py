"""The score before any threshold: summary per objective and paired differences."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from harness.record import TrialRecord
from harness.study import results, scores


def trials(rows):
    """rows: (objective, arch_id, seed, status, score), headline 'is'."""
    return results.frame(TrialRecord(f"{a}-{o}-s{s}", a, o, s, status=st, headline="is",
                                     metrics={} if math.isnan(v) else {"is": v})
                         for o, a, s, st, v in rows)


def test_summary_leaves_out_diverged_trials_and_shows_each_seed():
    df = trials([("gan", "a0", 0, "ok", 4.0), ("gan", "a0", 1, "ok", 6.0), ("gan", "a1", 0, "ok", 2.0),
                 ("gan", "a1", 1, "diverged", float("nan")), ("lsgan", "a0", 0, "collapsed", 1.0)])
    s = scores.summary(df, ["gan", "lsgan"]).set_index("objective")
    assert (s.loc["gan", "trials"], s.loc["gan", "left out"]) == (3, 1)
    assert s.loc["gan", "mean"] == pytest.approx((5.0 + 2.0) / 2)       # architectures weigh equally
    assert s.loc["gan", "mean per seed"] == "3 / 6"                     # seed 0: (4 + 2) / 2, seed 1: 6
    assert (s.loc["gan", "min"], s.loc["gan", "max"]) == (2.0, 6.0)
    assert s.loc["lsgan", "trials"] == 1 and s.loc["lsgan", "mean"] == 1.0   # collapsed keeps its score
    assert s.loc["lsgan", "95% CI"] == "-"                                   # one trial: no interval


def test_paired_differences_take_architectures_as_units():
    # wgan-gp above gan on every seed of 5 architectures, by 1 + i: the sign-flip floor 2^-4
    rows = [(o, f"a{i}", s, "ok", 1.0 + (1 + i) * (o == "wgan-gp")) for i in range(5) for s in (0, 1)
            for o in ("gan", "wgan-gp")]
    d = scores.paired_differences(trials(rows), ["gan", "wgan-gp"]).iloc[0]
    assert d["pairs"] == 10 and d["a higher"] == "0 / 10" and d["units"] == "5 architectures"
    assert d["a - b"] == pytest.approx(-3.0)
    # the t-interval over the 5 architectures' mean differences -1 .. -5 (sd 1.58, t_4 = 2.78)
    half = stats.t.ppf(0.975, 4) * np.std([1, 2, 3, 4, 5], ddof=1) / np.sqrt(5)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((-3.0 - half, -3.0 + half))
    assert scores.readable(scores.paired_differences(trials(rows), ["gan", "wgan-gp"]))["95% CI"].iloc[0] == \
        f"[{d['ci_low']:.3g}, {d['ci_high']:.3g}]"
    assert d["p (sign flips)"] == pytest.approx(2 ** -4) and d["p (Holm)"] == pytest.approx(2 ** -4)


def test_one_architecture_takes_its_seeds_as_units():
    rows = [(o, "a0", s, "ok", float(s) + 2.0 * (o == "gan")) for s in range(6) for o in ("gan", "lsgan")]
    d = scores.paired_differences(trials(rows), ["gan", "lsgan"]).iloc[0]
    assert d["units"] == "6 seeds" and d["a - b"] == pytest.approx(2.0) and d["p (sign flips)"] == pytest.approx(2 ** -5)


def test_an_objective_without_a_scored_trial_reads_as_a_dash_not_nan():
    df = trials([("gan", "a0", 0, "ok", 3.0), ("fgan-reverse-kl", "a0", 0, "diverged", float("nan"))])
    s = scores.summary(df, ["gan", "fgan-reverse-kl"]).set_index("objective")
    assert (s.loc["fgan-reverse-kl", "trials"], s.loc["fgan-reverse-kl", "left out"]) == (0, 1)
    assert s.loc["fgan-reverse-kl", "95% CI"] == "-" and s.loc["fgan-reverse-kl", "mean per seed"] == "-"
    d = scores.paired_differences(df, ["gan", "fgan-reverse-kl"]).iloc[0]
    assert d["pairs"] == 0 and math.isnan(d["p (sign flips)"])
    assert scores.readable(scores.paired_differences(df, ["gan", "fgan-reverse-kl"]))["95% CI"].iloc[0] == "-"


def test_the_forest_plot_draws_every_pair_with_a_difference(tmp_path):
    from harness.study.report.plots import plot_paired_differences
    rows = [(o, f"a{i}", 0, "ok", float(i) + {"gan": 0.0, "lsgan": 1.0, "sngan": 3.0}[o])
            for i in range(4) for o in ("gan", "lsgan", "sngan")]
    diffs = scores.paired_differences(trials(rows), ["gan", "lsgan", "sngan"])
    assert plot_paired_differences(diffs, "is", tmp_path / "f.png").stat().st_size > 0
    assert plot_paired_differences(diffs.iloc[:0], "is", tmp_path / "g.png") is None


def test_pairs_with_nothing_to_test_leave_the_family():
    """Holm over the score's pairs counts the pairs whose differences are not all 0."""
    rows = [(o, f"a{i}", 0, "ok", 1.0 + (1 + i) * (o == "wgan-gp")) for i in range(5) for o in ("gan", "lsgan", "wgan-gp")]
    d = scores.paired_differences(trials(rows), ["gan", "lsgan", "wgan-gp"]).set_index(["a", "b"])
    assert not d.loc[("gan", "lsgan"), "in family"] and d.loc[("gan", "lsgan"), "p (Holm)"] == 1.0
    assert d.loc[("gan", "wgan-gp"), "p (Holm)"] == pytest.approx(2 * 2 ** -4)     # 2 tests, not 3
