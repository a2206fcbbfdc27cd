"""Report tables on hand-made trial records (pure pandas, no store)."""
from __future__ import annotations

import math

import pytest

from harness.published import PUBLISHED
from harness.record import TrialRecord
from harness.study import factors, results
from harness.study.intervals import rate_interval
from harness.study.report.sections import published_comparison


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
    ("gan", "a2", "collapsed", 7.0), ("wgan-gp", "a2", "ok", 4.0),   # collapsed: strict rule only refuses it
    ("gan", "a3", "diverged", NAN), ("wgan-gp", "a3", "ok", 2.5),
    ("gan", "a4", "ok", 3.5), ("wgan-gp", "a4", "failed", NAN),
]


def test_success_is_the_papers_rule_and_strict_refuses_collapse():
    df = frame(ROWS)
    ok = results.success(df, 3.0)
    assert sorted(df.loc[ok, "trial_id"]) == ["a1-gan-s0", "a1-wgan-gp-s0", "a2-gan-s0", "a2-wgan-gp-s0", "a4-gan-s0"]
    strict = results.success(df, 3.0, "strict")
    assert sorted(df.loc[strict, "trial_id"]) == ["a1-gan-s0", "a1-wgan-gp-s0", "a2-wgan-gp-s0", "a4-gan-s0"]
    assert not results.success(df, 7.0).any()        # strictly above
    counts = results.success_counts(df, [1.0, 3.0, 5.5], ["gan", "wgan-gp"])
    assert counts.loc[1.0].tolist() == [3, 3] and counts.loc[3.0].tolist() == [3, 2]
    assert counts.loc[5.5].tolist() == [1, 1]
    assert results.success_counts(df, [5.5], ["gan", "wgan-gp"], "strict").loc[5.5].tolist() == [0, 1]


def test_pair_table_in_the_papers_format():
    t = results.pair_table(frame(ROWS), "gan", "wgan-gp", [3.0], "strict").iloc[0]
    # a1 both, a2 only wgan-gp (gan collapsed), a3 neither (2.5 < 3), a4 only gan (wgan-gp failed)
    assert (t["only gan"], t["only wgan-gp"], t["both succeeded"], t["both failed"], t["pairs"]) == (1, 1, 1, 1, 4)
    assert t["p (McNemar)"] == 1.0
    long = results.all_pair_tables(frame(ROWS), [3.0], ["gan", "wgan-gp"])
    assert long[["only_a", "only_b", "both", "neither"]].iloc[0].tolist() == [1, 0, 2, 1]   # paper rule


def test_rates_with_their_interval_and_factor_effects():
    rates = results.success_rates(frame(ROWS), [3.0], ["gan", "wgan-gp"])
    r = rates.set_index("objective").loc["wgan-gp"]
    assert r["rate"] == 0.5 and r["ci_low"] <= 0.5 <= r["ci_high"] and r["n"] == 4
    eff = factors.factor_effects(frame(ROWS), 3.0, ["gan", "wgan-gp"])
    g = eff[(eff["factor"] == "depth_g") & (eff["objective"] == "gan")].set_index("value")["rate"]
    assert g["4"] == 1.0 and g["8"] == 0.5
    assert results.status_counts(frame(ROWS), ["gan"]).loc["gan"].tolist() == [2, 1, 1, 0, 4]


def test_the_latest_attempt_of_a_trial_counts_once():
    old = TrialRecord("a1-gan-s0", "a1", "gan", 0, status="failed", tracking={"start_time": 1})
    new = TrialRecord("a1-gan-s0", "a1", "gan", 0, status="ok", tracking={"start_time": 2})
    df = results.frame([new, old])
    assert len(df) == 1 and df["status"].iloc[0] == "ok"


def test_published_table_beside_ours():
    rows = [(o, f"a{i}", "ok", 6.0 if o == "wgan-gp" else 2.0) for i in range(4) for o in ("gan", "wgan-gp")]
    table, note = published_comparison(frame(rows), "gulrajani2017")
    assert table["threshold"].tolist() == [1.0 + 0.5 * i for i in range(17)]
    assert table.set_index("threshold").loc[5.0, "only wgan-gp"] == "4 / 147"
    assert "200" in note


@pytest.mark.parametrize("key", sorted(PUBLISHED))
def test_published_rows_account_for_every_architecture(key):
    pub = PUBLISHED[key]
    assert {t: sum(row) for t, row in pub.rows.items()} == {t: pub.n for t in pub.rows}


def test_mcnemar_by_hand():
    # 9 discordant pairs split 8 / 1: two-sided exact p = 2 * (C(9,0) + C(9,1)) / 2**9 = 20 / 512
    assert results.mcnemar_p(8, 1) == pytest.approx(20 / 512)
    assert results.mcnemar_p(1, 8) == pytest.approx(20 / 512)
    assert results.mcnemar_p(0, 0) == 1.0 and results.mcnemar_p(3, 3) == 1.0


def seeded(rows):
    """rows: (objective, arch_id, seed, score), all ok, headline 'is'."""
    return results.frame(TrialRecord(f"{a}-{o}-s{s}", a, o, s, headline="is", metrics={"is": v})
                         for o, a, s, v in rows)


def test_net_wins_matrix_marks_significance():
    # 10 (arch, seed) pairs: wgan-gp succeeds on all at t=1, gan on none: 10 discordant, p = 2 / 1024
    rows = [(o, f"a{i}", s, 2.0 if o == "wgan-gp" else 0.5) for i in range(5) for s in (0, 1)
            for o in ("gan", "wgan-gp")]
    m = results.net_wins(seeded(rows), 1.0, ["gan", "wgan-gp"])
    assert m.loc["wgan-gp", "gan"] == "+10**" and m.loc["gan", "wgan-gp"] == "-10**" and m.loc["gan", "gan"] == "-"


def test_rates_take_architectures_as_units_and_noise_floor_per_threshold():
    # a0 succeeds on both seeds, a1 on one of two, a2 on none: per-architecture shares 1, .5, 0
    rows = [("gan", "a0", 0, 2.0), ("gan", "a0", 1, 2.0), ("gan", "a1", 0, 2.0), ("gan", "a1", 1, 0.0),
            ("gan", "a2", 0, 0.0), ("gan", "a2", 1, 0.0)]
    df = seeded(rows)
    r = results.success_rates(df, [1.0], ["gan"]).iloc[0]
    assert r["rate"] == 0.5 and r["architectures"] == 3 and r["n"] == 6 and r["units"] == "architectures"
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(tuple(float(v) for v in rate_interval([1.0, 0.5, 0.0], 6))[1:])
    assert 0 <= r["ci_low"] < 0.5 < r["ci_high"] <= 1
    share, groups = results.noise_floor(df, [1.0, 3.0])
    assert groups == 6 and share == pytest.approx(1 / 6)       # only a1 at t=1 differs between seeds
    by_t = results.noise_floor_by_threshold(df, [1.0, 3.0]).set_index("threshold")
    assert by_t.loc[1.0, ["groups", "differ"]].tolist() == [3, 1] and by_t.loc[1.0, "share"] == pytest.approx(1 / 3)
    assert by_t.loc[3.0, "share"] == 0.0        # every trial fails at 3: the pooled 1/6 is this dilution
    assert math.isnan(results.noise_floor(frame(ROWS), [1.0])[0])   # one seed: no noise floor to measure


def test_a_rate_of_0_of_n_or_n_of_n_has_an_interval_of_positive_width():
    """0/24 used to print `0.00 [0.00, 0.00]`; the seeds of an architecture agreeing, the 8
    architectures are what the interval can lean on."""
    fail = seeded([("gan", f"a{i}", s, 0.0) for i in range(8) for s in range(3)])
    r = results.success_rates(fail, [1.0], ["gan"]).iloc[0]
    assert r["rate"] == 0.0 and r["ci_low"] == 0.0 and 0.2 < r["ci_high"] < 0.6
    win = results.success_rates(fail, [-1.0], ["gan"]).iloc[0]
    assert win["rate"] == 1.0 and win["ci_high"] == 1.0 and win["ci_low"] == pytest.approx(1 - r["ci_high"])
    one = seeded([("gan", "a0", s, 0.0) for s in range(5)])     # one architecture: 5 independent seeds
    r1 = results.success_rates(one, [1.0], ["gan"]).iloc[0]
    assert r1["units"] == "seeds" and r1["ci_high"] == pytest.approx(1 - 0.025 ** (1 / 5))   # Clopper-Pearson 0/5


def test_norm_d_is_inert_for_an_objective_whose_d_has_no_norm():
    rows = [TrialRecord(f"a{i}-{o}-s0", f"a{i}", o, 0, headline="is", metrics={"is": float(i)},
                        params={"arch.norm_d": str(i % 2 == 0), "objective.d_norm": "none" if o == "sngan" else "batch"})
            for i in range(4) for o in ("gan", "sngan")]
    df = results.frame(rows)
    assert factors.inert_factors(df) == {"sngan": ["norm_d"]}
    eff = factors.factor_effects(df, 1.5, ["gan", "sngan"])
    assert set(eff.loc[eff["factor"] == "norm_d", "objective"]) == {"gan"}


def test_one_architecture_takes_its_seeds_as_units():
    rows = [("gan", "a0", s, 2.0 if s < 2 else 0.0) for s in range(4)]
    r = results.success_rates(seeded(rows), [1.0], ["gan"]).iloc[0]
    assert r["units"] == "seeds" and r["rate"] == 0.5 and r["ci_low"] < 0.5 < r["ci_high"]


def test_holm_adjustment_against_a_hand_computation():
    # sorted: 0.01 x 4 = 0.04; 0.03 x 3 = 0.09; 0.04 x 2 = 0.08 -> 0.09 (order kept); 0.2 x 1
    assert results.holm([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert results.holm([0.5, 0.6, 0.7]) == pytest.approx([1.0, 1.0, 1.0])     # capped at 1
    assert results.holm([0.003]) == pytest.approx([0.003])                      # one test: unchanged


def test_pair_p_values_are_adjusted_over_the_pairs_and_thresholds_with_something_to_test():
    # wgan-gp beats gan and lsgan on 7 of 7 pairs each (p = 2^-6 = 0.016); gan and lsgan tie
    rows = [(o, f"a{i}", 0, 2.0 if o == "wgan-gp" else 0.5) for i in range(7) for o in ("gan", "lsgan", "wgan-gp")]
    df = seeded(rows)
    long = results.all_pair_tables(df, [1.0, 3.0], ["gan", "lsgan", "wgan-gp"]).set_index(["a", "b", "threshold"])
    assert long.loc[("gan", "wgan-gp", 1.0), "p_mcnemar"] == pytest.approx(2 ** -6)
    # gan vs lsgan ties on every pair (no discordance: nothing to test), so the family holds 2 tests
    assert long.loc[("gan", "wgan-gp", 1.0), "p_holm"] == pytest.approx(2 * 2 ** -6)   # smallest of 2
    assert long.loc[("lsgan", "wgan-gp", 1.0), "p_holm"] == pytest.approx(2 * 2 ** -6)  # running maximum
    assert long.loc[("gan", "lsgan", 1.0), "p_holm"] == 1.0
    assert (long.xs(3.0, level="threshold")["p_holm"] == 1.0).all()    # nobody succeeds at 3: no discordance
    # ... so threshold 3 adds no test to the family, nor does gan vs lsgan at 1 (both fail everywhere)
    assert results.pair_family(long.reset_index()) == {"pairs": 3, "thresholds": 2, "mcnemar": 2, "architectures": 2}
    tables = results.pair_tables(df, [1.0, 3.0], ["gan", "lsgan", "wgan-gp"])
    assert list(tables) == [("gan", "lsgan"), ("gan", "wgan-gp"), ("lsgan", "wgan-gp")]
    assert tables[("gan", "wgan-gp")]["p (Holm)"].tolist() == pytest.approx([2 * 2 ** -6, 1.0])
    wins = results.net_wins(df, 1.0, ["gan", "lsgan", "wgan-gp"])
    assert wins.loc["wgan-gp", "gan"] == "+7*" and wins.loc["gan", "wgan-gp"] == "-7*"   # 0.031 after Holm: one star


def test_architecture_level_p_counts_an_architectures_seeds_once():
    # wgan-gp wins all 3 seeds of a0 and a1, ties on a2..a3: 6 discordant pairs (McNemar 2^-5)
    # but only 2 architectures ahead of none, which a sign-flip test cannot tell from chance (0.5)
    rows = [(o, f"a{i}", s, 2.0 if o == "wgan-gp" or i >= 2 else 0.5)
            for i in range(4) for s in range(3) for o in ("gan", "wgan-gp")]
    t = results.pair_table(seeded(rows), "gan", "wgan-gp", [1.0]).iloc[0]
    assert t["only wgan-gp"] == 6 and t["p (McNemar)"] == pytest.approx(2 ** -5)
    assert (t["architectures"], t["gan ahead"], t["wgan-gp ahead"]) == (4, 0, 2)
    assert t["p (architectures)"] == pytest.approx(0.5)
    long = results.all_pair_tables(seeded(rows), [1.0], ["gan", "wgan-gp"]).iloc[0]
    assert (long["arch_ahead_a"], long["arch_ahead_b"], long["p_arch_holm"]) == (0, 2, pytest.approx(0.5))


def test_sign_flip_p_against_enumeration():
    import itertools
    import numpy as np
    units = np.array([3.0, 2.0, 1.0, -1.0, 0.5])
    observed = abs(units.mean())
    flips = [abs((units * np.array(signs)).mean()) for signs in itertools.product((1, -1), repeat=len(units))]
    by_hand = sum(f >= observed - 1e-12 for f in flips) / len(flips)
    assert results.sign_flip_p(units) == pytest.approx(by_hand)
    assert results.sign_flip_p([1.0] * 8) == pytest.approx(2 ** -7)        # all one way: the floor 2^(1-k)
    assert results.sign_flip_p([2.0, 2.0, -2.0]) == pytest.approx(1.0)    # equal magnitudes: the sign test
    assert results.sign_flip_p([0.0, 0.0]) == 1.0
    assert math.isnan(results.sign_flip_p([4.0]))                         # one unit: no test


def test_holm_leaves_untested_pairs_out_of_the_count():
    adjusted = results.holm([0.01, float("nan"), 0.03])
    assert adjusted[0] == pytest.approx(0.02) and adjusted[2] == pytest.approx(0.03) and math.isnan(adjusted[1])


def test_one_architecture_has_no_architecture_columns_to_show():
    rows = [(o, "a0", s, 2.0 if o == "wgan-gp" else 0.5) for s in range(6) for o in ("gan", "wgan-gp")]
    table = results.pair_table(seeded(rows), "gan", "wgan-gp", [1.0])
    assert math.isnan(table["p (architectures)"].iloc[0])               # one unit: no such test
    assert list(results.drop_untested(table).columns) == [
        "threshold", "only gan", "only wgan-gp", "both succeeded", "both failed", "pairs", "p (McNemar)"]
    long = results.all_pair_tables(seeded(rows), [1.0], ["gan", "wgan-gp"])
    assert "p_arch" not in results.drop_untested(long) and "p_holm" in results.drop_untested(long)
    two = seeded(rows + [(o, "a1", 0, 2.0) for o in ("gan", "wgan-gp")])
    assert "p (architectures)" in results.drop_untested(results.pair_table(two, "gan", "wgan-gp", [1.0]))


def test_the_family_is_every_pair_at_every_threshold_a_reader_is_shown():
    """A statement that picks the threshold where a test is strongest has had pairs x thresholds
    chances: the same 7-of-7 win read at two thresholds counts twice."""
    rows = [(o, f"a{i}", 0, 4.0 if o == "wgan-gp" else 0.5) for i in range(7) for o in ("gan", "wgan-gp")]
    df = seeded(rows)
    one = results.all_pair_tables(df, [1.0], ["gan", "wgan-gp"]).iloc[0]
    two = results.all_pair_tables(df, [1.0, 3.0], ["gan", "wgan-gp"])
    assert one["p_holm"] == pytest.approx(2 ** -6)                       # one test: nothing to adjust
    assert two["p_holm"].tolist() == pytest.approx([2 * 2 ** -6] * 2)   # 1 pair x 2 thresholds
    assert two["p_arch_holm"].tolist() == pytest.approx([2 * 2 ** -6] * 2)
    fam = results.pair_family(two)
    assert fam == {"pairs": 1, "thresholds": 2, "mcnemar": 2, "architectures": 2}
    assert results.family_text(fam) == "1 pair x 2 thresholds: 2 tests"
    # net wins at 1 read the family of every threshold the report shows
    assert results.net_wins(df, 1.0, ["gan", "wgan-gp"]).loc["wgan-gp", "gan"] == "+7*"                 # 0.016
    assert results.net_wins(df, 1.0, ["gan", "wgan-gp"], thresholds=[1.0, 3.0, 3.5, 3.9]).loc["wgan-gp", "gan"] == "+7"


def test_holm_counts_only_the_tests_it_is_told_to():
    adjusted = results.holm([0.01, 1.0, 0.02], counted=[True, False, True])
    assert adjusted.tolist() == pytest.approx([0.02, 1.0, 0.02])


def test_sign_flip_p_past_16_units_agrees_with_scipys_monte_carlo_in_bounded_memory():
    """Past 16 units the p is a Monte Carlo of random sign flips drawn in bounded batches (a
    large trials.csv took minutes and gigabytes through scipy's per-resample loop)."""
    import numpy as np
    from scipy.stats import permutation_test
    d = np.random.default_rng(3).standard_normal(40) + 0.35
    scipy_p = permutation_test((d,), np.mean, permutation_type="samples", n_resamples=20000,
                               rng=np.random.default_rng(1)).pvalue
    assert 0.005 < scipy_p < 0.2                                  # a p where the two can be compared
    assert results.sign_flip_p(d) == pytest.approx(scipy_p, abs=0.01)
    assert results.sign_flip_p(-d) == results.sign_flip_p(d)     # two-sided
