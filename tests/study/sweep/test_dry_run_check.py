"""`bench --only dry-run-check` (harness/study/sweep/dry_run_check.py): which studies it finds, what
it counts as a trial's measured time, and the comparison; the pricing itself is
harness/study/sweep/dry_run.price (tests/test_cost.py)."""
from __future__ import annotations

import pandas as pd
import pytest
import yaml

from harness.study.sweep import dry_run_check as check


def _study(root, name, rows):
    (root / "experiments").mkdir(exist_ok=True)
    (root / "experiments" / f"{name}.yaml").write_text(yaml.safe_dump(
        {"name": name, "dataset": "ring8", "objectives": ["gan", "wgan-gp"], "space": {"mode": "sample", "n": 1},
         "seeds": [0], "budget": {"iterations": 10, "batch_size": 16},
         "eval": {"evaluator": "toy2d", "n_samples": 200}}))
    if rows is not None:
        (root / "results" / name).mkdir(parents=True)
        pd.DataFrame(rows).to_csv(root / "results" / name / "trials.csv", index=False)


def _priced(per_trial):
    return {"per_trial": {k: {"objective": o, "total_s": t, "training_s": t * 0.9} for k, (o, t) in per_trial.items()},
            "per_method": {"gan": {"gflop_per_s": 1.0}, "wgan-gp": {"gflop_per_s": 0.5}},
            "overheads": {"evaluation_s": 0.1, "startup_s": 0.2}, "toy_evaluation_s": None,
            "seconds_per_evaluation": 0.1, "evaluations_per_trial": 1}


def test_only_experiments_with_committed_results_are_checked(tmp_path):
    _study(tmp_path, "done", [{"trial_id": "a", "wall_time_s": 1.0, "train_time_s": 1.0, "eval_time_s": 0.0}])
    _study(tmp_path, "not-run", None)
    assert [name for name, _, _ in check.committed_studies(tmp_path)] == ["done"]


def test_a_resumed_trial_counts_its_training_and_evaluation_clocks():
    """A resumed trial's wall clock restarts at the resume; its train clock carries on."""
    df = pd.DataFrame({"trial_id": ["plain", "resumed"], "wall_time_s": [100.0, 30.0],
                       "train_time_s": [95.0, 400.0], "eval_time_s": [4.0, 10.0]})
    assert check.measured_seconds(df).to_dict() == {"plain": 100.0, "resumed": 410.0}


def test_the_comparison_sums_both_sides_over_the_same_trials():
    df = pd.DataFrame({"trial_id": ["g", "w", "extra"], "objective": ["gan", "wgan-gp", "gan"],
                       "wall_time_s": [100.0, 300.0, 50.0], "train_time_s": [90.0, 280.0, 45.0],
                       "eval_time_s": [5.0, 10.0, 1.0]})
    c = check.compare(_priced({"g": ("gan", 110.0), "w": ("wgan-gp", 390.0)}), df)
    assert c["trials"] == 2 and c["measured_s"] == 400.0 and c["priced_s"] == 500.0   # "extra" is not priced
    assert c["ratio"] == pytest.approx(1.25) and c["within_target"]
    assert c["per_method"]["wgan-gp"]["ratio"] == pytest.approx(1.3)
    assert c["training_ratio"] == pytest.approx((0.9 * 500) / 370)
    c = check.compare(_priced({"g": ("gan", 200.0), "w": ("wgan-gp", 390.0)}), df)
    assert c["ratio"] == pytest.approx(1.475) and not c["within_target"]


def test_the_check_prices_each_study_and_writes_its_table(tmp_path, monkeypatch):
    import harness.study.sweep.dry_run as dry_run
    _study(tmp_path, "done", [{"trial_id": t, "objective": o, "wall_time_s": s, "train_time_s": s, "eval_time_s": 0.0}
                              for t, o, s in (("x", "gan", 10.0), ("y", "wgan-gp", 30.0))])
    seen = []

    def fake_price(exp, trials, threads, timed_seconds=None):
        seen.append((exp.name, len(trials), threads, timed_seconds))
        return _priced({"x": ("gan", 12.0), "y": ("wgan-gp", 60.0)})
    monkeypatch.setattr(dry_run, "price", fake_price)
    r = check.measure_dry_run_check(lambda m: None, root=tmp_path, timed_seconds=0.5)
    assert seen == [("done", 2, 1, 0.5)]
    s = r["studies"]["done"]
    assert s["ratio"] == pytest.approx(72 / 40) and not s["within_target"]
    md = "\n".join(check.dry_run_check_markdown(r))
    assert "(0 of 1 within 30 % on each study's latest measured run)" in md and "| done | 2 | 0.02 | 0.01 | 1.80 |" in md
    assert "| done | wgan-gp | 1 | 2.00 | 0.5 |" in md


def test_a_timing_rerun_is_compared_beside_the_study_and_counts_as_its_latest(tmp_path, monkeypatch):
    """results/bench/reruns/<study>.csv: priced once, compared with both; the summary counts
    each study once, by its rerun."""
    import harness.study.sweep.dry_run as dry_run
    rows = lambda s: [{"trial_id": t, "objective": o, "wall_time_s": s * k, "train_time_s": s * k,  # noqa: E731
                       "eval_time_s": 0.0} for t, o, k in (("x", "gan", 1), ("y", "wgan-gp", 3))]
    _study(tmp_path, "done", rows(20.0))                       # measured beside other jobs: 80 s
    (tmp_path / check.RERUNS).mkdir(parents=True)
    pd.DataFrame(rows(10.0)).to_csv(tmp_path / check.RERUNS / "done.csv", index=False)   # idle: 40 s
    calls = []
    monkeypatch.setattr(dry_run, "price", lambda *a, **k: calls.append(1) or _priced({"x": ("gan", 11.0),
                                                                                      "y": ("wgan-gp", 33.0)}))
    r = check.measure_dry_run_check(lambda m: None, root=tmp_path, timed_seconds=0.5)
    assert len(calls) == 1 and list(r["studies"]) == ["done", "done (rerun)"] and r["latest"] == {"done": "done (rerun)"}
    assert r["studies"]["done"]["ratio"] == pytest.approx(44 / 80) and not r["studies"]["done"]["within_target"]
    assert r["studies"]["done (rerun)"]["ratio"] == pytest.approx(1.1) and r["studies"]["done (rerun)"]["within_target"]
    assert r["studies"]["done (rerun)"]["measured"] == "results/bench/reruns/done.csv"
    md = "\n".join(check.dry_run_check_markdown(r))
    assert "(1 of 1 within 30 % on each study's latest measured run)" in md
    assert "| done (rerun) | 2 | 0.01 | 0.01 | 1.10 |" in md


@pytest.mark.slow   # prices a real committed study: a few seconds per method
def test_the_check_runs_on_a_committed_study():
    from pathlib import Path
    root = Path(__file__).resolve().parents[3]
    r = check.measure_dry_run_check(lambda m: None, root=root, only=["conditional-ring8"], timed_seconds=0.5)
    s = r["studies"]["conditional-ring8"]
    assert s["trials"] == s["trials_priced"] == 9 and s["priced_s"] > 0 and s["measured_s"] > 0
    assert set(s["per_method"]) == {"gan", "wgan-gp", "sngan"}
    assert s["evaluations_per_trial"] >= 1 and s["seconds_per_evaluation"] > 0
    rerun = r["studies"]["conditional-ring8 (rerun)"]                # results/bench/reruns/conditional-ring8.csv
    assert rerun["priced_s"] == s["priced_s"] and rerun["trials"] == 9 and rerun["measured_s"] != s["measured_s"]
    assert r["latest"] == {"conditional-ring8": "conditional-ring8 (rerun)"}


def test_as_run_prices_a_diverged_trial_for_the_iterations_it_ran():
    df = pd.DataFrame({"trial_id": ["full", "diverged"], "objective": ["gan", "gan"], "iterations": [100, 25],
                       "wall_time_s": [101.0, 26.0], "train_time_s": [100.0, 25.0], "eval_time_s": [0.0, 0.0]})
    priced = {"per_trial": {k: {"objective": "gan", "total_s": 101.0, "training_s": 100.0, "startup_s": 1.0}
                            for k in ("full", "diverged")}}
    c = check.compare(priced, df, budget=100)
    assert c["cut_short"] == 1 and c["ratio"] == pytest.approx(202 / 127)
    assert c["ratio_as_run"] == pytest.approx((101 + 1 + 25) / 127)
