"""Evaluation: torch-fidelity IS/FID/KID, the shipped domain classifier, exact 2D-mixture metrics.

Heavy imports (torch-fidelity, the classifier) happen only when an evaluator needs them.
"""

from harness.evaluate.base import Evaluator, count_tag, default_cache_dir
from harness.evaluate.conditional import LABEL_METRICS, ConditionalEvaluator
from harness.evaluate.registry import (
    EVALUATORS,
    EvaluatorOptions,
    EvaluatorUnavailable,
    UnknownEvaluator,
    default_evaluator_for,
    resolve_evaluator,
    make_evaluator,
    register_evaluator,
)


def train_classifier(dataset: str = "fashion_mnist", seed: int = 0, out_dir=None, epochs: int = 6, **kw) -> dict:
    from harness.evaluate.train_classifier import train_classifier as _train

    return _train(dataset, seed=seed, out_dir=out_dir, epochs=epochs, **kw)


def check_classifier(dataset: str = "fashion_mnist", **kw) -> dict:
    from harness.evaluate.train_classifier import check_classifier as _check

    return _check(dataset, **kw)


__all__ = [
    "EVALUATORS",
    "LABEL_METRICS",
    "ConditionalEvaluator",
    "Evaluator",
    "EvaluatorOptions",
    "EvaluatorUnavailable",
    "UnknownEvaluator",
    "check_classifier",
    "count_tag",
    "default_cache_dir",
    "default_evaluator_for",
    "resolve_evaluator",
    "make_evaluator",
    "register_evaluator",
    "train_classifier",
]
