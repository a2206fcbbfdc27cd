import pytest

from harness.evaluate import (
    EVALUATORS,
    EvaluatorUnavailable,
    UnknownEvaluator,
    count_tag,
    default_evaluator_for,
    make_evaluator,
)


def test_names():
    assert set(EVALUATORS) == {"inception", "fmnist-classifier", "toy2d"}
    assert all(v.name == k and isinstance(v.description, str) and v.description and callable(v.build)
               for k, v in EVALUATORS.items())


def test_unknown_evaluator_lists_valid_names():
    with pytest.raises(UnknownEvaluator) as ei:
        make_evaluator("fid", "fashion_mnist", 1000)
    assert isinstance(ei.value, KeyError) and isinstance(ei.value, ValueError)
    for name in EVALUATORS:
        assert name in str(ei.value)


def test_count_tag():
    assert [count_tag(n) for n in (200, 500, 1000, 2500, 5000, 50_000)] == ["200", "500", "1k", "2.5k", "5k", "50k"]


def test_default_evaluator_for():
    assert default_evaluator_for("ring8") == "toy2d"
    assert default_evaluator_for("fashion_mnist") == "fmnist-classifier"
    assert default_evaluator_for("cifar10") == "inception"


def test_inception_without_weights_names_the_option(tmp_path):
    with pytest.raises(EvaluatorUnavailable, match="weights_path"):
        make_evaluator("inception", "cifar10", 1000, weights_path=tmp_path / "missing.pth")


def test_dataset_kind_mismatch():
    with pytest.raises(ValueError, match="toy2d"):
        make_evaluator("fmnist-classifier", "ring8", 1000)
    with pytest.raises(ValueError, match="inception"):
        make_evaluator("fmnist-classifier", "cifar10", 1000)
    with pytest.raises(ValueError, match="2D mixtures"):
        make_evaluator("toy2d", "fashion_mnist", 1000)
