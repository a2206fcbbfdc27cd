"""IS, FID and KID through torch-fidelity's calculate_metrics, with the real side cached.

Real features are extracted once per (dataset, split, extractor, n) into torch-fidelity's
own cache (input2_cache_name) under a file lock, so a hundred trials starting together
compute them once. Generated features go through a uniquely named, immediately deleted
cache entry (input1_cache_name): that is how we get the extractor's logits back for
`classes_covered` without running the network twice.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
import torch_fidelity
from filelock import FileLock
from torch.utils.data import Dataset

from harness.data import get_dataset_spec, load_images, to_uint8
from harness.evaluate.base import Evaluator, SampleFn, count_tag, default_cache_dir, draw_samples

MIN_SAMPLES = 50  # IS uses 10 splits and KID needs subsets of >= 2
# KID averages an unbiased MMD estimate over random subsets of min(1000, n) samples.
# Binkowski et al. and torch-fidelity use 100 subsets; the mean estimates the same
# quantity with any count, only its spread (the _std) changes. 100 subsets cost ~10 s of
# CPU per evaluation (300 1000x1000 kernel matrices in numpy), more than the classifier
# itself, so the harness uses 20 unless asked otherwise.
KID_SUBSETS = 20


def _weights_tag(weights_path) -> str:
    """Part of the real-feature cache key, so features from other weights are never reused."""
    if weights_path is None:
        return "default"
    p = Path(weights_path)
    if p.stat().st_size > 16 * 2**20:  # Inception: its file name already carries a hash
        return hashlib.sha1(p.name.encode()).hexdigest()[:8]
    return hashlib.sha1(p.read_bytes()).hexdigest()[:8]


class UInt8Dataset(Dataset):
    """uint8 N x C x H x W tensor as a torch-fidelity input; gray is repeated to RGB on demand."""

    def __init__(self, x: torch.Tensor, rgb: bool = False):
        self.x, self.rgb = x, rgb

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        x = self.x[i]
        return x.expand(3, -1, -1) if self.rgb and x.shape[0] == 1 else x


class _LazyDataset(Dataset):
    """Real images loaded only if torch-fidelity actually reads them (i.e. on a cache miss)."""

    def __init__(self, load):
        self._load, self._ds = load, None

    def _get(self):
        if self._ds is None:
            self._ds = self._load()
        return self._ds

    def __len__(self):
        return len(self._get())

    def __getitem__(self, i):
        return self._get()[i]


@dataclass(frozen=True)
class Extractor:
    short: str  # goes into metric names
    fidelity_name: str  # torch-fidelity registry name
    layer_isc: str
    layer_fid: str
    n_classes: int  # classes considered by classes_covered (argmax over the isc layer)
    rgb: bool  # feed 3 channels
    batch_size: int


class FidelityEvaluator(Evaluator):
    """Images: IS / FID / KID plus class coverage of generated vs real samples."""

    def __init__(self, name: str, extractor: Extractor, dataset: str, n_samples: int, real_split: str = "train",
                 device="cpu", weights_path=None, cache_dir=None, data_root=None, data_path=None,
                 kid_subsets: int = KID_SUBSETS):
        spec = get_dataset_spec(dataset)
        if spec.kind != "image":
            raise ValueError(f"evaluator {name!r} measures images; {dataset!r} is a 2D mixture: use 'toy2d'")
        if n_samples < MIN_SAMPLES:
            raise ValueError(f"n_samples must be >= {MIN_SAMPLES} for IS/FID/KID, got {n_samples}")
        self.name, self.ext, self.dataset, self.spec = name, extractor, dataset, spec
        self.n_samples, self.real_split, self.device = n_samples, real_split, torch.device(device)
        self.weights_path = str(weights_path) if weights_path is not None else None
        self.data_root, self.data_path = data_root, data_path
        self.kid_subsets = kid_subsets
        self.cache_root = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "fidelity"
        tag = count_tag(n_samples)
        self.metric_is = f"is{tag}_{extractor.short}"
        self.metric_fid = f"fid{tag}_{real_split}_{extractor.short}"
        self.metric_kid = f"kid{tag}_{real_split}_{extractor.short}"
        self.headline = self.metric_is
        self.metric_names = (self.metric_is, self.metric_is + "_std", self.metric_fid, self.metric_kid,
                             self.metric_kid + "_std", "classes_covered", "classes_covered_real")
        source = f"-{hashlib.sha1(str(Path(data_path).resolve()).encode()).hexdigest()[:8]}" if data_path else ""
        self.real_name = f"harness-{dataset}{source}-{real_split}-n{n_samples}-w{_weights_tag(weights_path)}"
        self._real_covered: float | None = None
        self._n_real = 0

    # ------------------------------------------------------------------ real side

    def _load_real(self) -> UInt8Dataset:
        x, _ = load_images(self.dataset, self.real_split, root=self.data_root, path=self.data_path)
        # a seeded subset, not the first n: user-supplied files may be sorted by class
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[: self.n_samples]
        return UInt8Dataset(x[idx.sort().values], rgb=self.ext.rgb)

    def _feature_file(self, cache_name: str, layer: str) -> Path:
        # torch-fidelity's naming in utils.extract_featuresdict_from_input_id_cached
        return self.cache_root / f"{cache_name}-{self.ext.fidelity_name}-features-{layer}.pt"

    def _real_cached(self) -> bool:
        return all(self._feature_file(self.real_name, layer).exists()
                   for layer in {self.ext.layer_isc, self.ext.layer_fid})

    def prepare(self) -> None:
        """Extract and cache the real features (once across processes)."""
        if self._real_cached():
            return
        self.cache_root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.cache_root / f"{self.real_name}-{self.ext.fidelity_name}.lock")):
            if self._real_cached():
                return
            real = self._load_real()
            if len(real) < MIN_SAMPLES:
                raise ValueError(f"{self.dataset}/{self.real_split} has only {len(real)} images")
            self._calculate(input1=real, input1_cache_name=self.real_name, isc=True, fid=True, kid=False,
                            input2=real, input2_cache_name=self.real_name)

    def _covered(self, logits: torch.Tensor) -> float:
        counts = torch.bincount(logits[:, : self.ext.n_classes].argmax(1), minlength=self.ext.n_classes)
        return float((counts >= len(logits) / (4 * self.ext.n_classes)).sum().item())

    def real_classes_covered(self) -> float:
        if self._real_covered is None:
            self.prepare()
            logits = torch.load(self._feature_file(self.real_name, self.ext.layer_isc), map_location="cpu",
                                weights_only=True)
            self._real_covered, self._n_real = self._covered(logits), len(logits)
        return self._real_covered

    # ------------------------------------------------------------------ generated side

    def _calculate(self, **kw) -> dict:
        cuda = self.device.type == "cuda"
        ctx = torch.cuda.device(self.device) if cuda and self.device.index is not None else contextlib.nullcontext()
        with ctx:
            return torch_fidelity.calculate_metrics(
                feature_extractor=self.ext.fidelity_name, feature_layer_isc=self.ext.layer_isc,
                feature_layer_fid=self.ext.layer_fid, feature_layer_kid=self.ext.layer_fid,
                feature_extractor_weights_path=self.weights_path, cache_root=str(self.cache_root), cache=True,
                cuda=cuda, batch_size=self.ext.batch_size, save_cpu_ram=True, verbose=False, **kw)

    def evaluate(self, sample_fn: SampleFn) -> dict[str, float]:
        covered_real = self.real_classes_covered()
        x = draw_samples(sample_fn, self.n_samples)
        if tuple(x.shape[1:]) != self.spec.shape:
            raise ValueError(f"{self.dataset} samples must be n x {' x '.join(map(str, self.spec.shape))}, "
                             f"got {tuple(x.shape)}")
        fake = UInt8Dataset(to_uint8(x), rgb=self.ext.rgb)
        tmp = f"tmp-{uuid.uuid4().hex}"
        try:
            m = self._calculate(input1=fake, input1_cache_name=tmp, isc=True, fid=True, kid=True,
                                input2=_LazyDataset(self._load_real), input2_cache_name=self.real_name,
                                kid_subset_size=min(1000, self.n_samples, self._n_real),
                                kid_subsets=self.kid_subsets)
            logits = torch.load(self._feature_file(tmp, self.ext.layer_isc), map_location="cpu", weights_only=True)
        finally:
            for f in glob.glob(str(self.cache_root / f"{tmp}-*")):
                with contextlib.suppress(OSError):
                    os.remove(f)
        return {
            self.metric_is: float(m["inception_score_mean"]),
            self.metric_is + "_std": float(m["inception_score_std"]),
            self.metric_fid: float(m["frechet_inception_distance"]),
            self.metric_kid: float(m["kernel_inception_distance_mean"]),
            self.metric_kid + "_std": float(m["kernel_inception_distance_std"]),
            "classes_covered": self._covered(logits),
            "classes_covered_real": covered_real,
        }

    def collapsed(self, metrics: dict[str, float]) -> bool:
        """Collapsed when the generator's samples cover fewer than half the classes that real
        samples cover (a class counts when it gets >= 1/(4K) of the samples, by the
        extractor's argmax): the classifier's view of mode collapse, relative to real data
        so that an imperfect classifier does not count against the generator."""
        return metrics["classes_covered"] < 0.5 * metrics["classes_covered_real"]
