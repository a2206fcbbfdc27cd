"""Report tests build 2D (ring8) studies; the estimator floors behind their tables would run the
real toy2d evaluator five times per build (tens of seconds). Here the evaluation of the data is
a stand-in with known values, so a test sees what the report does with them; the real
evaluator's floors are measured in tests/study/test_floors.py."""
from __future__ import annotations

import pytest

from harness.study import floors

STAND_IN = {"modes_covered": 8.0, "modes_covered_strict": 8.0, "hq_share": 0.989, "reverse_kl": 0.001,
            "reverse_kl_all": 0.001, "n_modes": 8.0, "w1_exact_2k": 0.1, "kl_data_gen_kde": 0.07,
            "kl_gen_data_kde": -0.08, "js_kde": 0.0, "kde_bandwidth": 0.01}


def stand_in(dataset: str, n_samples: int, seed: int) -> dict[str, float]:
    """The stand-in reading of draw `seed`: w1 0.1 + 0.01 * seed, the rest fixed."""
    return {**STAND_IN, "w1_exact_2k": 0.1 + 0.01 * seed}


@pytest.fixture(autouse=True)
def stand_in_floors(monkeypatch):
    floors.estimator_floors.cache_clear()
    monkeypatch.setattr(floors, "_evaluate_data", stand_in)
    yield
    floors.estimator_floors.cache_clear()
