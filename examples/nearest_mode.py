"""A metric as a harness plugin: the 2D evaluator's metrics plus two of nearest modes
(docs/extending.md).

- `mode_entropy`: the entropy of the samples' nearest-mode shares over the K modes, divided
  by log K: 1 when every mode gets the same share, 0 when every sample is nearest to one
  mode. A soft count of modes, quality aside (modes_covered counts a mode once it holds one
  high-quality sample); higher is better, so it can be an experiment's success_metric.
- `mode_distance`: the mean distance from a sample to its nearest mode, in the data's units:
  how far off the samples that are not high quality are. Lower is better.

An evaluator is registered with one constructor signature (`build(options) -> Evaluator`);
this one extends the built-in toy2d evaluator, so it keeps toy2d's metrics, its headline
(modes_covered) and its collapse rule. Each new metric is declared (`register_metric`): which
side is better, its range and group, which the success rule and the report read.

Use it from an experiment: `plugins: [nearest_mode.py]` and `eval: {evaluator: toy2d-nearest}`;
both metrics are columns of trials.csv and metrics of each child run in MLflow.
"""
from __future__ import annotations

import math

import torch

from harness.evaluate import EvaluatorOptions, register_evaluator
from harness.evaluate.metrics import HIGHER, LOWER, register_metric
from harness.evaluate.toy2d import Toy2DEvaluator

register_metric("mode_entropy", direction=HIGHER, range=(0, 1), group="diversity",
                description="entropy of the samples' nearest-mode shares over log K: 1 = spread evenly over the modes")
register_metric("mode_distance", direction=LOWER, range=(0, math.inf), group="quality",
                description="mean distance from a sample to its nearest mode, in the data's units")


def nearest_mode_metrics(x: torch.Tensor, centers: torch.Tensor) -> dict[str, float]:
    """mode_entropy and mode_distance of n x 2 samples against K x 2 mode centers."""
    distance, nearest = torch.cdist(x, centers).min(dim=1)
    shares = torch.bincount(nearest, minlength=len(centers)).double() / len(x)
    entropy = -(shares[shares > 0] * shares[shares > 0].log()).sum().item()
    return {"mode_entropy": entropy / math.log(len(centers)) if len(centers) > 1 else 1.0,
            "mode_distance": distance.mean().item()}


class NearestModeEvaluator(Toy2DEvaluator):
    metric_names = (*Toy2DEvaluator.metric_names, "mode_entropy", "mode_distance")

    def evaluate(self, sample_fn, critic=None):
        drawn = []

        def keep(n):   # the samples the built-in metrics see, kept for these
            x = sample_fn(n)
            drawn.append(x.detach().float().cpu())
            return x

        out = super().evaluate(keep, critic)
        return {**out, **nearest_mode_metrics(torch.cat(drawn)[: self.n_samples], self.centers)}


@register_evaluator("toy2d-nearest", "toy2d's metrics plus mode_entropy (how evenly samples spread over the "
                                     "modes) and mode_distance (to the nearest mode); an example plugin")
def nearest_mode(options: EvaluatorOptions) -> NearestModeEvaluator:
    return NearestModeEvaluator(options.dataset, options.n_samples)
