"""Datasets as whole uint8 tensors, and the exact 2D Gaussian mixtures.

Training keeps a whole dataset on its device and draws batches by random index, so
this module returns plain tensors (N x C x 32 x 32 uint8 images, int64 labels) rather
than DataLoaders. Every image dataset comes out at 32 x 32 so that one architecture
space serves all of them; 28 x 28 data is zero-padded by 2 pixels on each side.
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .errors import DatasetNotFound, UnknownName

IMAGE_SIZE = 32  # every image dataset comes out 32 x 32: one architecture space for all
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class UnknownDataset(UnknownName, ValueError):
    """An unknown dataset name; a KeyError for lookups, a ValueError for config validation."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    kind: str  # "image" or "toy2d"
    channels: int  # 1 or 3 for images; 2 (dimensions) for toy2d
    num_classes: int  # classes for images; number of mixture modes for toy2d
    n_train: int  # training examples (images); 0 for the mixtures, which are sampled
    description: str

    @property
    def shape(self) -> tuple[int, ...]:
        """One example as G makes it and D reads it: C x 32 x 32 images, or a 2D point."""
        return (2,) if self.kind == "toy2d" else (self.channels, IMAGE_SIZE, IMAGE_SIZE)


DATASETS: dict[str, DatasetSpec] = {
    s.name: s
    for s in (
        DatasetSpec("fashion_mnist", "image", 1, 10, 60_000,
                    "Fashion-MNIST 28x28 grayscale, padded to 32x32 (Debian dataset-fashion-mnist)"),
        DatasetSpec("mnist", "image", 1, 10, 60_000, "MNIST 28x28 grayscale, padded to 32x32 (torchvision download)"),
        DatasetSpec("cifar10", "image", 3, 10, 50_000, "CIFAR-10 32x32 RGB (torchvision download)"),
        DatasetSpec("imagenet32", "image", 3, 1000, 1_281_167,
                    "Downsampled ImageNet 32x32 RGB, user-supplied (data.path), as in WGAN-GP sec. 5.1"),
        DatasetSpec("ring8", "toy2d", 2, 8, 0, "8 Gaussians on a circle of radius 2, std 0.02 (PacGAN's ring scaled by 2)"),
        DatasetSpec("grid25", "toy2d", 2, 25, 0, "25 Gaussians on a 5x5 grid {-4..4}^2, std 0.05 (PacGAN)"),
    )
}


def get_dataset_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownDataset(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}") from None


def default_data_root() -> Path:
    return Path(os.environ.get("HARNESS_DATA_ROOT") or Path.home() / ".cache" / "harness" / "data")


# --------------------------------------------------------------------------- images


def load_images(name: str, split: str = "train", root=None, path=None, limit: int | None = None
                ) -> tuple[Tensor, Tensor]:
    """Return (uint8 N x C x 32 x 32 images, int64 labels) on CPU; `limit` keeps the first N."""
    spec = get_dataset_spec(name)
    if spec.kind != "image":
        raise ValueError(f"{name!r} is a 2D mixture, not an image dataset: use sample_mixture()")
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; valid splits: train, test")
    root = Path(root) if root is not None else default_data_root()
    if name == "imagenet32":
        x, y = _load_imagenet32(path, split, limit)
    elif name == "cifar10":
        x, y = _load_torchvision("CIFAR10", root, split)
        x = x.permute(0, 3, 1, 2)  # torchvision keeps CIFAR as N x H x W x C
    else:
        if name == "fashion_mnist":
            _ensure_fashion_mnist_raw(root)
        x, y = _load_torchvision("FashionMNIST" if name == "fashion_mnist" else "MNIST", root, split)
        x = torch.nn.functional.pad(x.unsqueeze(1), (2, 2, 2, 2))
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return x.contiguous(), y.to(torch.int64)


def _load_torchvision(cls_name: str, root: Path, split: str) -> tuple[Tensor, Tensor]:
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    train = split == "train"
    try:
        try:  # present already: skip torchvision's md5 pass over the archive
            ds = cls(str(root), train=train, download=False)
        except RuntimeError:
            if cls_name == "FashionMNIST":
                raise
            ds = cls(str(root), train=train, download=True)
    except Exception as e:  # offline: URLError, RuntimeError "Dataset not found", ...
        if cls_name == "FashionMNIST":
            fix = ("sudo apt-get install dataset-fashion-mnist (puts the files in "
                   f"{FASHION_MNIST_SYSTEM_DIR}), or place the four idx files in {root}/FashionMNIST/raw/")
        else:
            fix = (f"run once on a machine with internet access so torchvision downloads it into {root} "
                   "(or set HARNESS_DATA_ROOT to a folder that already holds it)")
        raise DatasetNotFound(f"{cls_name} not found under {root} and could not be fetched ({e}); fix: {fix}") from e
    x, y = ds.data, ds.targets
    x = torch.as_tensor(np.asarray(x)) if not isinstance(x, Tensor) else x
    y = torch.as_tensor(np.asarray(y)) if not isinstance(y, Tensor) else y
    return x, y


def _ensure_fashion_mnist_raw(root: Path) -> None:
    """Decompress Debian's .gz files where torchvision looks (its md5 check rejects the .gz)."""
    raw = root / "FashionMNIST" / "raw"
    if all((raw / f).exists() for f in FASHION_MNIST_FILES):
        return
    if not all((FASHION_MNIST_SYSTEM_DIR / f"{f}.gz").exists() for f in FASHION_MNIST_FILES):
        return  # _load_torchvision raises DatasetNotFound naming the apt package
    raw.mkdir(parents=True, exist_ok=True)
    for f in FASHION_MNIST_FILES:
        if (raw / f).exists():
            continue
        # temp file + os.replace: two processes decompressing at once never expose a half file
        fd, tmp = tempfile.mkstemp(dir=raw, prefix=f".{f}.")
        try:
            with gzip.open(FASHION_MNIST_SYSTEM_DIR / f"{f}.gz", "rb") as src, os.fdopen(fd, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache may be shared
            os.replace(tmp, raw / f)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _load_imagenet32(path, split: str, limit: int | None) -> tuple[Tensor, Tensor]:
    """Read the published downsampled-ImageNet batches (Chrabaszcz et al. 2017) or an .npz.

    Folder: train_data_batch_1..10 for split train, val_data for split test (with or
    without an .npz suffix). Batches are dicts with 'data' N x 3072 uint8 (channel
    planes R, G, B) and 'labels' 1-based. An .npz with 'x'/'y' is also accepted:
    x as N x 3072, N x 3 x 32 x 32 or N x 32 x 32 x 3, y 0-based.
    """
    fix = ("pass data.path: /path/to/Imagenet32_train (a folder with train_data_batch_1..10 and "
           "val_data from https://image-net.org/download-images, 'Downsampled ImageNet 32x32') "
           "or a .npz with x/y")
    if path is None:
        raise DatasetNotFound(f"imagenet32 is user-supplied and no path was given; {fix}")
    p = Path(path).expanduser()
    if not p.exists():
        raise DatasetNotFound(f"imagenet32 path {p} does not exist; {fix}")
    if p.is_dir():
        stems = [f"train_data_batch_{i}" for i in range(1, 11)] if split == "train" else ["val_data"]
        files = []
        for s in stems:
            for cand in (p / s, p / f"{s}.npz", p / f"{s}.pkl"):
                if cand.exists():
                    files.append(cand)
                    break
        if not files:
            raise DatasetNotFound(f"no {stems[0]}* files for split {split!r} in {p}; {fix}")
    else:
        files = [p]
    xs, ys, n = [], [], 0
    for f in files:
        x, y = _read_imagenet32_file(f)
        xs.append(x)
        ys.append(y)
        n += len(x)
        if limit is not None and n >= limit:
            break
    return torch.cat(xs), torch.cat(ys)


class _SafeUnpickler(pickle.Unpickler):
    """pickle.load for user-supplied batch files that cannot run code: the published format
    needs dicts, lists, numbers, strings and numpy arrays, so only numpy's array and dtype
    reconstructors may be looked up; any other global (os.system, ...) is refused."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise DatasetNotFound(f"refusing to load {module}.{name} from a data file: the downsampled-ImageNet "
                                  "format holds only dicts, lists, numbers and numpy arrays")
        return super().find_class(module, name)


def _read_imagenet32_file(f: Path) -> tuple[Tensor, Tensor]:
    if f.suffix == ".npz":
        with np.load(f) as z:
            if "x" in z:
                x, y, offset = z["x"], z["y"], 0
            else:
                x, y, offset = z["data"], z["labels"], 1
    else:
        with open(f, "rb") as fh:
            d = _SafeUnpickler(fh).load()
        if not isinstance(d, dict) or not {"data", "labels"} <= set(d):
            raise DatasetNotFound(f"{f}: not a downsampled-ImageNet batch (a dict with 'data' and 'labels')")
        x, y, offset = d["data"], d["labels"], 1
    x = np.asarray(x, dtype=np.uint8)
    if x.ndim == 2:
        x = x.reshape(-1, 3, 32, 32)
    elif x.ndim == 4 and x.shape[-1] == 3:
        x = x.transpose(0, 3, 1, 2)
    if x.shape[1:] != (3, 32, 32):
        raise ValueError(f"{f}: expected 32x32 RGB images, got array of shape {x.shape}")
    y = torch.as_tensor(np.asarray(y, dtype=np.int64)) - offset
    return torch.from_numpy(np.ascontiguousarray(x)), y


def to_unit_range(x_uint8: Tensor, device="cpu") -> Tensor:
    """uint8 [0, 255] -> float32 [-1, 1] on `device` (the generator's tanh range)."""
    return x_uint8.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)


def to_uint8(x_float: Tensor) -> Tensor:
    """float [-1, 1] -> uint8, clamped and rounded: the exact inverse of to_unit_range."""
    return ((x_float.detach() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


# --------------------------------------------------------------------------- 2D mixtures

# PacGAN's configuration (Lin et al. 2018, sec. 5 and their code), after VEEGAN and Unrolled
# GAN: ring = 8 Gaussians evenly on a circle (PacGAN: radius 1, std 0.01; here radius 2,
# std 0.02, the same shape scaled by 2); grid = 25 Gaussians at {-4, -2, 0, 2, 4}^2 with
# std 0.05, as PacGAN.
MIXTURE_STDS = {"ring8": 0.02, "grid25": 0.05}


def mixture_modes(name: str) -> tuple[Tensor, float]:
    """(K x 2 float32 centers, per-coordinate std) of a 2D mixture."""
    spec = get_dataset_spec(name)
    if spec.kind != "toy2d":
        raise ValueError(f"{name!r} is not a 2D mixture; mixtures: "
                         f"{', '.join(n for n, s in DATASETS.items() if s.kind == 'toy2d')}")
    if name == "ring8":
        a = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        centers = 2.0 * torch.stack([a.cos(), a.sin()], dim=1)
    else:  # grid25
        v = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0], dtype=torch.float64)
        centers = torch.cartesian_prod(v, v)
    return centers.float(), MIXTURE_STDS[name]


def sample_mixture(name: str, n: int, generator: torch.Generator, device="cpu") -> Tensor:
    """n x 2 float32 samples, modes chosen uniformly; drawn on CPU so results match across devices."""
    return sample_mixture_labelled(name, n, generator, device)[0]


def sample_mixture_labelled(name: str, n: int, generator: torch.Generator, device="cpu") -> tuple[Tensor, Tensor]:
    """(n x 2 samples, their int64 mode indices): the labels of conditional training. The same
    random draws as sample_mixture, which returns the first half of this."""
    centers, std = mixture_modes(name)
    idx = torch.randint(len(centers), (n,), generator=generator)
    x = centers[idx] + std * torch.randn(n, 2, generator=generator)
    return x.to(device), idx.to(device)
