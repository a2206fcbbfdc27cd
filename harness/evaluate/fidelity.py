"""IS, FID and KID with torch-fidelity's metric functions, on features this module extracts and caches.

Why not `torch_fidelity.calculate_metrics` with its cache (issue 23): torch-fidelity 0.4.0 reads
its cache files and an extractor's weights file with `torch.load(weights_only=False)`, i.e. it
unpickles them, and both are files someone else can write: the real-feature cache is shared by
every trial and user of a cache folder, the weights path is an experiment setting. A crafted file
in either place would run its code in the next trial. So nothing here hands torch-fidelity a file:

- weights are read by `load_weights` with `torch.load(weights_only=True)` (tensors, numbers,
  strings and containers only) and given to the extractor as a state dict (`build_extractor`);
- real features are cached as .npz, read with `allow_pickle=False` (arrays only, no code), beside
  a sha256 sidecar written with them and checked before use: a missing, stale or corrupt entry
  is recomputed, never trusted;
- generated features never touch the disk;
- the figures come from torch-fidelity's own isc/fid/kid functions with its default settings, so
  they equal what `calculate_metrics` gave.

Real features are extracted once per (dataset, split, extractor, weights, n) under a file lock, so
a hundred trials starting together compute them once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from filelock import FileLock
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_featuresdict_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
from torch_fidelity.utils import get_featuresdict_from_dataset

from harness.data import get_dataset_spec, load_images, real_subset, to_uint8
from harness.errors import EvaluatorUnavailable
from harness.evaluate.base import Evaluator, SampleFn, count_tag, default_cache_dir, draw_samples
from harness.evaluate.metrics import HIGHER, LOWER, register_metric
from harness.evaluate.prdc import NAMES as PRDC_NAMES
from harness.evaluate.prdc import prdc

MIN_SAMPLES = 50  # IS uses 10 splits and KID needs subsets of >= 2
# KID averages an unbiased MMD estimate over random subsets of min(1000, n) samples.
# Binkowski et al. and torch-fidelity use 100 subsets; the mean estimates the same
# quantity with any count, only its spread (the _std) changes. 100 subsets cost ~10 s of
# CPU per evaluation (300 1000x1000 kernel matrices in numpy), more than the classifier
# itself, so the harness uses 20 unless asked otherwise.
KID_SUBSETS = 20

# The names FidelityEvaluator builds (`{n}`: its sample count, `{split}`: the real split,
# `{extractor}`: Extractor.short), declared for the report (evaluate/metrics.py). FID and KID read
# about 0 on the real data itself (the same samples the real side is), so thresholds relative to
# it mean nothing: relative=False (a LOWER direction's default).
INF = float("inf")
register_metric("is{n}_{extractor}", direction=HIGHER, range=(1, "n_classes"), group="score", summary=True, order=30,
                description="Inception score (Salimans 2016) of the extractor's class probabilities, 10 splits")
register_metric("is{n}_{extractor}_std", direction=None, range=(0, INF), group="spread", order=31,
                description="standard deviation of the Inception score over its 10 splits")
register_metric("fid{n}_{split}_{extractor}", direction=LOWER, range=(0, INF), group="divergence", summary=True,
                order=32, description="Frechet distance between generated and real features (Heusel 2017)")
register_metric("kid{n}_{split}_{extractor}", direction=LOWER, range=(-INF, INF), group="divergence", summary=True,
                ideal=0.0, order=33, description="kernel inception distance (Binkowski 2018), unbiased: may dip below 0")
register_metric("kid{n}_{split}_{extractor}_std", direction=None, range=(0, INF), group="spread", order=34,
                description="standard deviation of KID over its subsets")
register_metric("classes_covered", direction=HIGHER, range=(0, "n_classes"), group="diversity", order=35,
                description="classes given >= 1/(4K) of the samples by the extractor's argmax")
register_metric("classes_covered_real", direction=None, range=(0, "n_classes"), group="setting", order=36,
                description="classes_covered of the real samples: the generator's reference")
# precision / recall / density / coverage in the FID feature space (evaluate/prdc.py)
register_metric("precision{n}_{split}_{extractor}", direction=HIGHER, range=(0, 1), group="quality", family="prdc",
                order=40, description="share of generated features inside the real k-NN manifold (Kynkaanniemi 2019)")
register_metric("recall{n}_{split}_{extractor}", direction=HIGHER, range=(0, 1), group="diversity", family="prdc",
                order=41, description="share of real features inside the generated k-NN manifold (Kynkaanniemi 2019)")
register_metric("density{n}_{split}_{extractor}", direction=HIGHER, range=(0, INF), group="quality", family="prdc",
                ideal=1.0, order=42, description="real k-NN balls holding each generated feature, / k: about 1 "
                                                  "when G matches (Naeem 2020)")
register_metric("coverage{n}_{split}_{extractor}", direction=HIGHER, range=(0, 1), group="diversity", family="prdc",
                order=43, description="share of real features whose k-NN ball holds a generated one (Naeem 2020)")


def _weights_tag(weights_path) -> str:
    """Part of the real-feature cache key, so features from other weights are never reused."""
    if weights_path is None:
        return "default"
    p = Path(weights_path)
    if p.stat().st_size > 16 * 2**20:  # Inception: its file name already carries a hash
        return hashlib.sha1(p.name.encode()).hexdigest()[:8]
    return hashlib.sha1(p.read_bytes()).hexdigest()[:8]


def load_weights(path) -> dict[str, torch.Tensor]:
    """A feature extractor's state dict, read without unpickling code (torch.load weights_only=True).

    A file that is not a plain state dict of tensors (a pickled module, or a crafted pickle whose
    __reduce__ would run a command) is refused with an error naming the file, before any of it runs."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - UnpicklingError, RuntimeError, EOFError...: all say "not weights"
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise EvaluatorUnavailable(
            f"weights file {path} is not a plain state dict of tensors: torch.load(weights_only=True) refused it "
            f"({type(err).__name__}: {reason}); the harness never unpickles code from a weights file, so point "
            "weights_path at the network's published weights (a state dict)") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise EvaluatorUnavailable(f"weights file {path} holds a {type(state).__name__}, not a state dict of tensors")
    return state


_INCEPTION_LOCK = threading.Lock()


def _inception_from_state_dict(cls, name: str, layers, state_dict: dict) -> FeatureExtractorInceptionV3:
    """torch-fidelity's InceptionV3 built around a state dict that load_weights has already read.

    Its constructor takes either a path, which it would read with torch.load(weights_only=False),
    or None, which it resolves by calling its module's `load_state_dict_from_url`. We pass None and
    answer that call with the state dict, for the constructor's duration only (under a lock, as
    the patched name is module-wide); mock.patch.object fails loudly should a torch-fidelity
    release rename the hook, rather than fall back to the unsafe read."""
    import torch_fidelity.feature_extractor_inceptionv3 as inception_module

    def from_memory(*_args, **_kwargs):
        return state_dict

    with _INCEPTION_LOCK, mock.patch.object(inception_module, "load_state_dict_from_url", from_memory):
        return cls(name, list(layers), feature_extractor_weights_path=None)


def build_extractor(fidelity_name: str, layers, weights_path) -> torch.nn.Module:
    """A registered torch-fidelity feature extractor whose weights are read safely.

    Inception (torch-fidelity's own class, whose loader unpickles) gets its weights through
    load_weights; an extractor class that marks itself `loads_weights_safely` (the harness's
    classifier, which reads with weights_only=True) is built as torch-fidelity would build it.
    Any other class is refused: its loading has not been checked."""
    cls = FEATURE_EXTRACTORS_REGISTRY[fidelity_name]
    if issubclass(cls, FeatureExtractorInceptionV3):
        if weights_path is None:
            raise EvaluatorUnavailable(f"{fidelity_name}: no weights file given")
        return _inception_from_state_dict(cls, fidelity_name, layers, load_weights(weights_path))
    if getattr(cls, "loads_weights_safely", False):
        return cls(fidelity_name, list(layers), feature_extractor_weights_path=weights_path)
    raise EvaluatorUnavailable(f"feature extractor {fidelity_name!r}: its weights loading has not been "
                               "checked for unpickling (see harness/evaluate/fidelity.py)")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def read_verified_npz(path: Path) -> tuple[dict[str, np.ndarray] | None, str]:
    """(arrays, "") when `path` matches the sha256 in its sidecar and holds arrays only; else
    (None, why). np.load with allow_pickle=False cannot run code whatever the file holds; the hash
    catches a truncated, corrupted or swapped entry in a cache others can write to."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, "missing"
    except OSError as err:
        return None, f"unreadable ({err})"
    try:
        want = _sidecar(path).read_text().split()[0]
    except (OSError, IndexError):
        return None, f"{_sidecar(path).name} missing or empty"
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        return None, f"its sha256 {got[:12]}... does not match {_sidecar(path).name} ({want[:12]}...)"
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}, ""
    except Exception as err:  # noqa: BLE001 - not an npz, or object arrays: both mean "not ours"
        return None, f"not a plain .npz ({type(err).__name__}: {err})"


def write_verified_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write `arrays` as .npz and its sha256 sidecar, each by an atomic rename; a reader that sees
    the new file before the new sidecar finds a mismatch and recomputes (under the same lock)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    for target, content in ((path, data), (_sidecar(path), f"{hashlib.sha256(data).hexdigest()}  {path.name}\n"
                                                           .encode())):
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_bytes(content)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


class UInt8Dataset(Dataset):
    """uint8 N x C x H x W tensor as a torch-fidelity input; gray is repeated to RGB on demand."""

    def __init__(self, x: torch.Tensor, rgb: bool = False):
        self.x, self.rgb = x, rgb

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        x = self.x[i]
        return x.expand(3, -1, -1) if self.rgb and x.shape[0] == 1 else x


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
        # precision / recall / density / coverage in the FID feature space (evaluate/prdc.py)
        self.metric_prdc = {m: f"{m}{tag}_{real_split}_{extractor.short}" for m in PRDC_NAMES}
        self.metric_names = (self.metric_is, self.metric_is + "_std", self.metric_fid, self.metric_kid,
                             self.metric_kid + "_std", "classes_covered", "classes_covered_real",
                             *self.metric_prdc.values())
        source = f"-{hashlib.sha1(str(Path(data_path).resolve()).encode()).hexdigest()[:8]}" if data_path else ""
        self.real_name = f"harness-{dataset}{source}-{real_split}-n{n_samples}-w{_weights_tag(weights_path)}"
        self._real_covered: float | None = None
        self._net: torch.nn.Module | None = None

    # ------------------------------------------------------------------ features

    def _extractor(self) -> torch.nn.Module:
        """Built once per evaluator (not once per evaluation, as calculate_metrics did)."""
        if self._net is None:
            layers = list(dict.fromkeys((self.ext.layer_isc, self.ext.layer_fid)))
            net = build_extractor(self.ext.fidelity_name, layers, self.weights_path)
            self._net = net.requires_grad_(False).eval().to(self.device)
        return self._net

    def _features(self, ds: Dataset) -> dict[str, torch.Tensor]:
        cuda = self.device.type == "cuda"
        ctx = torch.cuda.device(self.device) if cuda and self.device.index is not None else contextlib.nullcontext()
        with ctx:
            return get_featuresdict_from_dataset(ds, self._extractor(), self.ext.batch_size, cuda,
                                                 save_cpu_ram=True, verbose=False)

    # ------------------------------------------------------------------ real side

    def _load_real(self) -> UInt8Dataset:
        x, _ = load_images(self.dataset, self.real_split, root=self.data_root, path=self.data_path)
        return UInt8Dataset(real_subset(x, self.n_samples), rgb=self.ext.rgb)

    @property
    def cache_file(self) -> Path:
        return self.cache_root / f"{self.real_name}-{self.ext.fidelity_name}.npz"

    def _read_cache(self) -> tuple[dict[str, np.ndarray] | None, str]:
        arrays, why = read_verified_npz(self.cache_file)
        if arrays is not None and not {"isc", "fid", "fid_mu", "fid_sigma"} <= set(arrays):
            return None, f"keys {sorted(arrays)} are not this evaluator's"
        return arrays, why

    def _real_features(self) -> dict[str, np.ndarray]:
        """The real side, {isc, fid: features; fid_mu, fid_sigma: FID statistics}: from the cache when
        its hash checks out, else extracted (once across processes) and cached."""
        arrays, why = self._read_cache()
        if arrays is not None:
            return arrays
        self.cache_root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.cache_root / f"{self.real_name}-{self.ext.fidelity_name}.lock")):
            arrays, why = self._read_cache()   # another process may have written it meanwhile
            if arrays is not None:
                return arrays
            if why != "missing":
                warnings.warn(f"real-feature cache {self.cache_file} not used: {why}; recomputing it", stacklevel=2)
            real = self._load_real()
            if len(real) < MIN_SAMPLES:
                raise ValueError(f"{self.dataset}/{self.real_split} has only {len(real)} images")
            feats = self._features(real)
            stats = fid_features_to_statistics(feats[self.ext.layer_fid])
            arrays = {"isc": feats[self.ext.layer_isc].numpy(), "fid": feats[self.ext.layer_fid].numpy(),
                      "fid_mu": stats["mu"], "fid_sigma": stats["sigma"]}
            write_verified_npz(self.cache_file, arrays)
            return arrays

    def prepare(self) -> None:
        """Extract and cache the real features (once across processes)."""
        self._real_features()

    def _covered(self, logits: torch.Tensor) -> float:
        counts = torch.bincount(logits[:, : self.ext.n_classes].argmax(1), minlength=self.ext.n_classes)
        return float((counts >= len(logits) / (4 * self.ext.n_classes)).sum().item())

    def real_classes_covered(self) -> float:
        if self._real_covered is None:
            self._real_covered = self._covered(torch.from_numpy(self._real_features()["isc"]))
        return self._real_covered

    # ------------------------------------------------------------------ generated side

    def evaluate(self, sample_fn: SampleFn) -> dict[str, float]:
        real = self._real_features()
        if self._real_covered is None:
            self._real_covered = self._covered(torch.from_numpy(real["isc"]))
        x = draw_samples(sample_fn, self.n_samples)
        if tuple(x.shape[1:]) != self.spec.shape:
            raise ValueError(f"{self.dataset} samples must be n x {' x '.join(map(str, self.spec.shape))}, "
                             f"got {tuple(x.shape)}")
        fake = self._features(UInt8Dataset(to_uint8(x), rgb=self.ext.rgb))
        real_fid = torch.from_numpy(real["fid"])
        # torch-fidelity's functions with its defaults for everything not set here (IS splits,
        # shuffling, rng seed, KID kernel): the figures calculate_metrics gave
        isc = isc_featuresdict_to_metric(fake, self.ext.layer_isc, verbose=False)
        fid = fid_statistics_to_metric(fid_features_to_statistics(fake[self.ext.layer_fid]),
                                       {"mu": real["fid_mu"], "sigma": real["fid_sigma"]}, verbose=False)
        kid = kid_features_to_metric(fake[self.ext.layer_fid], real_fid, verbose=False,
                                     kid_subsets=self.kid_subsets,
                                     kid_subset_size=min(1000, self.n_samples, len(real_fid)))
        return {
            self.metric_is: float(isc["inception_score_mean"]),
            self.metric_is + "_std": float(isc["inception_score_std"]),
            self.metric_fid: float(fid["frechet_inception_distance"]),
            self.metric_kid: float(kid["kernel_inception_distance_mean"]),
            self.metric_kid + "_std": float(kid["kernel_inception_distance_std"]),
            "classes_covered": self._covered(fake[self.ext.layer_isc]),
            "classes_covered_real": self._real_covered,
            **{self.metric_prdc[k]: v for k, v in prdc(real_fid, fake[self.ext.layer_fid].float()).items()},
        }

    def collapsed(self, metrics: dict[str, float]) -> bool:
        """Collapsed when the generator's samples cover fewer than half the classes that real
        samples cover (a class counts when it gets >= 1/(4K) of the samples, by the
        extractor's argmax): the classifier's view of mode collapse, relative to real data
        so that an imperfect classifier does not count against the generator."""
        return metrics["classes_covered"] < 0.5 * metrics["classes_covered_real"]
