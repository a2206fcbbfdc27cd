"""A success metric where lower is better (a FID, the exact W1): success is a value below the
threshold, and the tables, pair tests, plots and answer sentences turn with it."""
from __future__ import annotations

import pandas as pd
import pytest

from harness.errors import ConfigError
from harness.record import TrialRecord, clears
from harness.study import results, scores
from harness.study.learning_curves import settled_sentence
from harness.study.reanalyse import pairs_text
from harness.study.report import answer, plots

W1 = "w1_exact_2k"   # declared lower-is-better by evaluate/toy2d.py


def frame(rows, headline=W1):
    """rows: (objective, arch_id, seed, status, score)."""
    return results.frame(TrialRecord(f"{a}-{o}-s{s}", a, o, s, status=st, headline=headline,
                                     metrics={headline: v}) for o, a, s, st, v in rows)


# wgan-gp reaches the data (W1 0.1) on every architecture; gan stays far (W1 0.9) except on a0
ROWS = [(o, f"a{i}", s, "ok", (0.1 if o == "wgan-gp" or i == 0 else 0.9))
        for i in range(6) for s in (0, 1) for o in ("gan", "wgan-gp")]


def test_clears_turns_with_the_direction():
    assert clears([0.1, 0.5, float("nan")], 0.3, False).tolist() == [False, True, False]
    assert clears([0.1, 0.5, float("nan")], 0.3, True).tolist() == [True, False, False]
    assert not clears(0.3, 0.3, True) and not clears(0.3, 0.3, False)       # strictly beyond, either way


def test_success_is_below_the_threshold_and_outcomes_still_decide():
    df = frame([("gan", "a0", 0, "ok", 0.1), ("gan", "a1", 0, "ok", 0.9), ("gan", "a2", 0, "collapsed", 0.1),
                ("gan", "a3", 0, "diverged", 0.05), ("gan", "a4", 0, "failed", float("nan"))])
    assert results.lower_is_better(df) and results.metric_of(df) == W1
    assert df.loc[results.success(df, 0.5), "arch_id"].tolist() == ["a0", "a2"]
    assert df.loc[results.success(df, 0.5, "strict"), "arch_id"].tolist() == ["a0"]
    counts = results.success_counts(df, [0.05, 0.5, 1.0], ["gan"])
    assert counts["gan"].tolist() == [0, 2, 3]            # a laxer (higher) threshold lets more through
    higher = frame([("gan", "a0", 0, "ok", 0.1), ("gan", "a1", 0, "ok", 0.9)], headline="modes_covered")
    assert results.success(higher, 0.5).tolist() == [False, True]   # the paper's rule where higher is better


def test_pair_tests_name_the_objective_with_the_lower_value_the_winner():
    df = frame(ROWS)
    t = results.pair_table(df, "gan", "wgan-gp", [0.5]).iloc[0]
    assert (t["only gan"], t["only wgan-gp"], t["both succeeded"], t["both failed"]) == (0, 10, 2, 0)
    assert (t["gan ahead"], t["wgan-gp ahead"]) == (0, 5)
    wins = results.net_wins(df, 0.5, ["gan", "wgan-gp"])
    assert wins.loc["wgan-gp", "gan"].startswith("+10") and wins.loc["gan", "wgan-gp"].startswith("-10")
    rates = results.success_rates(df, [0.5], ["gan", "wgan-gp"]).set_index("objective")["rate"]
    assert rates["wgan-gp"] == 1.0 and rates["gan"] == pytest.approx(1 / 6)
    long = results.all_pair_tables(df, [0.5], ["gan", "wgan-gp"])
    sentence = answer.pair_sentence(long, results.pair_family(long))
    assert "wgan-gp over gan (10 vs 0 pairs" in sentence


def test_the_reference_threshold_takes_the_laxer_of_two_as_near_half():
    values = (0.2, 0.4, 0.6, 0.8)
    down = frame([("gan", f"a{i}", 0, "ok", v) for i, v in enumerate(values)])
    up = frame([("gan", f"a{i}", 0, "ok", v) for i, v in enumerate(values)], headline="hq_share")
    assert results.reference_threshold(down, [0.3, 0.5, 0.7]) == 0.5          # 2 of 4 below 0.5
    # 1, 1 and 3 of 4 below 0.3, 0.35, 0.7 (all 0.25 from half): the laxer is the highest
    assert results.reference_threshold(down, [0.3, 0.35, 0.7]) == 0.7
    # 3, 3 and 1 of 4 above them where higher is better: the laxer is the lowest
    assert results.reference_threshold(up, [0.3, 0.35, 0.7]) == 0.3


def test_relative_thresholds_need_a_real_score_above_zero():
    assert results.absolute_thresholds([0.5, 1.0], True, 8.0) == [4.0, 8.0]
    for real in (0.0, -1.0):
        with pytest.raises(ConfigError, match="thresholds_relative") as err:
            results.absolute_thresholds([0.5], True, real)
        assert err.value.field == "thresholds_relative"


def test_answer_sentences_say_success_is_below():
    df = frame(ROWS)
    exp = {"objectives": ["gan", "wgan-gp"], "budget": {"iterations": 100}}
    text = " ".join(answer.summary_sentences(df, exp, [0.5, 1.0], 0.5, "paper"))
    assert text.startswith(f"At {W1} < 0.5 (where about half") and f"Noise floor at {W1} < 0.5:" in text
    assert answer.rule_text("paper", W1, True).startswith(f"{W1} < threshold (lower is better; the paper's rule")
    assert answer.rule_text("strict", W1, True).startswith(f"status ok and {W1} < threshold (lower is better;")
    assert answer.rule_text("paper", "is5k_fmnistclf") == answer.RULE_TEXT["paper"].replace("headline metric",
                                                                                            "is5k_fmnistclf")
    diffs = scores.paired_differences(df, ["gan", "wgan-gp"])
    assert diffs["a - b"].iloc[0] == pytest.approx(0.8 * 5 / 6)      # gan's W1 is higher: gan is worse
    assert answer.score_sentence(diffs, W1, True).startswith(f"{W1} itself (lower is better), paired differences")
    md = answer.tables_markdown(df, [0.5], ["gan", "wgan-gp"])
    assert f"## Successes per objective ({W1} < threshold (lower is better;" in md


def test_learning_curves_call_a_falling_distance_an_improvement():
    gains = pd.DataFrame({"objective": ["gan", "wgan-gp", "lsgan"], "ci_low": [-0.3, 0.1, -0.1],
                          "ci_high": [-0.1, 0.3, 0.1]})
    down = settled_sentence(gains, W1, 100, lower=True)
    assert "still falling at the budget" in down and "below 0, 95% CI; lower is better): gan;" in down
    assert "rising over the last interval (mean change above 0, 95% CI; lower is better): wgan-gp;" in down
    assert "no change distinguishable from 0 in the last interval: lsgan." in down
    assert "still climbing at the budget" in settled_sentence(gains, "modes_covered", 100)


def test_plot_labels_say_which_side_succeeds(tmp_path, monkeypatch):
    labels = []

    def save(fig, path):   # the labels, without rendering the file (the figures' bytes are not the point)
        labels.extend(t for ax in fig.axes for t in (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()))
        labels.extend(t.get_text() for t in fig.texts)
        plots._plt().close(fig)
        return path
    monkeypatch.setattr(plots, "_save", save)
    df = frame(ROWS)
    rates = results.success_rates(df, [0.5, 1.0], ["gan", "wgan-gp"])
    plots.plot_success_rates(rates, tmp_path / "rates.png", W1, lower=True)
    assert f"threshold t on {W1} (success: {W1} < t)" in labels
    plots.plot_distributions(df, ["gan", "wgan-gp"], [W1, "modes_covered"], tmp_path / "dist.png")
    assert f"{W1} (lower is better)" in labels and "modes_covered" in labels
    diffs = scores.paired_differences(df, ["gan", "wgan-gp"])
    plots.plot_paired_differences(diffs, W1, tmp_path / "diffs.png", lower=True)
    assert any("lower is better: negative favours the first" in t for t in labels)
    curves = pd.DataFrame({"run_id": ["r1", "r1"], "objective": ["gan", "gan"], "metric": [W1, W1],
                           "step": [100, 200], "value": [0.9, 0.5]})
    plots.plot_learning_curves(curves, ["gan"], W1, tmp_path / "lc.png", {"w1 < 0.5": 0.5}, lower=True)
    assert f"{W1} (thin: trials, thick: mean; lower is better)" in labels
    effects = pd.DataFrame({"factor": ["depth_g"], "value": ["4"], "objective": ["gan"], "rate": [0.5], "n": [2]})
    plots.plot_factor_effects(effects, ["gan"], 0.5, tmp_path / "fe.png", W1)
    assert f"success rate by factor value ({W1} < 0.5)" in labels


def test_pairs_on_a_trials_csv_read_the_direction_from_its_headline(tmp_path):
    df = frame(ROWS)
    csv = tmp_path / "trials.csv"
    df.to_csv(csv, index=False)
    text = pairs_text(csv, [0.5], ["gan", "wgan-gp"])
    assert f"success: {W1} < threshold (lower is better;" in text
    assert "| 0.5 | 2 | 12 |" in text                  # gan's a0 seeds, and every wgan-gp trial
    assert "wgan-gp over gan (10 vs 0 pairs" in text
