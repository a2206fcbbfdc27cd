"""Learning curves of the headline metric: means per evaluation, and whether the climb had settled."""
from __future__ import annotations

import pandas as pd
import pytest

from harness.study.learning_curves import curve_table, final_gains, per_trial, settled_sentence


def history(rows):
    return pd.DataFrame(rows, columns=["run_id", "objective", "metric", "step", "value"])


def climbing_and_flat():
    """gan climbs about 1 per interval on every trial; wgan-gp wobbles around 3 from the
    second evaluation on; one gan trial diverged after the first evaluation."""
    rows = []
    for i, gain in enumerate([1.0, 1.2, 0.8, 1.1]):
        rows += [(f"g{i}", "gan", "is", s, 1.0 + gain * s / 10) for s in (10, 20, 30)]
    for i, wobble in enumerate([0.1, -0.1, 0.05, -0.05]):
        rows += [(f"w{i}", "wgan-gp", "is", 10, 2.0), (f"w{i}", "wgan-gp", "is", 20, 3.0),
                 (f"w{i}", "wgan-gp", "is", 30, 3.0 + wobble)]
    rows += [("g-diverged", "gan", "is", 10, 0.5), ("g-diverged", "gan", "is", 14, 0.1)]
    rows += [(f"g{i}", "gan", "loss_d", 30, 9.0) for i in range(4)]     # another metric: ignored
    return history(rows)


def test_curve_table_is_the_mean_per_evaluation_with_each_trial_counted_once():
    curves = history([("a", "gan", "is", 10, 1.0), ("a", "gan", "is", 20, 4.0), ("a", "gan", "is", 20, 4.0),
                      ("b", "gan", "is", 10, 3.0), ("b", "gan", "is", 20, 8.0), ("c", "sngan", "is", 10, 5.0),
                      ("c", "sngan", "is", 13, 0.0)])
    table = curve_table(curves, ["sngan", "gan", "wgan-gp"], "is", every=10)
    assert list(table.index) == ["sngan", "gan"] and list(table.columns) == ["10", "20"]
    assert table.loc["gan", "20"] == 6.0           # the final record's repeat of a's last evaluation is not a third trial
    assert table.loc["sngan", "10"] == 5.0 and pd.isna(table.loc["sngan", "20"])   # step 13 is off the schedule
    assert curve_table(curves, ["gan"], "fid") .empty


def test_per_trial_keeps_the_last_value_of_each_trial_and_step_and_only_the_metric_asked_for():
    curves = history([("a", "gan", "is", 10, 1.0), ("a", "gan", "is", 10, 1.5), ("a", "gan", "fid", 10, 90.0),
                      ("b", "gan", "is", 10, 3.0), ("b", "gan", "is", 15, 0.2)])
    got = per_trial(curves, "is", every=10).set_index("run_id")["value"]
    assert got.to_dict() == {"a": 1.5, "b": 3.0}
    assert len(per_trial(curves, "is")) == 3          # without a schedule the off-schedule step stays


def test_final_gains_separate_a_climbing_objective_from_a_settled_one():
    gains = final_gains(climbing_and_flat(), ["gan", "wgan-gp"], "is", budget=30, every=10).set_index("objective")
    gan, wgan = gains.loc["gan"], gains.loc["wgan-gp"]
    assert gan["trials"] == 4                                   # the diverged trial never reached the budget
    assert gan["gain, last interval"] == pytest.approx(1.025) and gan["ci_low"] > 0.5
    assert gan["gain, interval before"] == pytest.approx(1.025)
    assert gan["rose in the last interval"] == "4 / 4"
    assert wgan["gain, last interval"] == pytest.approx(0.0) and wgan["ci_low"] < 0 < wgan["ci_high"]
    assert wgan["gain, interval before"] == pytest.approx(1.0) and wgan["rose in the last interval"] == "2 / 4"
    sentence = settled_sentence(gains.reset_index(), "is", 10)
    climbing, flat = sentence.split("; a larger budget")
    assert "gan" in climbing and "wgan-gp" not in climbing and "no change distinguishable from 0" in flat
    assert "wgan-gp" in flat and "falling" not in sentence


def test_a_metric_that_fell_over_the_last_interval_is_called_falling_not_flat():
    rows = [(f"t{i}", "gan", "is", s, v) for i, drop in enumerate([0.5, 0.6, 0.4])
            for s, v in ((10, 2.0), (20, 4.0), (30, 4.0 - drop))]
    gains = final_gains(history(rows), ["gan"], "is", budget=30, every=10)
    assert gains["ci_high"].iloc[0] < 0
    sentence = settled_sentence(gains, "is", 10)
    assert sentence.startswith("is: falling over the last interval") and "climbing" not in sentence


def test_final_gains_need_both_ends_of_the_last_interval():
    curves = climbing_and_flat()
    assert final_gains(curves, ["gan"], "is", budget=40, every=10).empty      # nobody evaluated at 40
    assert final_gains(curves, ["gan"], "fid", budget=30, every=10).empty
    one_interval = final_gains(curves[curves["step"] >= 20], ["gan"], "is", budget=30, every=10)
    assert pd.isna(one_interval["gain, interval before"].iloc[0])   # no evaluation at 10 left: no earlier gain


def test_the_gain_interval_takes_architectures_as_units():
    """Two architectures, three seeds each: the seeds of one move together, so the interval is
    the t-interval over the 2 architecture means, not over 6 trials."""
    import numpy as np
    from scipy import stats
    rows = []
    for arch, gain in (("a0", 1.0), ("a1", 3.0)):
        for s in range(3):
            rows += [(f"{arch}-{s}", arch, "gan", "is", 10, 1.0), (f"{arch}-{s}", arch, "gan", "is", 20, 2.0),
                     (f"{arch}-{s}", arch, "gan", "is", 30, 2.0 + gain + 0.01 * s)]
    curves = pd.DataFrame(rows, columns=["run_id", "arch_id", "objective", "metric", "step", "value"])
    g = final_gains(curves, ["gan"], "is", budget=30, every=10).iloc[0]
    means = np.array([1.01, 3.01])
    half = stats.t.ppf(0.975, 1) * means.std(ddof=1) / np.sqrt(2)
    assert g["units"] == "2 architectures" and g["trials"] == 6
    assert (g["ci_low"], g["ci_high"]) == pytest.approx((means.mean() - half, means.mean() + half))
    no_arch = final_gains(curves.drop(columns="arch_id"), ["gan"], "is", budget=30, every=10).iloc[0]
    assert no_arch["units"] == "6 trials" and no_arch["ci_high"] - no_arch["ci_low"] < g["ci_high"] - g["ci_low"]
