"""What the registered 2D evaluator reads on the data itself (study/floors.py)."""
from __future__ import annotations

import pandas as pd
import pytest

from harness.study import floors


@pytest.fixture(autouse=True)
def fresh_cache():
    floors.estimator_floors.cache_clear()
    yield
    floors.estimator_floors.cache_clear()


@pytest.mark.slow     # POT's import alone takes seconds; the plumbing's fast twin is the next-but-one test
def test_a_perfect_generator_does_not_read_zero():
    """The real toy2d evaluator on a draw of ring8 itself: W1 between two samples of the same
    mixture is above 0, every mode is covered, the high-quality share is below 1 (a Gaussian
    keeps about 98.9 % of its mass within 3 sd) and the mode histogram is not exactly uniform."""
    got = floors.estimator_floors("ring8", 160, draws=1)
    assert set(got.index) <= set(floors.floor_metrics()) and "w1_exact_2k" in got.index
    assert "n_modes" not in got.index and "d_gap_mean_abs" not in got.index
    assert got.loc["w1_exact_2k", "mean"] > 0 and got.loc["modes_covered", "mean"] == 8.0
    assert 0.9 < got.loc["hq_share", "mean"] < 1.0 and got.loc["reverse_kl", "mean"] > 0
    assert (got["n"] == 160).all() and (got["draws"] == 1).all()


@pytest.mark.slow
def test_the_w1_floor_shrinks_with_the_sample_and_varies_between_draws():
    small = floors.estimator_floors("ring8", 80, draws=2)
    large = floors.estimator_floors("ring8", 640, draws=2)
    assert small.loc["w1_exact_2k", "low"] > 0 and large.loc["w1_exact_2k", "mean"] < small.loc["w1_exact_2k", "mean"]
    assert small.loc["w1_exact_2k", "low"] < small.loc["w1_exact_2k", "high"]


def test_floors_are_computed_once_per_dataset_and_size(monkeypatch):
    calls = []

    def fake(dataset, n, seed):
        calls.append((dataset, n, seed))
        return {"w1_exact_2k": 0.1 * seed, "hq_share": 0.99, "n_modes": 8.0}
    monkeypatch.setattr(floors, "_evaluate_data", fake)
    first = floors.estimator_floors("ring8", 2500, draws=3)
    again = floors.estimator_floors("ring8", 2500, draws=3)
    assert again is first and calls == [("ring8", 2500, s) for s in (1, 2, 3)]
    assert list(first.index) == ["hq_share", "w1_exact_2k"]                  # n_modes is a setting, not an estimate
    assert first.loc["w1_exact_2k", ["mean", "low", "high"]].tolist() == pytest.approx([0.2, 0.1, 0.3])
    assert floors.floor_text(first, "w1_exact_2k") == "0.2 [0.1, 0.3]"
    assert floors.floor_text(first, "hq_share", 100, "{:.1f}") == "99.0"     # no spread: one figure
    assert floors.floor_text(first, "js_kde") == "-"
    floors.estimator_floors("grid25", 2500, draws=3)
    assert len(calls) == 6                                                    # another dataset: measured anew


def test_floors_apply_to_the_2d_evaluator_only():
    assert floors.applies("ring8", "toy2d") and floors.applies("grid25", "auto") and floors.applies("ring8", None)
    assert not floors.applies("fashion_mnist", "fmnist-classifier") and not floors.applies("nothing-such", "toy2d")
    assert isinstance(floors.caption(pd.DataFrame({"n": [2500], "draws": [5]}, index=["w1_exact_2k"])), str)


def test_the_mode_tables_print_the_floor_beside_every_method():
    """PacGAN's three figures per method, then the data itself; the curves get a last column."""
    from harness.record import TrialRecord
    from harness.study import results
    from harness.study.mode_tables import mode_curves, mode_table
    df = results.frame(TrialRecord(f"a-gan-s{s}", "a", "gan", s, headline="modes_covered",
                                   metrics={"modes_covered": 7.0, "hq_share": 0.8, "reverse_kl": 0.3}) for s in range(2))
    measured = pd.DataFrame({"mean": [8.0, 0.989, 0.0012], "low": [8.0, 0.988, 0.001], "high": [8.0, 0.991, 0.0014],
                             "draws": 5, "n": 2500}, index=pd.Index(["modes_covered", "hq_share", "reverse_kl"],
                                                                   name="metric"))
    table = mode_table(df, ["gan"], "ring8", measured)
    last = table.iloc[-1]
    assert last["method"] == "data itself" and last["source"] == "5 draws of 2,500 points"
    assert (last["modes_covered"], last["high quality %"], last["reverse_kl"]) == ("8", "98.9 [98.8, 99.1]", "0.0012 [0.001, 0.0014]")
    assert "data itself" not in mode_table(df, ["gan"], "ring8")["method"].tolist()      # no floors: no row
    curves = pd.DataFrame([("r", "a", "gan", "hq_share", 100, 0.5), ("r", "a", "gan", "hq_share", 200, 0.8)],
                          columns=["run_id", "arch_id", "objective", "metric", "step", "value"])
    wide = mode_curves(curves, ["gan"], 100, measured)["high quality %"]
    assert list(wide.columns) == ["100", "200", "data itself"] and wide.loc["gan", "data itself"] == "98.9 [98.8, 99.1]"
