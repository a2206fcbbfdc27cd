"""The interface every evaluator implements, and the metric-name convention.

A metric's name carries its protocol (samples, real split, extractor), as in
stylegan2-ada's `fid50k_full`, so that numbers measured differently never share a column.
Every name an evaluator returns is declared in evaluate/metrics.py (direction, range, group...)
by the evaluator's module; `Evaluator.metric_infos` reads them back. Here: the figures every
trial logs beside its evaluator's, whatever it trains (train.py), so that the report's game
panel finds their metadata too.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from harness.evaluate.metrics import MetricInfo, metric_info, register_metric

SampleFn = Callable[[int], Tensor]
# D's probability that each of n points is real (n x data shape -> n): for evaluators that
# compare D with the optimal D* (toy2d); train.Evaluation builds it where it is defined.
CriticFn = Callable[[Tensor], Tensor]
# Datasets with a shipped domain classifier (evaluate/weights/): the `auto` evaluator's rule.
CLASSIFIER_DATASETS = ("fashion_mnist",)
CHUNK = 500  # samples per sample_fn call: bounds generator memory on small devices

INF = float("inf")
register_metric("loss_d", direction=None, range=(-INF, INF), group="game", curve=True, order=90,
                description="D's loss, mean since the last evaluation (train.py)")
register_metric("loss_g", direction=None, range=(-INF, INF), group="game", curve=True, order=91,
                description="G's loss, mean since the last evaluation (train.py)")
register_metric("grad_norm_g", direction=None, range=(0, INF), group="game", curve=True, symlog=True, order=92,
                description="L2 norm of G's gradient at the last logged step (train.py)")
register_metric("its_per_s", direction=None, range=(0, INF), group="cost", order=95,
                description="generator iterations per second of training time so far (train.py)")
register_metric("eval_s", direction=None, range=(0, INF), group="cost", order=96,
                description="seconds the evaluation took (train.py)")
register_metric("grad_norm_d", direction=None, range=(0, INF), group="game", order=93,
                description="L2 norm of D's gradient at the last logged step (train.py)")


def count_tag(n: int) -> str:
    """5000 -> '5k', 2500 -> '2.5k', 500 -> '500'."""
    return f"{n / 1000:g}k" if n >= 1000 else str(n)


def default_cache_dir() -> Path:
    return Path(os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "harness")


@torch.no_grad()
def draw_samples(sample_fn: SampleFn, n: int, chunk: int = CHUNK) -> Tensor:
    """Call sample_fn in chunks under no_grad and return all n samples on CPU."""
    out, left = [], n
    while left > 0:
        k = min(chunk, left)
        x = sample_fn(k)
        if x.shape[0] != k:
            raise ValueError(f"sample_fn({k}) returned {x.shape[0]} samples")
        out.append(x.detach().to("cpu", torch.float32))
        left -= k
    return torch.cat(out)


def balanced_labels(n: int, n_classes: int, device="cpu") -> Tensor:
    """0, 1, ..., K-1, 0, 1, ...: the labels a conditional G is asked for at evaluation and for
    the final samples (equal shares, no randomness: every evaluation asks the same)."""
    return torch.arange(n, device=device) % n_classes


class Evaluator(ABC):
    """Measures a generator through `sample_fn(n) -> float [-1, 1] tensor`; knows its collapse rule."""

    name: str
    headline: str  # the metric the success thresholds apply to
    metric_names: tuple[str, ...]  # every metric evaluate() returns
    n_samples: int
    wants_critic: bool = False   # True: evaluate(sample_fn, critic=...) also measures D (CriticFn)
    critic_metrics: tuple[str, ...] = ()   # the metric_names that need that critic

    def metric_infos(self) -> dict[str, MetricInfo]:
        """Each of metric_names with its declared metadata (evaluate/metrics.py); an undeclared
        name is an UnknownMetric, so an evaluator cannot return a metric the report cannot read."""
        return {name: metric_info(name) for name in self.metric_names}

    @abstractmethod
    def evaluate(self, sample_fn: SampleFn) -> dict[str, float]:
        ...

    @abstractmethod
    def collapsed(self, metrics: dict[str, float]) -> bool:
        ...
