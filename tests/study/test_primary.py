"""The primary comparison: named in the experiment (or the default), tested alone, shown first."""
from __future__ import annotations

import pytest

from harness.config import from_dict
from harness.errors import ConfigError
from harness.record import TrialRecord
from harness.study import primary, results, scores
from harness.study.intervals import rate_difference_interval


def seeded(rows):
    """rows: (objective, arch_id, seed, score), all ok, headline 'is'."""
    return results.frame(TrialRecord(f"{a}-{o}-s{s}", a, o, s, headline="is", metrics={"is": v}) for o, a, s, v in rows)


BASE = {"dataset": "ring8", "objectives": ["gan", "wgan-gp", "lsgan"], "thresholds": [2.0, 4.0, 6.0]}


def test_the_experiment_names_its_primary_comparison_or_gets_the_default():
    default = from_dict(BASE)
    assert default.primary.pairs == [] and default.primary.threshold is None
    named = from_dict({**BASE, "primary": {"pairs": ["lsgan", "gan"], "threshold": 4}})
    assert named.primary.pairs == [["lsgan", "gan"]] and named.primary.threshold == 4.0     # one pair may be flat
    assert named.to_dict()["primary"] == {"pairs": [["lsgan", "gan"]], "threshold": 4.0}


@pytest.mark.parametrize("spec, field, message", [
    ({"pairs": [["gan", "sngan"]]}, "primary.pairs[0]", "'sngan' is not one of the experiment's objectives"),
    ({"pairs": [["gan", "gan"]]}, "primary.pairs[0]", "compares 'gan' with itself"),
    ({"pairs": [["gan"]]}, "primary.pairs[0]", "expected two objective names"),
    ({"pairs": [["gan", "lsgan"], ["lsgan", "gan"]]}, "primary.pairs", "a pair is named twice"),
    ({"threshold": 5.0}, "primary.threshold", "5.0 is not one of the thresholds [2.0, 4.0, 6.0]"),
    ({"threshold": "high"}, "primary.threshold", "expected float"),
    ({"pair": ["gan", "lsgan"]}, "primary.pair", "unknown key"),
])
def test_a_bad_primary_is_refused_by_field(spec, field, message):
    with pytest.raises(ConfigError) as err:
        from_dict({**BASE, "primary": spec})
    assert err.value.field == field and message in str(err.value)


def test_resolve_reads_the_stored_experiment_and_maps_a_relative_threshold():
    exp = from_dict(BASE).to_dict()
    p = primary.resolve(exp, [2.0, 4.0, 6.0])
    assert (p.pairs, p.threshold, p.named) == ([("gan", "wgan-gp")], None, False) and "the default" in p.source()
    old = {k: v for k, v in exp.items() if k != "primary"}           # a sweep stored before the field existed
    assert primary.resolve(old, [2.0, 4.0, 6.0]).pairs == [("gan", "wgan-gp")]
    relative = from_dict({**BASE, "thresholds": [0.5, 0.9], "thresholds_relative": True,
                          "primary": {"pairs": [["gan", "lsgan"]], "threshold": 0.9}}).to_dict()
    p = primary.resolve(relative, [3.996, 7.193])
    assert (p.threshold, p.given, p.named) == (7.193, 0.9, True) and p.source().startswith("named in the experiment")
    assert primary.resolve({**exp, "objectives": ["gan"]}, [2.0]) is None


def test_on_the_score_it_is_the_paired_difference_tested_alone():
    # wgan-gp above gan by 1 + i on 5 architectures (2 seeds each), lsgan equal to gan
    rows = [(o, f"a{i}", s, 1.0 + (1 + i) * (o == "wgan-gp")) for i in range(5) for s in (0, 1)
            for o in ("gan", "wgan-gp", "lsgan")]
    df = seeded(rows)
    p = primary.resolve(from_dict(BASE).to_dict(), [2.0, 4.0, 6.0])
    row = primary.comparison(df, p).iloc[0]
    diff = scores.paired_differences(df, ["gan", "wgan-gp"]).iloc[0]
    assert (row["a - b"], row["ci_low"], row["ci_high"]) == (diff["a - b"], diff["ci_low"], diff["ci_high"])
    assert row["p"] == pytest.approx(2 ** -4) and row["units"] == "5 architectures"
    # the same pair among all three in the secondary table is adjusted (2 tests: gan - lsgan has nothing to test)
    secondary = scores.paired_differences(df, ["gan", "wgan-gp", "lsgan"]).set_index(["a", "b"])
    assert secondary.loc[("gan", "wgan-gp"), "p (Holm)"] == pytest.approx(2 * 2 ** -4)
    text = primary.sentences(primary.comparison(df, p), p, "is")
    assert "tested alone (no adjustment for the rest of the report)" in text[0]
    assert "sign flips over architectures p = 0.0625: no difference established (p >= 0.05)" in text[1]


def test_at_a_threshold_it_is_the_difference_of_the_success_rates():
    # 6 architectures x 3 seeds: wgan-gp succeeds at 4 on every trial, gan on architectures a0 and a1 only
    rows = [(o, f"a{i}", s, 5.0 if o == "wgan-gp" or i < 2 else 3.0) for i in range(6) for s in range(3)
            for o in ("gan", "wgan-gp")]
    df = seeded(rows)
    p = primary.resolve(from_dict({**BASE, "primary": {"pairs": [["wgan-gp", "gan"]], "threshold": 4.0}}).to_dict(),
                        [2.0, 4.0, 6.0])
    row = primary.comparison(df, p).iloc[0]
    d, low, high = rate_difference_interval([1.0] * 6, [1, 1, 0, 0, 0, 0], 18)
    assert row["a - b"] == pytest.approx(4 / 6) and (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
    assert (row["only a"], row["only b"], row["units"]) == (12, 0, "6 architectures")
    assert row["p"] == pytest.approx(2 ** -3)          # 4 architectures ahead, none behind: the sign test
    text = primary.sentences(primary.comparison(df, p), p, "is")
    assert "success at is > 4" in text[0] and "difference of the success rates 0.667" in text[1]
    assert "only wgan-gp 12, only gan 0" in text[1]
    one = seeded([(o, "a0", s, 5.0 if o == "wgan-gp" else 3.0) for s in range(6) for o in ("gan", "wgan-gp")])
    single = primary.comparison(one, p).iloc[0]
    assert single["test"] == "McNemar over seeds" and single["p"] == pytest.approx(2 ** -5)


def test_several_primary_pairs_are_adjusted_over_themselves_only():
    rows = [(o, f"a{i}", 0, {"gan": 1.0, "wgan-gp": 2.0 + i, "lsgan": 1.0 + 0.1 * (i % 2)}[o])
            for i in range(6) for o in ("gan", "wgan-gp", "lsgan")]
    p = primary.resolve(from_dict({**BASE, "primary": {"pairs": [["wgan-gp", "gan"], ["lsgan", "gan"]]}}).to_dict(),
                        [2.0, 4.0, 6.0])
    table = primary.comparison(seeded(rows), p)
    assert table["p (Holm over the primary pairs)"].tolist() == pytest.approx(results.holm(table["p"]))
    assert "Holm-adjusted over its 2 pairs only" in primary.sentences(table, p, "is")[0]


def test_the_report_shows_the_primary_comparison_first():
    from harness.study.report.build import _primary_section
    from harness.study.report.document import Document
    rows = [(o, f"a{i}", 0, 1.0 + (1 + i) * (o == "wgan-gp")) for i in range(7) for o in ("gan", "wgan-gp", "lsgan")]
    doc = Document()
    _primary_section(doc, seeded(rows), primary.resolve(from_dict(BASE).to_dict(), [2.0]), "is", "paper")
    md = doc.markdown()
    assert md.startswith("### Primary comparison") and "a finding (p < 0.05)" in md
    assert "| gan | wgan-gp | score | 7 | 7 architectures | -4 | [" in md


def test_the_measure_says_which_side_of_the_threshold_succeeds():
    from harness.study.primary import Primary
    at = Primary([("gan", "wgan-gp")], 0.5, 0.5, named=True)
    assert at.measure("modes_covered") == "success at modes_covered > 0.5"
    assert at.measure("w1_exact_2k") == "success at w1_exact_2k < 0.5"      # lower is better (evaluate/metrics.py)
    assert Primary([("gan", "wgan-gp")], None, None, named=False).measure("w1_exact_2k") == "w1_exact_2k (no threshold)"
