"""`python -m harness pairs trials.csv`: the pair statistics from a report's csv alone."""
from __future__ import annotations

import pytest

from harness.cli import main
from harness.record import TrialRecord
from harness.study import results


def write_trials(path, rows):
    """rows: (objective, arch_id, seed, score, status)."""
    df = results.frame(TrialRecord(f"{a}-{o}-s{s}", a, o, s, status=st, headline="is", metrics={"is": v})
                       for o, a, s, v, st in rows)
    df.to_csv(path, index=False)
    return path


def test_pairs_prints_counts_and_holm_adjusted_pair_tests_leaving_out_trials_without_an_outcome(tmp_path, capsys):
    rows = [(o, f"a{i}", 0, 2.0 if o == "wgan-gp" else 0.5, "ok") for i in range(7) for o in ("gan", "lsgan", "wgan-gp")]
    rows += [("gan", "a9", 0, 9.0, "running")]      # cut off: neither success nor failure
    csv = write_trials(tmp_path / "trials.csv", rows)
    assert main(["pairs", str(csv), "--threshold", "1", "--threshold", "3"]) == 0
    out = capsys.readouterr().out
    assert "(21 trials with an outcome" in out and "| 1 | 0 | 0 | 7 |" in out
    # 3 pairs x 2 thresholds; only 2 have anything to test (gan and lsgan tie everywhere, nobody passes 3);
    # one seed per architecture: the architecture-level test is McNemar's sign test
    assert "15 pairs" not in out and "3 pairs x 2 thresholds: 2 tests (4 with nothing to test left out)" in out
    assert "wgan-gp over gan (7 vs 0 pairs, p = 0.016, Holm 0.031; architectures 7 vs 0 of 7, Holm 0.031)" in out
    assert "## the score itself, no threshold" in out
    assert "| gan | wgan-gp | 7 | -1.5 | [-1.5, -1.5] | 0 / 7 | 7 architectures | 0.0156 | 0.0312 |" in out
    assert "## threshold 3" in out and "No pair of objectives differs beyond noise" in out
    assert main(["pairs", str(csv), "--threshold", "1", "--objectives", "gan,wgan-gp"]) == 0
    assert "p = 0.016, Holm 0.016" in capsys.readouterr().out                  # one pair: nothing to adjust
    assert main(["pairs", str(csv), "--threshold", "1", "--threshold", "1.5", "--objectives", "gan,wgan-gp"]) == 0
    assert "p = 0.016, Holm 0.031" in capsys.readouterr().out                  # the same win read at 2 thresholds


@pytest.mark.parametrize("args, message", [
    (["missing.csv", "--threshold", "1"], "no such file"),
    (["other.csv", "--threshold", "1"], "missing columns"),
    (["trials.csv", "--threshold", "nan"], "finite numbers"),
    (["trials.csv", "--threshold", "1", "--objectives", "gan,wgan"], "['wgan'] not in"),
    (["trials.csv", "--threshold", "1", "--objectives", "gan"], "two or more"),
])
def test_bad_input_exits_2_with_the_reason(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    write_trials(tmp_path / "trials.csv", [("gan", "a0", 0, 1.0, "ok"), ("sngan", "a0", 0, 2.0, "ok")])
    (tmp_path / "other.csv").write_text("x,y\n1,2\n")
    assert main(["pairs", *args]) == 2
    assert message in capsys.readouterr().err


def csv_text(tmp_path, body: str):
    path = tmp_path / "trials.csv"
    path.write_text("trial_id,arch_id,objective,seed,status,score\n" + body)
    return path


@pytest.mark.parametrize("body, message", [
    ("t1,a0,gan,0,ok,2\nt2,a0,sngan,0,ok,3\nt3,a0,gan,0,ok,2\n",
     "row 3 (line 4) repeats row 1 (line 2): the same (arch_id, objective, seed) = (a0, gan, 0)"),
    ("t1,a0,gan,0,ok,inf\nt2,a0,sngan,0,ok,3\n", "row 1 (line 2), column score: 'inf' is not finite"),
    ("t1,a0,gan,0,ok,2\nt2,a0,sngan,0,diverged,-inf\n", "row 2 (line 3), column score: '-inf' is not finite"),
    ("t1,a0,gan,0,ok,2\nt2,a0,sngan,0,ok,nan\n", "row 2 (line 3), column score: empty for a trial with status 'ok'"),
    ("t1,a0,gan,0,collapsed,\nt2,a0,sngan,0,ok,3\n", "row 1 (line 2), column score: empty for a trial with status"),
    ("t1,a0,gan,0,ok,2\nt2,a0,sngan,0,ok,high\n", "row 2 (line 3), column score: 'high' is not a number"),
    ("t1,a0,gan,zero,ok,2\nt2,a0,sngan,0,ok,3\n", "row 1 (line 2), column seed: 'zero' is not a number"),
])
def test_a_damaged_csv_is_refused_by_row_and_column(tmp_path, capsys, body, message):
    """inf would count as a success at every threshold, nan or text silently as a failure, and a
    repeated trial twice (or traceback): each is named instead."""
    assert main(["pairs", str(csv_text(tmp_path, body)), "--threshold", "1"]) == 2
    assert message in capsys.readouterr().err


def test_a_diverged_trial_may_have_no_score(tmp_path, capsys):
    path = csv_text(tmp_path, "t1,a0,gan,0,ok,2\nt2,a0,sngan,0,diverged,\nt3,a0,sngan,1,failed,nan\n"
                              "t4,a0,gan,1,ok,0.5\n")
    assert main(["pairs", str(path), "--threshold", "1"]) == 0
    assert "(4 trials with an outcome" in capsys.readouterr().out


def test_a_pipe_in_a_method_name_stays_in_its_cell(tmp_path, capsys):
    path = csv_text(tmp_path, "".join(f"t{i}{o},a{i},{o},0,ok,{2 if o == 'gan' else 0}\n"
                                      for i in range(3) for o in ("gan", "g|b")))
    assert main(["pairs", str(path), "--threshold", "1"]) == 0
    out = capsys.readouterr().out
    assert "| gan | g\\|b | 3 |" in out                  # the pair table's row: a, b, only_a, ...
    lines = out.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("| a | b | only_a")))
    row = lines[header + 2]                                   # below the header and its |---| line
    assert row.startswith("| gan | g\\|b |") and row.replace("\\|", "").count("|") == lines[header].count("|")


def test_the_row_count_is_bounded_before_the_file_is_read_whole(tmp_path, capsys, monkeypatch):
    from harness.study import reanalyse
    monkeypatch.setattr(reanalyse, "MAX_ROWS", 5)
    path = csv_text(tmp_path, "".join(f"t{i},a{i},gan,0,ok,2\n" for i in range(6)))
    assert main(["pairs", str(path), "--threshold", "1"]) == 2
    assert "more than 5 rows" in capsys.readouterr().err
