"""A trial's views of its experiment, each decided in one place."""
from pathlib import Path

import pytest

from harness.config import from_dict
from harness.errors import ConfigError, EvaluatorUnavailable
from harness.trial import (Trial, data_shape, dataset_bytes, evaluator_name, make_evaluator, objective_for,
                           trials_of, z_dim)


@pytest.mark.parametrize("dataset,evaluator,shape,z", [
    ("ring8", "toy2d", (2,), 2),
    ("fashion_mnist", "fmnist-classifier", (1, 32, 32), 128),
    ("mnist", "inception", (1, 32, 32), 128),       # the Fashion-MNIST classifier does not measure digits
    ("cifar10", "inception", (3, 32, 32), 128),
])
def test_auto_views(dataset, evaluator, shape, z):
    e = from_dict({"dataset": dataset})
    assert (evaluator_name(e), data_shape(e), z_dim(e)) == (evaluator, shape, z)
    assert z_dim(from_dict({"dataset": dataset, "train": {"z_dim": 7}})) == 7


def test_mnist_with_the_default_evaluator_fails_by_name_offline_not_by_accident():
    """Inception cannot be fetched here: the message says how to fix it (weights_path)."""
    import torch
    from harness.evaluate.registry import INCEPTION_URL
    if (Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_URL.rsplit("/", 1)[1]).exists():
        pytest.skip("Inception weights are cached on this machine")
    with pytest.raises(EvaluatorUnavailable, match="weights_path"):
        make_evaluator(from_dict({"dataset": "mnist"}))


def test_an_evaluator_that_cannot_measure_the_data_names_its_field():
    with pytest.raises(ConfigError) as err:
        make_evaluator(from_dict({"dataset": "ring8", "eval": {"evaluator": "fmnist-classifier"}}))
    assert err.value.field == "eval.evaluator"
    with pytest.raises(ConfigError) as err:
        make_evaluator(from_dict({"dataset": "fashion_mnist", "eval": {"n_samples": 10}}))
    assert err.value.field == "eval.n_samples"


def test_dataset_bytes_follow_the_data_and_its_limit():
    assert dataset_bytes(from_dict({"dataset": "ring8"})) == 0
    assert dataset_bytes(from_dict({"dataset": "fashion_mnist"})) == 60_000 * 32 * 32
    assert dataset_bytes(from_dict({"dataset": "fashion_mnist", "data": {"limit": 100}})) == 100 * 32 * 32
    assert dataset_bytes(from_dict({"dataset": "imagenet32"})) == 1_281_167 * 3 * 32 * 32   # ~3.9 GB


def test_overrides_reach_the_objective_and_the_params():
    e = from_dict({"dataset": "ring8", "objectives": ["gan", "wgan-gp"], "space": {"n": 2}, "seeds": [0, 1],
                   "objective_overrides": {"wgan-gp": {"n_critic": 2}}})
    assert objective_for(e, "wgan-gp").settings.n_critic == 2 and objective_for(e, "gan").settings.n_critic == 1
    trials = trials_of(e)
    assert len(trials) == 2 * 2 * 2 and trials[0].arch == trials[1].arch     # pairs adjacent
    wgan = next(t for t in trials if t.objective == "wgan-gp")
    assert isinstance(wgan, Trial) and wgan.params()["objective.n_critic"] == 2


def test_real_data_scores_with_the_experiments_own_evaluator(fmnist_test):
    from harness.trial import real_data_score
    assert real_data_score(from_dict({"dataset": "grid25", "eval": {"n_samples": 2500}})) == 25.0
    is_real = real_data_score(from_dict({"dataset": "fashion_mnist", "eval": {"n_samples": 500}}))
    assert 6.0 < is_real < 10.0     # the shipped classifier's IS of 10k real test images: 8.00
