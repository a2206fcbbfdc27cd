"""The shipped Fashion-MNIST classifier and the IS/FID/KID path through torch-fidelity."""

import json

import pytest
import torch

from harness.data import to_unit_range
from harness.evaluate import make_evaluator
from harness.evaluate import fidelity
from harness.evaluate.classifier import default_weights_path, load_classifier
from harness.evaluate.train_classifier import classifier_accuracy

N = 1000
WEIGHTS = default_weights_path("fashion_mnist")


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory):
    return make_evaluator("fmnist-classifier", "fashion_mnist", N, cache_dir=tmp_path_factory.mktemp("cache"))


def from_tensor(x_uint8):
    """A sample_fn that hands out the given images in order, as a generator would."""
    x = to_unit_range(x_uint8, "cpu")
    pos = [0]

    def sample(n):
        out = x[pos[0]:pos[0] + n]
        pos[0] += n
        return out

    return sample


def test_shipped_files():
    assert WEIGHTS.stat().st_size < 2 * 2**20
    info = json.loads(WEIGHTS.with_suffix(".json").read_text())
    for key in ("test_accuracy", "is_real_test", "is_real_test_n", "fid_train_test", "fid_n_train", "fid_n_test",
                "seed", "torch_version", "training_command"):
        assert key in info, key
    assert info["test_accuracy"] >= 0.90
    assert torch.load(WEIGHTS, weights_only=True)  # plain tensors only


def test_accuracy_on_test_split(fmnist_test):
    acc = classifier_accuracy(load_classifier(), *fmnist_test)
    assert acc >= 0.90
    shipped = json.loads(WEIGHTS.with_suffix(".json").read_text())["test_accuracy"]
    assert acc == pytest.approx(shipped, abs=0.002)


def test_metric_names_carry_protocol(tmp_path):
    ev = make_evaluator("fmnist-classifier", "fashion_mnist", 500, real_split="test", cache_dir=tmp_path)
    assert ev.headline == "is500_fmnistclf"
    assert (ev.metric_fid, ev.metric_kid) == ("fid500_test_fmnistclf", "kid500_test_fmnistclf")
    assert make_evaluator("fmnist-classifier", "fashion_mnist", 5000, cache_dir=tmp_path).headline == "is5k_fmnistclf"


def test_real_test_set_scores_well(evaluator, fmnist_test):
    m = evaluator.evaluate(from_tensor(fmnist_test[0][:N]))
    prdc = {f"{k}1k_train_fmnistclf" for k in ("precision", "recall", "density", "coverage")}
    assert set(m) == {"is1k_fmnistclf", "is1k_fmnistclf_std", "fid1k_train_fmnistclf", "kid1k_train_fmnistclf",
                      "kid1k_train_fmnistclf_std", "classes_covered", "classes_covered_real"} | prdc
    assert set(m) == set(evaluator.metric_names)
    assert m["precision1k_train_fmnistclf"] > 0.6 and m["coverage1k_train_fmnistclf"] > 0.6
    assert m["classes_covered"] == 10 and m["classes_covered_real"] == 10
    assert not evaluator.collapsed(m)
    assert m["is1k_fmnistclf"] > 6


def test_single_class_scores_badly(evaluator, fmnist_test):
    x, y = fmnist_test
    real = evaluator.evaluate(from_tensor(x[:N]))
    one = evaluator.evaluate(from_tensor(x[y == 7][:N]))
    assert one["is1k_fmnistclf"] < 1.5 < 4 * 1.5 < real["is1k_fmnistclf"]
    assert one["classes_covered"] == 1 and evaluator.collapsed(one)
    assert one["fid1k_train_fmnistclf"] > 5 * real["fid1k_train_fmnistclf"]
    # one class of ten: its samples are real-looking, but the real data is barely covered
    assert one["coverage1k_train_fmnistclf"] < 0.3 < real["coverage1k_train_fmnistclf"]
    assert one["recall1k_train_fmnistclf"] < real["recall1k_train_fmnistclf"]


def test_fid_real_far_below_noise(evaluator, fmnist_test):
    real = evaluator.evaluate(from_tensor(fmnist_test[0][:N]))
    g = torch.Generator().manual_seed(0)
    noise = evaluator.evaluate(lambda n: torch.rand(n, 1, 32, 32, generator=g) * 2 - 1)
    assert real["fid1k_train_fmnistclf"] < 0.05 * noise["fid1k_train_fmnistclf"]
    assert real["kid1k_train_fmnistclf"] < 0.05 * noise["kid1k_train_fmnistclf"]


def test_real_features_cached_and_temp_entries_removed(evaluator, fmnist_test, monkeypatch):
    evaluator.evaluate(from_tensor(fmnist_test[0][:N]))
    files = sorted(p.name for p in evaluator.cache_root.iterdir())
    assert files and all(f.startswith(evaluator.real_name) for f in files)

    def no_loading(*a, **k):
        raise AssertionError("real images re-read although their features are cached")

    monkeypatch.setattr(fidelity, "load_images", no_loading)
    again = make_evaluator("fmnist-classifier", "fashion_mnist", N, cache_dir=evaluator.cache_root.parent)
    m = again.evaluate(from_tensor(fmnist_test[0][:N]))
    assert m["classes_covered_real"] == 10


def test_wrong_sample_shape_is_an_error(evaluator):
    with pytest.raises(ValueError, match="1 x 32 x 32"):
        evaluator.evaluate(lambda n: torch.zeros(n, 3, 32, 32))


def test_check_is_read_only_without_record(fmnist_test):
    from harness.evaluate import check_classifier
    from harness.evaluate.classifier import default_weights_path
    shipped = default_weights_path("fashion_mnist").with_suffix(".json")
    before = shipped.read_bytes()
    figures = check_classifier("fashion_mnist", n=500)
    assert shipped.read_bytes() == before
    assert figures["is_real_test_n"] == 500 and figures["test_accuracy"] > 0.9
