"""A primary comparison declared after the fact (`report --primary`, `pairs --primary`): for a
study stored before `primary:` existed, tested alone first and said to be declared later."""
from __future__ import annotations

import pandas as pd
import pytest

from harness import cli
from harness.errors import UsageError
from harness.study import primary

from test_report_build import shard_store

pytestmark = pytest.mark.usefixtures("stand_in_floors")   # tests/conftest.py

STORED = {"objectives": ["gan", "wgan-gp", "lsgan"], "thresholds": [0.25, 0.5]}   # an old sweep: no `primary`


def test_declare_marks_the_comparison_and_resolve_says_so():
    exp = primary.declare(STORED, ["wgan-gp,gan@0.5"])
    assert "primary" not in STORED                                   # the stored dict is not changed
    p = primary.resolve(exp, [2.0, 4.0])                             # 0.5 x real = 4.0 in the metric's units
    assert p.pairs == [("wgan-gp", "gan")] and p.threshold == 4.0 and p.given == 0.5
    assert p.after_the_fact and p.source().startswith("declared after the fact with --primary")
    assert primary.declare(STORED, None) is STORED and primary.declare(STORED, []) is STORED
    with_settings = primary.parse(["gan@n_critic=5,gan-minimax@n_critic=5@0.5", "gan@n_critic=1,gan-minimax@n_critic=1@0.5"])
    assert with_settings == ([["gan@n_critic=5", "gan-minimax@n_critic=5"], ["gan@n_critic=1", "gan-minimax@n_critic=1"]], 0.5)
    assert primary.parse(["gan@n_critic=5,gan-minimax@n_critic=5"]) == ([["gan@n_critic=5", "gan-minimax@n_critic=5"]], None)
    on_score = primary.resolve(primary.declare(STORED, ["gan,wgan-gp", "gan,lsgan"]), [2.0, 4.0])
    assert on_score.pairs == [("gan", "wgan-gp"), ("gan", "lsgan")] and on_score.threshold is None


@pytest.mark.parametrize("texts, message", [
    (["gan"], "expected two objectives"),
    (["gan,wgan-gp,lsgan"], "expected two objectives"),
    (["gan,wgan-gp@high"], "the threshold after @ is not a number"),
    (["gan,wgan-gp@0.25", "gan,lsgan@0.5"], "one threshold for every pair"),
    (["gan,sngan"], "['sngan'] not among the study's objectives"),
    (["gan,gan"], "compares 'gan' with itself"),
    (["gan,wgan-gp", "wgan-gp,gan"], "a pair is named twice"),
    (["gan,wgan-gp@0.3"], "threshold 0.3 is not one of the study's thresholds ['0.25', '0.5']"),
])
def test_a_bad_declaration_is_refused_naming_the_option(texts, message):
    with pytest.raises(UsageError, match="--primary") as err:
        primary.declare(STORED, texts)
    assert message in str(err.value)


def test_a_primary_named_in_advance_is_not_replaced_after_the_data():
    named = {**STORED, "primary": {"pairs": [["gan", "lsgan"]], "threshold": None}}
    with pytest.raises(UsageError, match="names its primary comparison in advance"):
        primary.declare(named, ["gan,wgan-gp"])
    unnamed = {**STORED, "primary": {"pairs": [], "threshold": None}}   # stored by a harness with the field, left out
    assert primary.declare(unnamed, ["gan,wgan-gp"])["primary"]["pairs"] == [["gan", "wgan-gp"]]


def test_pairs_tests_the_declared_comparison_alone_first(tmp_path, capsys):
    rows = [{"arch_id": f"a{i}", "objective": o, "seed": s, "status": "ok",
             "score": {"gan": 1.0, "wgan-gp": 5.0, "lsgan": 1.0 + s}[o]}
            for i in range(5) for s in (0, 1) for o in ("gan", "wgan-gp", "lsgan")]
    csv = tmp_path / "trials.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    assert cli.main(["pairs", str(csv), "--threshold", "2", "--threshold", "4", "--primary", "wgan-gp,gan@4"]) == 0
    out = capsys.readouterr().out
    assert out.index("## primary comparison") < out.index("## secondary results") < out.index("## threshold 2")
    assert "Primary comparison, declared after the fact with --primary" in out
    # wgan-gp alone succeeds at 4 on all 10 pairs of 5 architectures: exact sign flips 2 / 2^5
    assert ("wgan-gp - gan: difference of the success rates 1 [" in out
            and "only wgan-gp 10, only gan 0); sign flips over architectures p = 0.0625" in out)
    assert cli.main(["pairs", str(csv), "--threshold", "2"]) == 0
    assert "primary comparison" not in capsys.readouterr().out      # without the option: as before
    assert cli.main(["pairs", str(csv), "--threshold", "2", "--primary", "wgan-gp,gan@4"]) == 2
    assert "threshold 4 is not one of the study's thresholds ['2']" in capsys.readouterr().err


def test_report_refuses_a_bad_declaration_before_writing_anything(project, capsys):
    shard_store()       # thresholds 1, 3, 5, 7, 9; no `primary:`
    out = project / "results"
    assert cli.main(["report", "shards", "--out", str(out), "--primary", "gan,wgan-gp@4"]) == 2
    assert "threshold 4 is not one of" in capsys.readouterr().err and not (out / "shards").exists()


@pytest.mark.slow   # a whole report with its plots (the fast twin above checks that the option reaches it)
def test_report_says_the_primary_was_declared_after_the_fact(project):
    shard_store()       # gan 2, wgan-gp 6 on 4 architectures; thresholds 1, 3, 5, 7, 9; no `primary:`
    out = project / "results"
    assert cli.main(["report", "shards", "--out", str(out), "--primary", "gan,wgan-gp@5"]) == 0
    md = (out / "shards" / "report.md").read_text()
    answer = md.split("## Answer")[1].split("### Secondary results")[0]
    assert ("Primary comparison, declared after the fact with --primary (the study was built for it; its "
            "experiment named none in advance): success at modes_covered > 5, tested alone") in answer
    assert "gan - wgan-gp: difference of the success rates -1 [" in answer and "p = 0.125" in answer
    assert "declared_after_the_fact" not in md.split("## Experiment")[1]     # the stored experiment, as stored
