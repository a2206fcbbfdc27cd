"""The interface every evaluator implements, and the metric-name convention.

A metric's name carries its protocol (samples, real split, extractor), as in
stylegan2-ada's `fid50k_full`, so that numbers measured differently never share a column.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

SampleFn = Callable[[int], Tensor]
# D's probability that each of n points is real (n x data shape -> n): for evaluators that
# compare D with the optimal D* (toy2d); train.Evaluation builds it where it is defined.
CriticFn = Callable[[Tensor], Tensor]
# Datasets with a shipped domain classifier (evaluate/weights/): the `auto` evaluator's rule.
CLASSIFIER_DATASETS = ("fashion_mnist",)
CHUNK = 500  # samples per sample_fn call: bounds generator memory on small devices


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

    @abstractmethod
    def evaluate(self, sample_fn: SampleFn) -> dict[str, float]:
        ...

    @abstractmethod
    def collapsed(self, metrics: dict[str, float]) -> bool:
        ...
