"""Label metrics of a conditional generator against hand-made cases and real labelled images."""
import json
import math

import pytest
import torch

from harness.data import mixture_modes, to_unit_range
from harness.evaluate import ConditionalEvaluator, make_evaluator
from harness.evaluate.base import balanced_labels
from harness.evaluate.classifier import default_weights_path, load_classifier
from harness.evaluate.conditional import classifier_label_metrics, inception_score, requested_mode_metrics

SHIPPED = json.loads(default_weights_path("fashion_mnist").with_suffix(".json").read_text())


def test_balanced_labels():
    assert balanced_labels(7, 3).tolist() == [0, 1, 2, 0, 1, 2, 0]


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_samples_on_the_requested_modes_score_one(name):
    centers, std = mixture_modes(name)
    labels = balanced_labels(1000, len(centers))
    x = centers[labels] + 0.5 * std * torch.randn(1000, 2, generator=torch.Generator().manual_seed(0)).clamp(-2, 2)
    m = requested_mode_metrics(x, labels, centers, std)
    assert m == {"on_requested_mode": 1.0, "on_requested_mode_worst": 1.0, "nearest_is_requested": 1.0}
    wrong = requested_mode_metrics(x, (labels + 1) % len(centers), centers, std)   # every sample one mode off
    assert wrong == {"on_requested_mode": 0.0, "on_requested_mode_worst": 0.0, "nearest_is_requested": 0.0}


def test_off_mode_and_ignored_labels_count_against():
    centers, std = mixture_modes("ring8")
    labels = balanced_labels(800, 8)
    x = centers[labels].clone()
    x[labels == 3] = centers[0]            # label 3 ignored: its samples land on mode 0
    x[:100] += 10 * std * torch.tensor([1.0, 0.0])   # 100 near the requested mode but not on it
    x[0] = float("nan")
    m = requested_mode_metrics(x, labels, centers, std)
    assert m["on_requested_mode_worst"] == 0.0
    on = (labels[100:] != 3).sum().item()
    assert m["on_requested_mode"] == pytest.approx(on / 800)
    assert m["nearest_is_requested"] == pytest.approx((800 - 100 - 1) / 800)   # label 3's 100 and the NaN


def test_inception_score_hand_cases():
    assert inception_score(torch.eye(10)) == pytest.approx(10.0)            # confident, all classes
    assert inception_score(torch.eye(10)[[3] * 20]) == pytest.approx(1.0)   # confident, one class
    assert inception_score(torch.full((5, 10), 0.1)) == pytest.approx(1.0)  # unsure


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


def test_classifier_accuracy_on_real_labelled_images(classifier, fmnist_test):
    x, y = fmnist_test
    m = classifier_label_metrics(classifier, to_unit_range(x), y)
    assert m["cond_accuracy"] == pytest.approx(SHIPPED["test_accuracy"], abs=0.005)
    assert 1.0 < m["is_per_class_mean"] < 2.0      # each class mostly seen as itself
    shuffled = classifier_label_metrics(classifier, to_unit_range(x), y[torch.randperm(len(y))])
    assert shuffled["cond_accuracy"] < 0.2 and shuffled["is_per_class_mean"] > 5


def test_wrapped_evaluator_asks_for_balanced_labels_and_keeps_its_metrics():
    evaluator = make_evaluator("toy2d", "ring8", 800, conditional=True)
    assert isinstance(evaluator, ConditionalEvaluator) and evaluator.headline == "modes_covered"
    assert {"on_requested_mode", "modes_covered", "w1_exact_2k"} <= set(evaluator.metric_names)
    centers, _ = mixture_modes("ring8")
    asked = []

    def perfect(labels):
        asked.append(labels)
        return centers[labels]
    m = evaluator.evaluate(perfect)
    assert torch.equal(torch.cat(asked), balanced_labels(800, 8))
    assert m["on_requested_mode"] == 1.0 and m["modes_covered"] == 8 and set(m) == set(evaluator.metric_names)
    assert not evaluator.collapsed(m)
    assert math.isfinite(m["w1_exact_2k"])


def test_evaluators_without_label_metrics_are_refused():
    class Other:
        name = "inception"
    with pytest.raises(ValueError, match="no conditional metrics"):
        ConditionalEvaluator(Other(), 10)
