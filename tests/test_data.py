import math
import pickle

import numpy as np
import pytest
import torch

from harness import data
from harness.data import (
    DATASETS,
    DatasetNotFound,
    get_dataset_spec,
    load_images,
    mixture_modes,
    sample_mixture,
    to_uint8,
    to_unit_range,
)


def test_registry_names_and_kinds():
    assert set(DATASETS) == {"fashion_mnist", "mnist", "cifar10", "imagenet32", "ring8", "grid25"}
    assert get_dataset_spec("fashion_mnist").channels == 1
    assert get_dataset_spec("cifar10").channels == 3
    assert get_dataset_spec("imagenet32").num_classes == 1000
    assert get_dataset_spec("ring8").kind == "toy2d" and get_dataset_spec("ring8").num_classes == 8
    assert get_dataset_spec("grid25").num_classes == 25


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(KeyError) as ei:
        get_dataset_spec("fmnist")
    assert isinstance(ei.value, ValueError)
    for name in DATASETS:
        assert name in str(ei.value)


def test_fashion_mnist_shapes_dtypes_padding(fmnist_test):
    x, y = fmnist_test
    assert x.shape == (10_000, 1, 32, 32) and x.dtype == torch.uint8 and x.device.type == "cpu"
    assert y.shape == (10_000,) and y.dtype == torch.int64
    assert set(y.unique().tolist()) == set(range(10))
    border = torch.cat([x[..., :2, :].flatten(), x[..., -2:, :].flatten(), x[..., :, :2].flatten(),
                        x[..., :, -2:].flatten()])
    assert border.max() == 0  # zero padding, 2 pixels each side
    assert x[..., 2:30, 2:30].float().mean() > 50  # the images themselves are inside


def test_fashion_mnist_limit_is_prefix(fmnist_test):
    x, y = load_images("fashion_mnist", "test", limit=100)
    assert torch.equal(x, fmnist_test[0][:100]) and torch.equal(y, fmnist_test[1][:100])


def test_fashion_mnist_decompresses_into_fresh_root(tmp_path, fmnist_test):
    if not data.FASHION_MNIST_SYSTEM_DIR.exists():
        pytest.skip("Debian dataset-fashion-mnist not installed")
    x, _ = load_images("fashion_mnist", "test", root=tmp_path, limit=5)
    assert sorted(p.name for p in (tmp_path / "FashionMNIST" / "raw").iterdir()) == sorted(data.FASHION_MNIST_FILES)
    assert torch.equal(x, fmnist_test[0][:5])
    load_images("fashion_mnist", "test", root=tmp_path, limit=5)  # idempotent


def test_unit_range_round_trip():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    f = to_unit_range(x, "cpu")
    assert f.dtype == torch.float32 and f.min() == -1 and f.max() == 1
    assert torch.equal(to_uint8(f), x)
    assert torch.equal(to_uint8(torch.tensor([-3.0, 3.0, 0.0])), torch.tensor([0, 255, 128], dtype=torch.uint8))


@pytest.mark.parametrize("name,k,expected_std", [("ring8", 8, 0.02), ("grid25", 25, 0.05)])
def test_mixture_modes(name, k, expected_std):
    centers, std = mixture_modes(name)
    assert centers.shape == (k, 2) and std == expected_std   # PacGAN: grid std 0.05
    if name == "ring8":
        assert torch.allclose(centers.norm(dim=1), torch.full((8,), 2.0))
        angles = torch.atan2(centers[:, 1], centers[:, 0]).sort().values
        assert torch.allclose(angles.diff(), torch.full((7,), 2 * math.pi / 8), atol=1e-5)
    else:
        assert sorted(set(centers.flatten().tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
        assert len({tuple(c) for c in centers.tolist()}) == 25


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_sample_mixture_seeded_and_distributed(name):
    a = sample_mixture(name, 20_000, torch.Generator().manual_seed(1))
    b = sample_mixture(name, 20_000, torch.Generator().manual_seed(1))
    c = sample_mixture(name, 20_000, torch.Generator().manual_seed(2))
    assert a.shape == (20_000, 2) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    centers, std = mixture_modes(name)
    d, nearest = torch.cdist(a, centers).min(dim=1)
    resid = a - centers[nearest]
    assert abs(resid.std().item() - std) < 0.002
    counts = torch.bincount(nearest, minlength=len(centers)).float()
    assert counts.min() > 0.6 * counts.mean()  # modes drawn uniformly


def test_imagenet32_without_path_names_the_fix():
    with pytest.raises(DatasetNotFound, match="data.path"):
        load_images("imagenet32")
    with pytest.raises(DatasetNotFound, match="data.path"):
        load_images("imagenet32", path="/nonexistent/Imagenet32_train")


def test_imagenet32_batch_format(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(6, 3072), dtype=np.uint8)
    for i in (1, 2):
        with open(tmp_path / f"train_data_batch_{i}", "wb") as f:
            pickle.dump({"data": raw[3 * (i - 1):3 * i], "labels": [1, 2, 1000]}, f)
    x, y = load_images("imagenet32", "train", path=tmp_path)
    assert x.shape == (6, 3, 32, 32) and x.dtype == torch.uint8
    assert y.tolist() == [0, 1, 999, 0, 1, 999]
    # channel planes: the first 1024 values are the red plane
    assert torch.equal(x[0, 0].flatten(), torch.from_numpy(raw[0, :1024]))
    x2, _ = load_images("imagenet32", "train", path=tmp_path, limit=2)
    assert torch.equal(x2, x[:2])
    with pytest.raises(DatasetNotFound, match="val_data"):
        load_images("imagenet32", "test", path=tmp_path)


def test_imagenet32_npz_xy(tmp_path):
    xs = np.random.default_rng(0).integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "small.npz", x=xs, y=np.array([0, 1, 2, 3]))
    x, y = load_images("imagenet32", path=tmp_path / "small.npz")
    assert x.shape == (4, 3, 32, 32) and y.tolist() == [0, 1, 2, 3]
    assert torch.equal(x[1, 2], torch.from_numpy(xs[1, :, :, 2]))


def test_offline_download_names_the_fix(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    def offline(*a, **k):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(tvd, "MNIST", offline)
    with pytest.raises(DatasetNotFound, match="HARNESS_DATA_ROOT|internet"):
        load_images("mnist", root=tmp_path)


def test_toy_dataset_is_not_an_image_dataset():
    with pytest.raises(ValueError, match="sample_mixture"):
        load_images("ring8")


class _RunsCode:
    """A pickle that would call os.system on load (the classic crafted file)."""

    def __reduce__(self):
        import os
        return (os.system, ("touch pwned",))


def test_imagenet32_batch_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "batches"
    folder.mkdir()
    with open(folder / "train_data_batch_1", "wb") as f:
        pickle.dump({"data": _RunsCode(), "labels": [1]}, f)
    with pytest.raises(DatasetNotFound, match="refusing to load posix.system"):
        load_images("imagenet32", "train", path=folder)
    assert not (tmp_path / "pwned").exists()
