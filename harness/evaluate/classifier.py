"""The shipped Fashion-MNIST classifier, registered as a torch-fidelity feature extractor.

Inception weights cannot be had everywhere and Inception was never meant for grayscale
clothes, so grayscale data is measured with a small domain CNN trained by the harness
itself (`python -m harness evaluator train fashion_mnist`). Its logits give IS and its
penultimate layer (128 units) FID/KID. The weights ship in the package so that every
user measures with the same network.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from harness.hints import harness_command

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
# torch-fidelity names cache files after the extractor; the version suffix keeps caches
# from an older network from being reused after the weights change.
FIDELITY_NAME = "harness-fmnist-classifier-v1"


def default_weights_path(dataset: str = "fashion_mnist") -> Path:
    return WEIGHTS_DIR / f"{dataset}_classifier.pt"


class SmallCNN(nn.Module):
    """3 conv blocks (16-32-64, BN, max-pool) -> 128-unit penultimate -> logits; ~156k params,
    small so that evaluating hundreds of trials stays cheap on CPU."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 16, penultimate: int = 128):
        super().__init__()

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                    nn.MaxPool2d(2)]

        self.features = nn.Sequential(*block(in_channels, width), *block(width, 2 * width),
                                      *block(2 * width, 4 * width), nn.Flatten())
        self.embed = nn.Sequential(nn.Dropout(0.3), nn.Linear(4 * width * 16, penultimate), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(penultimate, num_classes))

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: float in [-1, 1], B x C x 32 x 32 -> (penultimate, logits)."""
        h = self.embed(self.features(x))
        return h, self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[1]


def load_classifier(weights_path=None, dataset: str = "fashion_mnist", device="cpu") -> SmallCNN:
    path = Path(weights_path) if weights_path is not None else default_weights_path(dataset)
    if not path.exists():
        raise FileNotFoundError(
            f"classifier weights {path} not found; run `{harness_command('evaluator', 'train', dataset)}` "
            "or pass weights_path")
    net = SmallCNN()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.to(device).eval().requires_grad_(False)


class ClassifierFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity adapter: uint8 B x 1 x 32 x 32 in, ('penultimate', 'logits') out."""

    loads_weights_safely = True   # load_classifier reads with weights_only=True (fidelity.build_extractor)

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        self.net = load_classifier(feature_extractor_weights_path)

    @staticmethod
    def get_provided_features_list():
        return "penultimate", "logits"

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"isc": "logits", "fid": "penultimate", "kid": "penultimate", "prc": "penultimate"}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 1, 32, 32, dtype=torch.uint8)

    def forward(self, x):
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"expected uint8 B x 1 x H x W images, got {x.dtype} {tuple(x.shape)}")
        feats = dict(zip(("penultimate", "logits"), self.net.forward_features(x.float() / 127.5 - 1.0)))
        return tuple(feats[a] for a in self.features_list)


def ensure_registered() -> str:
    """Register once per process (torch-fidelity refuses a second registration of a name)."""
    if FIDELITY_NAME not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(FIDELITY_NAME, ClassifierFeatureExtractor)
    return FIDELITY_NAME
