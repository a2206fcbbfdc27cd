"""Architecture-level permutation tests of factor effects (hand-made trial records)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from harness.record import TrialRecord
from harness.study import results


def test_factor_tests_find_the_factor_that_breaks_an_objective_and_not_noise():
    """gan fails on every tanh-D architecture and succeeds elsewhere; wgan-gp's outcomes do not
    depend on the nonlinearity. The test's unit is the architecture (seeds averaged)."""
    from harness.study.factor_tests import factor_tests
    nonlins = ["tanh", "relu", "lrelu", "softplus"]
    rows = []
    for i in range(12):
        arch, nonlin = f"a{i}", nonlins[i % 4]
        for seed in range(3):
            gan_ok = nonlin != "tanh"
            wgan_ok = (i // 4 + seed) % 2 == 0   # varies by architecture, balanced across nonlinearities
            for obj, good in (("gan", gan_ok), ("wgan-gp", wgan_ok)):
                rows.append(TrialRecord(f"{arch}-{obj}-s{seed}", arch, obj, seed, status="ok", headline="is",
                                        metrics={"is": 5.0 if good else 1.0},
                                        params={"arch.nonlin_d": nonlin, "arch.norm_g": str(i < 6)}))
    tests = factor_tests(results.frame(rows), 3.0, ["gan", "wgan-gp"])
    top = tests.iloc[0]
    assert (top["objective"], top["factor"], top["value"]) == ("gan", "nonlin_d", "tanh")
    assert top["rate_with"] == 0.0 and top["rate_without"] == 1.0 and top["archs_with"] == 3
    assert top["p"] < 0.01                       # exact: 1 / C(12, 3) = 0.0045 two-sided
    wgan = tests[tests["objective"] == "wgan-gp"]
    assert (wgan[wgan["factor"] == "nonlin_d"]["p"] > 0.5).all()
    assert len(tests[tests["factor"] == "norm_g"]) == 2     # a two-valued factor: one row per objective
    from harness.study.factor_tests import permutation_p
    assert math.isnan(permutation_p(np.array([1.0]), np.array([0.0, 0.5])))   # one architecture: no test
    # one family: every row with something to test, Holm over all of them together
    counted = tests[tests["in_family"]]
    assert len(counted) == len(tests)            # every row here has two architectures a side and rates that vary
    assert top["p_holm"] == pytest.approx(min(1.0, len(counted) * top["p"]))


def test_rows_without_a_test_do_not_count_in_the_family():
    """A value held by a single architecture has no test (p NaN); a factor where every
    architecture has the same rate has nothing to test (p 1): neither is in the count."""
    from harness.study.factor_tests import factor_tests
    rows = []
    for i in range(6):
        nonlin = ["tanh", "relu", "relu", "lrelu", "lrelu", "lrelu"][i]
        for obj in ("gan", "wgan-gp"):
            good = obj == "wgan-gp" or i % 2 == 0
            rows.append(TrialRecord(f"a{i}-{obj}-s0", f"a{i}", obj, 0, status="ok", headline="is",
                                    metrics={"is": 5.0 if good else 1.0}, params={"arch.nonlin_d": nonlin}))
    tests = factor_tests(results.frame(rows), 3.0, ["gan", "wgan-gp"]).set_index(["objective", "value"])
    assert math.isnan(tests.loc[("gan", "tanh"), "p"]) and not tests.loc[("gan", "tanh"), "in_family"]
    assert tests.loc[("wgan-gp", "relu"), "p"] == 1.0 and not tests.loc[("wgan-gp", "relu"), "in_family"]
    assert tests["in_family"].sum() == 2                  # gan: relu and lrelu against the rest
    assert tests.loc[("gan", "relu"), "p_holm"] == pytest.approx(min(1.0, 2 * tests.loc[("gan", "relu"), "p"]))
