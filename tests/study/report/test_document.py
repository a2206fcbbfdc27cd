"""The report document: thresholds print the same in prose and in tables, markdown and HTML."""
from __future__ import annotations

import pandas as pd

from harness.study.report.document import Document, md_table, threshold_text
import pytest

pytestmark = pytest.mark.usefixtures("stand_in_floors")   # tests/conftest.py


def test_a_relative_threshold_prints_to_four_digits_in_prose_and_tables():
    assert threshold_text(3.99602) == "3.996" and threshold_text(1.0) == "1" and threshold_text(6.99303) == "6.993"
    by_index = pd.DataFrame({"gan": [12, 7]}, index=pd.Index([2.99701, 3.99602], name="threshold"))
    by_column = pd.DataFrame({"threshold": [3.99602], "only gan": [3], "p": [0.2500001]})
    assert "| 3.996 | 7 |" in md_table(by_index, index=True)
    assert "| 3.996 | 3 | 0.25 |" in md_table(by_column)        # other floats keep three digits
    doc = Document()
    doc.table(by_index, index=True)
    assert "3.996" in doc.html("t") and "3.99602" not in doc.html("t") and "| 2.997 | 12 |" in doc.markdown()


def test_tables_without_thresholds_are_unchanged():
    df = pd.DataFrame({"rate": [0.6251]}, index=pd.Index([0.5], name="fraction"))
    assert md_table(df, index=True).splitlines()[-1] == "| 0.5 | 0.625 |"
