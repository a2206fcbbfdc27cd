"""The report's answer in words: what a study can and cannot tell apart."""
from __future__ import annotations

import pandas as pd

from harness.study.report.answer import architecture_sentence, families_sentence, pair_sentence, power_caveat
import pytest

pytestmark = pytest.mark.usefixtures("stand_in_floors")   # tests/conftest.py


def test_no_difference_says_when_the_study_is_too_small_to_find_one():
    assert "smallest attainable p = 0.0625" in power_caveat(5)    # 5 seeds of one architecture
    assert power_caveat(6) == ""                                  # 2^-5 = 0.031: a clean sweep would show


COLUMNS = ["a", "b", "only_a", "only_b", "pairs", "p_mcnemar", "p_holm",
           "architectures", "arch_ahead_a", "arch_ahead_b", "p_arch", "p_arch_holm"]


def _pairs(rows):
    """all_pair_tables' columns; rows without the architecture-level test get NaN for it (one architecture)."""
    nan = float("nan")
    return pd.DataFrame([r + (1, 0, 0, nan, nan)[len(r) - 7:] if len(r) < 12 else r for r in rows], columns=COLUMNS)


def test_the_answer_judges_pairs_after_holm_and_names_raw_only_ones_as_leads():
    text = pair_sentence(_pairs([("gan", "wgan-clip", 12, 0, 12, 0.0005, 0.003),
                                 ("gan", "sngan", 0, 6, 12, 0.031, 0.12), ("sngan", "wgan-clip", 1, 1, 12, 1.0, 1.0)]))
    assert text.startswith("Differences beyond noise (exact McNemar on the discordant pairs, Holm-adjusted over "
                           "3 pairs x 1 threshold: 3 tests")
    assert "gan over wgan-clip (12 vs 0 pairs, p = 0.0005, Holm 0.003)" in text
    assert "(a lead, not a finding): sngan over gan (6 vs 0 pairs, p = 0.031, Holm 0.12)" in text
    assert "sngan over wgan-clip" not in text and "wgan-clip over sngan" not in text


def test_no_pair_after_holm_says_so_with_the_power_caveat():
    text = pair_sentence(_pairs([("gan", "sngan", 0, 5, 5, 0.0625, 0.19), ("gan", "lsgan", 2, 2, 5, 1.0, 1.0)]))
    assert text.startswith("No pair of objectives differs beyond noise") and "smallest attainable p = 0.0625" in text
    assert "lead" not in text


def test_the_family_named_is_the_one_the_reader_is_shown():
    """Sentences about one threshold name the whole family (pairs x thresholds) when given it."""
    pairs = _pairs([("gan", "sngan", 0, 9, 12, 0.004, 0.09)])
    family = {"pairs": 15, "thresholds": 7, "mcnemar": 98, "architectures": 60}
    text = pair_sentence(pairs, family)
    assert "Holm-adjusted over 15 pairs x 7 thresholds: 98 tests (7 with nothing to test left out)" in text
    assert text.startswith("No pair of objectives differs beyond noise") and "a lead, not a finding" in text
    sentence = families_sentence(family, 15, 35)
    assert "the score's paired differences: 15 tests" in sentence and "the factor tests: all 35 together" in sentence
    assert "(McNemar; 60 with the architectures as the units)" in sentence
    one_arch = families_sentence({**family, "architectures": 0}, 15, 0)   # a mode-collapse study: no such test
    assert "(McNemar)" in one_arch and "factor tests: none has anything to test" in one_arch


def test_held_pairs_are_also_judged_with_architectures_as_units():
    pairs = _pairs([("gan", "wgan-clip", 18, 0, 18, 1e-5, 5e-5, 8, 8, 0, 0.0078, 0.047),
                    ("wgan-gp", "wgan-clip", 12, 0, 17, 5e-4, 0.003, 8, 6, 0, 0.031, 0.19),
                    ("gan", "wgan-gp", 2, 4, 17, 0.69, 1.0, 8, 1, 2, 0.75, 1.0)])
    text = pair_sentence(pairs)
    assert "gan over wgan-clip (18 vs 0 pairs, p = 1e-05, Holm 5e-05; architectures 8 vs 0 of 8, Holm 0.047)" in text
    arch = architecture_sentence(pairs)
    assert "Holm-adjusted over 3 pairs x 1 threshold: 3 tests; with 8 architectures it cannot go below p = 0.023" in arch
    assert arch.endswith("holds for gan vs wgan-clip. Below 0.05 only before the adjustment (a lead, not a finding): "
                         "wgan-gp vs wgan-clip (p = 0.031).")
    # 15 pairs over 8 architectures: even a clean sweep gives Holm >= 15 x 2^-7 = 0.12
    many = _pairs([("gan", "wgan-gp", 10, 0, 40, 1e-3, 0.01, 8, 5, 0, 0.0625, 0.9)] +
                  [("x", f"y{i}", 1, 1, 40, 1.0, 1.0, 8, 1, 1, 1.0, 1.0) for i in range(14)])
    assert "cannot go below p = 0.12): none of these holds. More architectures, not more seeds" in architecture_sentence(many)
    assert architecture_sentence(_pairs([("gan", "sngan", 0, 6, 6, 0.03, 0.03)])) == ""   # one architecture: no such test
