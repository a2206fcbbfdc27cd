"""The report's answer in words: what a study can and cannot tell apart."""
from __future__ import annotations

from harness.study.report.answer import power_caveat


def test_no_difference_says_when_the_study_is_too_small_to_find_one():
    assert "smallest attainable p = 0.0625" in power_caveat(5)    # 5 seeds of one architecture
    assert power_caveat(6) == ""                                  # 2^-5 = 0.031: a clean sweep would show
