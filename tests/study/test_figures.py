"""`make figures`: every committed report and pairs.md rebuilt from the committed files must
match them (harness/study/figures.py). The slow tests run the real check on the committed
studies; the fast ones check that a difference is found and named, and what is left out."""
from __future__ import annotations

import pandas as pd
import pytest

from harness.study import figures

PAIRS_ONLY = [s for s in figures.STUDIES if not s.store]


def test_every_committed_study_is_listed_with_what_it_is_rebuilt_from():
    listed = {s.name for s in figures.STUDIES}
    with_results = {p.parent.name for p in (figures.REPO / "results").glob("*/trials.csv")}
    assert with_results - listed == {"toy2d"}     # older than the score column: nothing to rebuild it with
    for s in figures.STUDIES:
        assert (figures.REPO / "results" / s.name / "trials.csv").is_file()
        assert (figures.REPO / s.store / "manifest.json").is_file() if s.store else s.thresholds


def test_a_pairs_md_that_differs_from_its_command_is_named(tmp_path, monkeypatch):
    printed = "# Pairs\n\n| gan | sngan |\n"
    monkeypatch.setattr(figures, "pairs_md", lambda study, repo: printed)      # the command's stdout (slow test below)
    pairs = tmp_path / "results" / "quick" / "pairs.md"
    pairs.parent.mkdir(parents=True)
    pairs.write_text(printed)
    quick = figures.BY_NAME["quick"]
    assert figures.check([quick], tmp_path / "scratch", tmp_path) == []          # as committed
    pairs.write_text(printed.replace("| gan | sngan |", "| gan | sngan  |"))
    assert figures.check([quick], tmp_path / "scratch", tmp_path) == [
        f"{pairs}: 2 lines differ, first: -| gan | sngan  |"]
    pairs.unlink()
    assert figures.check([quick], tmp_path / "scratch", tmp_path) == [f"{pairs}: not committed"]


def test_a_report_compares_its_text_and_tables_not_run_ids_or_images(tmp_path):
    new, old = tmp_path / "new", tmp_path / "old"
    for d, run in ((new, "aaa"), (old, "bbb")):
        (d / "plots").mkdir(parents=True)
        (d / "report.md").write_text("# r\n\n1.5\n")
        (d / "plots" / "x.png").write_bytes(run.encode())                     # image bytes: not compared
        pd.DataFrame({"run_id": [run], "trial_id": ["t"], "score": ["1.5"]}).to_csv(d / "trials.csv", index=False)
    assert figures.differences(new, old) == []
    pd.DataFrame({"run_id": ["aaa"], "trial_id": ["t"], "score": ["1.6"]}).to_csv(new / "trials.csv", index=False)
    (new / "report.md").write_text("# r\n\n1.6\n")
    (new / "factor_tests.csv").write_text("a\n1\n")
    assert figures.differences(new, old) == [
        f"{old / 'report.md'}: 2 lines differ, first: -1.5",
        f"{old / 'trials.csv'}: 1 columns differ, first ['score']",
        f"{old / 'factor_tests.csv'}: not committed"]
    (old / "factor_tests.csv").write_text("a\n1\n")
    (new / "factor_tests.csv").unlink()
    assert figures.differences(new, old)[-1] == f"{old / 'factor_tests.csv'}: not made by the rebuild"


def test_the_committed_page_links_its_images_instead_of_embedding_them(tmp_path):
    import base64
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "a.png").write_bytes(b"png-a")
    (tmp_path / "plots" / "b.png").write_bytes(b"png-b")
    uri = "data:image/png;base64," + base64.b64encode(b"png-a").decode()
    (tmp_path / "report.html").write_text(f"<img src='{uri}'><img src='{uri}'><img src='data:image/png;base64,eA=='>")
    assert figures.linked_html(tmp_path) == "<img src='plots/a.png'><img src='plots/a.png'><img src='data:image/png;base64,eA=='>"


def test_list_prints_each_study_s_command(capsys):
    assert figures.main(["list", "quick", "robustness-fmnist-cpu"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("quick: python -m harness pairs results/quick/trials.csv --threshold 1 --threshold 1.5 --threshold 2 "
                      "--threshold 2.5 --threshold 3 --threshold 3.5 --threshold 4 --threshold 5 --primary gan,sngan "
                      "> results/quick/pairs.md")
    assert "report robustness-fmnist-cpu --out REPO/results --primary gan,wgan-gp" in out[1]
    with pytest.raises(SystemExit):
        figures.main(["check", "nosuch"])


@pytest.mark.slow   # every pairs-only study's pairs command (a minute or two on 2 shared cores)
def test_every_committed_pairs_md_is_what_its_command_prints(tmp_path):
    assert figures.check(PAIRS_ONLY, tmp_path) == []


@pytest.mark.slow   # a store import and a whole report with its plots and estimator floors (minutes)
def test_the_smallest_committed_store_rebuilds_its_committed_report(tmp_path):
    assert figures.check([figures.BY_NAME["mode-collapse-pacgan-ring8"]], tmp_path) == []
