"""Nonlinearities and normalizations, each chosen by name from a registry."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from ..errors import UnknownName


class ScaledSoftplus(nn.Module):
    """softplus(2x + 2) / 2 - 1: the smooth ReLU-like unit of WGAN-GP Table 1."""

    def forward(self, x):
        return F.softplus(2 * x + 2) / 2 - 1


class Gated(nn.Module):
    """tanh(a) * sigmoid(b) over the two halves of the channels (PixelCNN-style gating).

    The layer before it produces twice the channels; see `channel_multiplier`.
    """

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)


class Maxout(nn.Module):
    """The max over groups of `pieces` consecutive channels (Goodfellow et al. 2013).

    PacGAN's 2D discriminator uses maxout layers of 200 units x 5 pieces: the linear layer
    before it produces 1,000 features; see `channel_multiplier`.
    """

    pieces = 5

    def forward(self, x):
        return x.unflatten(1, (x.shape[1] // self.pieces, self.pieces)).amax(dim=2)


NONLINEARITIES = {
    "relu": lambda: nn.ReLU(),
    "lrelu": lambda: nn.LeakyReLU(0.2),
    "softplus": ScaledSoftplus,
    "tanh": lambda: nn.Tanh(),
    "gated": Gated,
    "maxout": Maxout,
}


def nonlinearity(name: str) -> nn.Module:
    if name not in NONLINEARITIES:
        raise UnknownName(f"unknown nonlinearity {name!r}; valid: {sorted(NONLINEARITIES)}")
    return NONLINEARITIES[name]()


def channel_multiplier(name: str) -> int:
    """How many times wider the preceding layer must be for this nonlinearity."""
    return {"gated": 2, "maxout": Maxout.pieces}.get(name, 1)


# Layer norm over (C, H, W) per sample is GroupNorm with one group: it keeps the
# gradient penalty per-sample, which batch norm would break (WGAN-GP section 4).
NORMS = {
    None: lambda c, spatial: nn.Identity(),
    "batch": lambda c, spatial: nn.BatchNorm2d(c) if spatial else nn.BatchNorm1d(c),
    "layer": lambda c, spatial: nn.GroupNorm(1, c) if spatial else nn.LayerNorm(c),
}


def norm_layer(kind: str | None, channels: int, spatial: bool = True) -> nn.Module:
    if kind not in NORMS:
        raise UnknownName(f"unknown norm {kind!r}; valid: {[k for k in NORMS if k]} or none")
    return NORMS[kind](channels, spatial)


def deal_round_robin(extra: int, slots: int = 3) -> list[int]:
    """Split `extra` layers over `slots` resolutions, the first slot getting any excess."""
    return [(extra + slots - 1 - i) // slots for i in range(slots)]
