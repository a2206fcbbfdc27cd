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
    # 3 pairs compared; one seed per architecture: the architecture-level test is McNemar's sign test
    assert "wgan-gp over gan (7 vs 0 pairs, p = 0.016, Holm 0.047; architectures 7 vs 0 of 7, Holm 0.047)" in out
    assert "## the score itself, no threshold" in out
    assert "| gan | wgan-gp | 7 | -1.5 | [-1.5, -1.5] | 0 / 7 | 7 architectures | 0.0156 | 0.0469 |" in out
    assert "## threshold 3" in out and "No pair of objectives differs beyond noise" in out
    assert main(["pairs", str(csv), "--threshold", "1", "--objectives", "gan,wgan-gp"]) == 0
    assert "p = 0.016, Holm 0.016" in capsys.readouterr().out                  # one pair: nothing to adjust


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
