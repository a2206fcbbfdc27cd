"""Mode-collapse figures over seeds beside PacGAN / VEEGAN's published rows."""
from __future__ import annotations

import pytest

from harness.published import PUBLISHED_MODES, published_mode_rows
from harness.record import TrialRecord
from harness.study import results
from harness.study.mode_tables import mode_table


def _records():
    for seed, (modes, hq, rkl) in enumerate([(6, 0.9, 0.5), (8, 0.8, 0.1), (7, 0.7, 0.3)]):
        yield TrialRecord(f"a-gan-s{seed}", "a", "gan", seed, status="ok", headline="modes_covered",
                          metrics={"modes_covered": modes, "hq_share": hq, "reverse_kl": rkl})
    yield TrialRecord("a-gan+feature-matching-s0", "a", "gan+feature-matching", 0, status="ok",
                      headline="modes_covered", metrics={"modes_covered": 8, "hq_share": 0.5, "reverse_kl": 0.2})


def test_ours_is_mean_and_standard_error_and_published_rows_follow():
    table = mode_table(results.frame(_records()), ["gan", "gan+feature-matching"], "ring8")
    ours = table.iloc[0]
    assert ours["source"] == "ours (3 seeds)"
    assert ours["modes_covered"] == "7.0 +- 0.6"          # sd 1 / sqrt 3 = 0.577
    assert ours["high quality %"] == "80.0 +- 5.8"        # shares as percent, like PacGAN
    assert ours["reverse_kl"] == "0.30 +- 0.12"
    assert table["method"].tolist() == ["gan", "GAN", "GAN", "gan+feature-matching"]
    assert table.iloc[1]["modes_covered"] == "6.3 +- 0.5" and table.iloc[2]["reverse_kl"] == "-"
    assert table.iloc[3]["modes_covered"] == "8.0"        # one seed: no standard error


@pytest.mark.parametrize("method", sorted(PUBLISHED_MODES))
def test_every_published_method_has_both_mixtures(method):
    for dataset in ("ring8", "grid25"):
        rows = published_mode_rows(method, dataset)
        assert rows and all(0 < r.modes <= (8 if dataset == "ring8" else 25) for r in rows)
    assert published_mode_rows("gan", "fashion_mnist") == [] and published_mode_rows("wgan-gp", "ring8") == []


def test_learning_curves_are_means_over_seeds_at_each_evaluation():
    import pandas as pd
    from harness.study.mode_tables import mode_curves
    rows = [("gan", "modes_covered", 500, 4), ("gan", "modes_covered", 500, 6), ("gan", "modes_covered", 1000, 8),
            ("gan+pack:2", "modes_covered", 500, 3), ("gan", "hq_share", 500, 0.25), ("gan", "hq_share", 500, 0.75),
            ("gan", "loss_d", 500, 1.0)]
    curves = pd.DataFrame(rows, columns=["objective", "metric", "step", "value"])
    tables = mode_curves(curves, ["gan+pack:2", "gan", "wgan-gp"])
    assert list(tables) == ["modes_covered", "high quality %"]          # no reverse KL rows, no loss table
    modes = tables["modes_covered"]
    assert list(modes.index) == ["gan+pack:2", "gan"] and list(modes.columns) == ["500", "1,000"]
    assert modes.loc["gan", "500"] == 5.0 and modes.loc["gan", "1,000"] == 8.0
    assert pd.isna(modes.loc["gan+pack:2", "1,000"])
    assert tables["high quality %"].loc["gan", "500"] == 50.0          # a share, shown in %


def test_learning_curves_keep_the_evaluation_schedule_not_a_diverged_trials_last_step():
    import pandas as pd
    from harness.study.mode_tables import mode_curves
    rows = [("gan", "modes_covered", 500, 4), ("gan", "modes_covered", 1000, 8), ("gan", "modes_covered", 1421, 1),
            ("gan", "modes_covered", 500, 6)]
    curves = pd.DataFrame(rows, columns=["objective", "metric", "step", "value"])
    assert list(mode_curves(curves, ["gan"], every=500)["modes_covered"].columns) == ["500", "1,000"]
    assert "1,421" in mode_curves(curves, ["gan"])["modes_covered"].columns     # without a schedule: every step
