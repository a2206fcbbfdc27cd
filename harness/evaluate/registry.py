"""Evaluators by name, one constructor signature for all (as stylegan2-ada's metric_main).

Each evaluator is a constructor `build(EvaluatorOptions) -> Evaluator` registered under its
name with `register_evaluator`; the built-ins below and a plugin's (docs/extending.md) alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.data import get_dataset_spec
from harness.evaluate.base import CLASSIFIER_DATASETS, Evaluator
from harness.errors import EvaluatorUnavailable, UnknownName
from harness.registry import claim

# torch-fidelity's release asset; load_state_dict_from_url looks in torch.hub's cache first
INCEPTION_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                 "weights-inception-2015-12-05-6726825d.pth")


class UnknownEvaluator(UnknownName, ValueError):
    """An unknown evaluator name; the message lists the valid ones."""


def default_evaluator_for(dataset: str) -> str:
    """What `eval.evaluator: auto` means, decided here only: toy2d for the mixtures, the shipped
    classifier for the dataset it was trained on (Fashion-MNIST), Inception for every other
    image dataset (MNIST included: a Fashion-MNIST classifier would not measure digits)."""
    spec = get_dataset_spec(dataset)
    if spec.kind == "toy2d":
        return "toy2d"
    return "fmnist-classifier" if dataset in CLASSIFIER_DATASETS else "inception"


def resolve_evaluator(evaluator: str, dataset: str) -> str:
    """An experiment's eval.evaluator with `auto` resolved (validation, the trial and the dry run read this)."""
    return default_evaluator_for(dataset) if evaluator == "auto" else evaluator


@dataclass(frozen=True)
class EvaluatorOptions:
    """What every evaluator's constructor gets: one signature for all, built-in or a plugin's."""
    dataset: str
    n_samples: int
    real_split: str = "train"        # the real samples' split (train | test)
    device: str = "cpu"
    weights_path: str | None = None  # the feature network's weights, where the evaluator has one
    cache_dir: str | None = None     # where cached real features go (default evaluate.base.default_cache_dir)
    data_root: str | None = None     # data.root / data.path: for data.load_images
    data_path: str | None = None
    kid_subsets: int | None = None   # None: fidelity.KID_SUBSETS


@dataclass(frozen=True)
class EvaluatorEntry:
    name: str
    build: Callable[[EvaluatorOptions], Evaluator]
    description: str                 # one line for `python -m harness list evaluators`

    @property
    def definition(self):
        """The constructor (registry.claim tells two definitions apart by it)."""
        return self.build


EVALUATORS: dict[str, EvaluatorEntry] = {}


def register_evaluator(name: str, description: str):
    """Decorator: `build(options: EvaluatorOptions) -> Evaluator` becomes evaluator `name`
    (`eval.evaluator: NAME`, `list evaluators`). Built-ins and plugins register alike; a name
    another constructor holds is refused. The evaluator's `name` is set to `name`. A
    ValueError from `build` is the experiment's problem (a dataset it cannot measure, too few
    samples): the CLI names eval.evaluator or eval.n_samples."""
    if name == "auto":
        raise ValueError("evaluator name 'auto' is taken: it means evaluate.registry.default_evaluator_for")

    def decorate(build: Callable[[EvaluatorOptions], Evaluator]):
        claim(EVALUATORS, name, EvaluatorEntry(name, build, description), "evaluator")
        return build
    return decorate


def make_evaluator(name: str, dataset: str, n_samples: int, real_split: str = "train", device="cpu",
                   weights_path=None, cache_dir=None, data_root=None, data_path=None,
                   kid_subsets: int | None = None, conditional: bool = False) -> Evaluator:
    """Build an evaluator; data_root/data_path are passed to data.load_images for the real images;
    kid_subsets=None keeps fidelity.KID_SUBSETS; conditional adds the label metrics
    (evaluate.conditional) and asks G for labels."""
    if name not in EVALUATORS:
        raise UnknownEvaluator(f"unknown evaluator {name!r}; valid names: {', '.join(EVALUATORS)}")
    options = EvaluatorOptions(dataset, n_samples, real_split, str(device), weights_path, cache_dir, data_root,
                               data_path, kid_subsets)
    evaluator = EVALUATORS[name].build(options)
    if not isinstance(evaluator, Evaluator):
        raise TypeError(f"evaluator {name!r}: its constructor returned {type(evaluator).__name__}, not an "
                        "harness.evaluate.base.Evaluator")
    evaluator.name = name
    if not conditional:
        return evaluator
    from harness.evaluate.conditional import ConditionalEvaluator
    return ConditionalEvaluator(evaluator, get_dataset_spec(dataset).num_classes)


@register_evaluator("inception", "IS/FID/KID with torch-fidelity's inception-v3-compat (RGB; gray is repeated); "
                                 "offline needs weights_path")
def _inception(o: EvaluatorOptions) -> Evaluator:
    from harness.evaluate.fidelity import KID_SUBSETS, Extractor, FidelityEvaluator
    weights = _inception_weights(o.weights_path)
    ext = Extractor("inception", "inception-v3-compat", "logits_unbiased", "2048",
                    n_classes=1000,  # 1008 outputs, the last 8 unused by ImageNet
                    rgb=True, batch_size=64)
    return FidelityEvaluator("inception", ext, o.dataset, o.n_samples, o.real_split, o.device, weights, o.cache_dir,
                             o.data_root, o.data_path, o.kid_subsets or KID_SUBSETS)


@register_evaluator("fmnist-classifier", "IS/FID/KID with the shipped Fashion-MNIST CNN (logits for IS, 128-d "
                                         "penultimate for FID/KID), plus class coverage")
def _fmnist_classifier(o: EvaluatorOptions) -> Evaluator:
    from harness.evaluate.classifier import default_weights_path, ensure_registered
    from harness.evaluate.fidelity import KID_SUBSETS, Extractor, FidelityEvaluator, load_weights
    if o.dataset not in CLASSIFIER_DATASETS:
        raise ValueError(f"evaluator 'fmnist-classifier' measures {', '.join(CLASSIFIER_DATASETS)}, "
                         f"not {o.dataset!r}; use {default_evaluator_for(o.dataset)!r}")
    weights = Path(o.weights_path) if o.weights_path is not None else default_weights_path(o.dataset)
    if not weights.exists():
        raise EvaluatorUnavailable(f"classifier weights {weights} not found; run "
                                   f"`python -m harness evaluator train {o.dataset}` or set weights_path")
    load_weights(weights)   # a file that is not a plain state dict fails here, before training
    ext = Extractor("fmnistclf", ensure_registered(), "logits", "penultimate", n_classes=10, rgb=False,
                    batch_size=500)
    return FidelityEvaluator("fmnist-classifier", ext, o.dataset, o.n_samples, o.real_split, o.device, weights,
                             o.cache_dir, o.data_root, o.data_path, o.kid_subsets or KID_SUBSETS)


@register_evaluator("toy2d", "exact 2D-mixture metrics (VEEGAN/PacGAN): modes covered, high-quality share, "
                             "reverse KL")
def _toy2d(o: EvaluatorOptions) -> Evaluator:
    from harness.evaluate.toy2d import Toy2DEvaluator
    return Toy2DEvaluator(o.dataset, o.n_samples)


def _inception_weights(weights_path) -> Path:
    """Resolve a local copy of the Inception weights now, so a missing or unsafe file fails before training."""
    import torch

    from harness.evaluate.fidelity import load_weights

    fix = (f"set the evaluator's weights_path to a local copy of {INCEPTION_URL.rsplit('/', 1)[1]} "
           f"(download it from {INCEPTION_URL} on a machine with internet access), or use "
           "evaluator 'fmnist-classifier' for Fashion-MNIST")
    if weights_path is not None:
        p = Path(weights_path).expanduser()
        if not p.is_file():
            raise EvaluatorUnavailable(f"Inception weights_path {p} is not a file; {fix}")
        try:
            load_weights(p)   # weights_only=True: a crafted pickle is refused here, before training
        except EvaluatorUnavailable as err:
            raise EvaluatorUnavailable(f"Inception weights_path: {err}; {fix}") from None
        return p
    try:   # weights_only: the hub's cached copy is a file on disk like any other
        torch.hub.load_state_dict_from_url(INCEPTION_URL, map_location="cpu", progress=False, weights_only=True)
    except Exception as e:
        raise EvaluatorUnavailable(f"cannot get torch-fidelity's Inception weights ({type(e).__name__}: {e}); "
                                   f"{fix}") from e
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_URL.rsplit("/", 1)[1]
