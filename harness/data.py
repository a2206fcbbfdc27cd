"""Datasets as whole uint8 tensors, and the exact 2D Gaussian mixtures, by name.

Every dataset, built in or a plugin's (docs/extending.md), is registered the same way:
`image_dataset` decorates a loader, `mixture_dataset` a function giving a mixture's modes.

Training keeps a whole dataset on its device and draws batches by random index, so
this module returns plain tensors (N x C x 32 x 32 uint8 images, int64 labels) rather
than DataLoaders. Every image dataset comes out at 32 x 32 so that one architecture
space serves all of them; 28 x 28 data is zero-padded by 2 pixels on each side.
"""

from __future__ import annotations

import gzip
import inspect
import math
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .errors import DatasetNotFound, UnknownName
from .registry import claim

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


# What an image dataset's loader is: (split "train" | "test", data root, data.path) ->
# (images, int64 labels); images uint8, N x C x H x W (or N x H x W, N x H x W x C), 32 x 32 or
# 28 x 28 (zero-padded to 32). `as_images` puts them in the harness's form.
ImageLoader = Callable[[str, Path, "str | None"], "tuple[Tensor | np.ndarray, Tensor | np.ndarray]"]
# What a 2D mixture's modes are: () -> (K x 2 centers, the per-coordinate std of each Gaussian).
MixtureModes = Callable[[], "tuple[Tensor, float]"]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    kind: str  # "image" or "toy2d"
    channels: int  # 1 or 3 for images; 2 (dimensions) for toy2d
    num_classes: int  # classes for images; number of mixture modes for toy2d
    n_train: int  # training examples (images); 0 for the mixtures, which are sampled
    description: str
    load: ImageLoader | None = field(default=None, compare=False, repr=False)     # images
    modes: MixtureModes | None = field(default=None, compare=False, repr=False)   # 2D mixtures

    @property
    def shape(self) -> tuple[int, ...]:
        """One example as G makes it and D reads it: C x 32 x 32 images, or a 2D point."""
        return (2,) if self.kind == "toy2d" else (self.channels, IMAGE_SIZE, IMAGE_SIZE)

    @property
    def definition(self):
        """The function that defines the data (registry.claim tells two definitions apart by it)."""
        return self.load or self.modes


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset to the registry (experiments, `list datasets`, every report); a name
    another definition holds is refused (registry.DuplicateName). `image_dataset` and
    `mixture_dataset` build the spec; built-ins and plugins register alike."""
    if spec.kind not in ("image", "toy2d"):
        raise ValueError(f"dataset {spec.name!r}: kind {spec.kind!r} is not 'image' or 'toy2d'")
    if spec.kind == "image" and spec.channels not in (1, 3):
        raise ValueError(f"dataset {spec.name!r}: images have 1 or 3 channels, not {spec.channels}")
    if spec.num_classes < 1 or spec.n_train < 0:
        raise ValueError(f"dataset {spec.name!r}: num_classes must be >= 1 and n_train >= 0")
    claim(DATASETS, spec.name, spec, "dataset")
    return spec


def image_dataset(name: str, *, channels: int, num_classes: int, n_train: int, description: str):
    """Decorator: `loader(split, root, path) -> (images, labels)` becomes image dataset `name`.

    channels 1 or 3; num_classes: how many labels (conditional training, class coverage);
    n_train: the training split's size (memory and cost estimates; data.limit cuts it);
    images uint8 at 32 x 32 (28 x 28 is padded), labels 0 .. num_classes - 1. `split` is
    "train" or "test" (eval.real_split); `root` the data root (data.root, HARNESS_DATA_ROOT);
    `path` the experiment's data.path, for data the user supplies. A loader that also takes a
    keyword `limit` is told data.limit, to read no more than that (it may return more)."""
    def decorate(loader: ImageLoader) -> ImageLoader:
        register_dataset(DatasetSpec(name, "image", channels, num_classes, n_train, description, load=loader))
        return loader
    return decorate


def mixture_dataset(name: str, *, description: str):
    """Decorator: `modes() -> (K x 2 centers, std)` becomes the 2D Gaussian mixture `name`:
    K modes of equal weight, each N(center, std^2 I). Training samples it exactly; the toy2d
    evaluator counts modes and high-quality samples (within 3 std) against these centers."""
    def decorate(modes: MixtureModes) -> MixtureModes:
        centers, std = _checked_modes(name, modes)
        register_dataset(DatasetSpec(name, "toy2d", 2, len(centers), 0, description, modes=modes))
        return modes
    return decorate


def _checked_modes(name: str, modes: MixtureModes) -> tuple[Tensor, float]:
    centers, std = modes()
    centers = torch.as_tensor(centers, dtype=torch.float32)
    if centers.dim() != 2 or centers.shape[1] != 2 or len(centers) < 1:
        raise ValueError(f"dataset {name!r}: modes() must give K x 2 centers, got shape {tuple(centers.shape)}")
    if not (math.isfinite(float(std)) and float(std) > 0):
        raise ValueError(f"dataset {name!r}: modes() must give a finite std > 0, got {std!r}")
    return centers, float(std)


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
    if spec.load is None:
        raise ValueError(f"dataset {name!r} has no loader (register it with data.image_dataset)")
    root = Path(root) if root is not None else default_data_root()
    reads_limit = "limit" in inspect.signature(spec.load).parameters   # reads less than the whole split
    x, y = spec.load(split, root, path, limit=limit) if reads_limit else spec.load(split, root, path)
    x, y = as_images(x, spec), torch.as_tensor(np.asarray(y) if not isinstance(y, Tensor) else y)
    if y.shape != (len(x),):
        raise ValueError(f"dataset {name!r}: {len(x)} images but labels of shape {tuple(y.shape)}")
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return x.contiguous(), y.to(torch.int64)


def real_subset(x: Tensor, n: int) -> Tensor:
    """The evaluation's real side: n images drawn by a fixed seed, kept in file order (not the
    first n: a user's files may be sorted by class). The evaluator's real features and the real
    data's own score (relative thresholds) read this same subset."""
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:n]
    return x[idx.sort().values]


def as_images(x, spec: DatasetSpec) -> Tensor:
    """A loader's images in the harness's form, uint8 N x C x 32 x 32: N x H x W and
    N x H x W x C are reordered, 28 x 28 is zero-padded by 2 pixels on each side (as MNIST
    always was here); anything else is an error naming the dataset."""
    x = torch.as_tensor(np.asarray(x)) if not isinstance(x, Tensor) else x
    if x.dtype != torch.uint8:
        raise ValueError(f"dataset {spec.name!r}: images must be uint8 (0..255), got {x.dtype}")
    if x.dim() == 3:
        x = x.unsqueeze(1)
    elif x.dim() == 4 and x.shape[1] != spec.channels and x.shape[-1] == spec.channels:
        x = x.permute(0, 3, 1, 2)
    if x.dim() != 4 or x.shape[1] != spec.channels or x.shape[2] != x.shape[3] or \
            x.shape[2] not in (28, IMAGE_SIZE):
        raise ValueError(f"dataset {spec.name!r}: expected {spec.channels} x 32 x 32 (or 28 x 28) images, "
                         f"got an array of shape {tuple(x.shape)}")
    if x.shape[2] == 28:
        x = torch.nn.functional.pad(x, (2, 2, 2, 2))
    return x


@image_dataset("fashion_mnist", channels=1, num_classes=10, n_train=60_000,
               description="Fashion-MNIST 28x28 grayscale, padded to 32x32 (Debian dataset-fashion-mnist)")
def _fashion_mnist(split: str, root: Path, path=None):
    _ensure_fashion_mnist_raw(root)
    return _load_torchvision("FashionMNIST", root, split)


@image_dataset("mnist", channels=1, num_classes=10, n_train=60_000,
               description="MNIST 28x28 grayscale, padded to 32x32 (torchvision download)")
def _mnist(split: str, root: Path, path=None):
    return _load_torchvision("MNIST", root, split)


@image_dataset("cifar10", channels=3, num_classes=10, n_train=50_000,
               description="CIFAR-10 32x32 RGB (torchvision download)")
def _cifar10(split: str, root: Path, path=None):
    return _load_torchvision("CIFAR10", root, split)   # N x H x W x C: as_images reorders it


@image_dataset("imagenet32", channels=3, num_classes=1000, n_train=1_281_167,
               description="Downsampled ImageNet 32x32 RGB, user-supplied (data.path), as in WGAN-GP sec. 5.1")
def _imagenet32(split: str, root: Path, path=None, limit: int | None = None):
    return _load_imagenet32(path, split, limit)


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


@mixture_dataset("ring8", description="8 Gaussians on a circle of radius 2, std 0.02 (PacGAN's ring scaled by 2)")
def _ring8():
    a = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return 2.0 * torch.stack([a.cos(), a.sin()], dim=1), MIXTURE_STDS["ring8"]


@mixture_dataset("grid25", description="25 Gaussians on a 5x5 grid {-4..4}^2, std 0.05 (PacGAN)")
def _grid25():
    v = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0], dtype=torch.float64)
    return torch.cartesian_prod(v, v), MIXTURE_STDS["grid25"]


def mixture_modes(name: str) -> tuple[Tensor, float]:
    """(K x 2 float32 centers, per-coordinate std) of a 2D mixture."""
    spec = get_dataset_spec(name)
    if spec.kind != "toy2d" or spec.modes is None:
        raise ValueError(f"{name!r} is not a 2D mixture; mixtures: "
                         f"{', '.join(n for n, s in DATASETS.items() if s.kind == 'toy2d')}")
    return _checked_modes(name, spec.modes)


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
