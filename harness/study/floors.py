"""What the 2D evaluator reads on the data itself: the floor (or ceiling) of each estimator.

A perfect generator does not read zero. The exact W1 between two independent samples of the
same mixture is the sampling distance between them (0.06 - 0.15 on ring8 at 2,000 points), the
KDE estimates of KL(p_data || p_g) and KL(p_g || p_data) carry the KDE's bias (either sign), a
finite sample's mode histogram is never exactly uniform (reverse KL > 0), and a Gaussian
mode holds about 98.9 % of its mass within 3 standard deviations (high-quality share < 1). A
trial's value is only readable beside what the same evaluator reads when the "generator" is the
data: `estimator_floors` draws `draws` samples of `n_samples` points from the dataset (seeds
1 .. draws; the evaluator's own reference sample uses seed 0), evaluates each with the
registered toy2d evaluator (evaluate/registry.make_evaluator, so whatever solver and KDE it
uses), and reports the mean and the range over the draws. Computed from the data, once per
(dataset, n_samples, draws) in a process (the report build), never written down by hand.
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd

DRAWS = 5
def floor_metrics() -> tuple[str, ...]:
    """The toy2d evaluator's estimates, as it declares them (whatever it adds later is floored
    too), less its settings (group "setting" in evaluate/metrics.py: n_modes, the KDE bandwidth)
    and the metrics that need a critic (the data itself has none)."""
    from ..evaluate.metrics import metric_info
    from ..evaluate.toy2d import Toy2DEvaluator
    return tuple(m for m in Toy2DEvaluator.metric_names
                 if metric_info(m).group != "setting" and m not in Toy2DEvaluator.critic_metrics)


def applies(dataset: str, evaluator: str | None) -> bool:
    """Whether a study's values come from the 2D evaluator (a mixture and its toy2d metrics)."""
    from ..data import get_dataset_spec
    from ..evaluate.registry import default_evaluator_for
    try:
        kind = get_dataset_spec(dataset).kind
    except Exception:  # noqa: BLE001 - an unknown dataset in an old store: no floors, not a failed report
        return False
    return kind == "toy2d" and (evaluator in (None, "auto", "toy2d") or evaluator == default_evaluator_for(dataset))


def _evaluate_data(dataset: str, n_samples: int, seed: int) -> dict[str, float]:
    """The registered toy2d evaluator on n_samples points of the data drawn with `seed`."""
    import torch

    from ..data import sample_mixture
    from ..evaluate.registry import make_evaluator
    evaluator = make_evaluator("toy2d", dataset, n_samples)
    generator = torch.Generator().manual_seed(seed)
    return evaluator.evaluate(lambda k: sample_mixture(dataset, k, generator))


@functools.lru_cache(maxsize=None)
def estimator_floors(dataset: str, n_samples: int, draws: int = DRAWS) -> pd.DataFrame:
    """Index: metric (`floor_metrics` the evaluation returned); columns: mean, low, high over the
    draws, draws, n."""
    values = pd.DataFrame([_evaluate_data(dataset, n_samples, seed) for seed in range(1, draws + 1)])
    values = values[[m for m in floor_metrics() if m in values]].apply(pd.to_numeric, errors="coerce")
    out = pd.DataFrame({"mean": values.mean(), "low": values.min(), "high": values.max()})
    out["draws"], out["n"] = draws, n_samples
    out.index.name = "metric"
    return out


def floor_text(floors: pd.DataFrame, metric: str, scale: float = 1.0, fmt: str = "{:.3g}") -> str:
    """'0.103 [0.072, 0.104]': the data's mean reading and its range over the draws; '-' if not measured."""
    if floors is None or metric not in floors.index:
        return "-"
    r = floors.loc[metric]
    values = [r["mean"] * scale, r["low"] * scale, r["high"] * scale]
    if not np.all(np.isfinite(values)):
        return "-"
    if np.isclose(values[1], values[2]):
        return fmt.format(values[0])
    return f"{fmt.format(values[0])} [{fmt.format(values[1])}, {fmt.format(values[2])}]"


def caption(floors: pd.DataFrame) -> str:
    """How the floors were measured, for the sentence above a table that shows them."""
    r = floors.iloc[0]
    return (f"'data itself': what the same evaluator reads on {int(r['n']):,} points of the dataset in place of "
            f"generated ones, mean [min, max] over {int(r['draws'])} independent draws: a perfect generator reads "
            "this, not 0 (or the maximum).")
