"""The report's answer in words: what a study can and cannot tell apart."""
from __future__ import annotations

import pandas as pd

from harness.study.report.answer import pair_sentence, power_caveat


def test_no_difference_says_when_the_study_is_too_small_to_find_one():
    assert "smallest attainable p = 0.0625" in power_caveat(5)    # 5 seeds of one architecture
    assert power_caveat(6) == ""                                  # 2^-5 = 0.031: a clean sweep would show


def _pairs(rows):
    return pd.DataFrame(rows, columns=["a", "b", "only_a", "only_b", "pairs", "p_mcnemar", "p_holm"])


def test_the_answer_judges_pairs_after_holm_and_names_raw_only_ones_as_suggestive():
    text = pair_sentence(_pairs([("gan", "wgan-clip", 12, 0, 12, 0.0005, 0.003),
                                 ("gan", "sngan", 0, 6, 12, 0.031, 0.12), ("sngan", "wgan-clip", 1, 1, 12, 1.0, 1.0)]))
    assert text.startswith("Differences beyond noise (exact McNemar on the discordant pairs, Holm-adjusted over the 3")
    assert "gan over wgan-clip (12 vs 0 pairs, p = 0.0005, Holm 0.003)" in text
    assert "suggestive, not established): sngan over gan (6 vs 0 pairs, p = 0.031, Holm 0.12)" in text
    assert "sngan over wgan-clip" not in text and "wgan-clip over sngan" not in text


def test_no_pair_after_holm_says_so_with_the_power_caveat():
    text = pair_sentence(_pairs([("gan", "sngan", 0, 5, 5, 0.0625, 0.19), ("gan", "lsgan", 2, 2, 5, 1.0, 1.0)]))
    assert text.startswith("No pair of objectives differs beyond noise") and "smallest attainable p = 0.0625" in text
    assert "suggestive" not in text
