"""Conditional G(z, y) and D(x, y) around the unconditional builders (`conditional: true`).

- G, every family: y as a one-hot vector concatenated to z (Mirza & Osindero 2014, cGAN).
  The unconditional builder makes the net with a (z_dim + K)-wide input, so depth, width,
  norms and init are those of the architecture; conditional batch norm (Miyato & Koyama's
  G) is not implemented.
- D on the 2D mixtures (an MLP): y one-hot concatenated to x (Mirza & Osindero 2014).
- D on images (DCGAN and ResNet families, both nn.Sequential ending in Flatten + Linear):
  the projection discriminator (Miyato & Koyama 2018, eq. 3),
      D(x, y) = psi(phi(x)) + <embed(y), phi(x)>,
  phi = every layer but the last, psi = the last linear layer, embed a K x F embedding
  initialized Xavier-uniform as in the authors' code (chainer sngan_projection's GlorotUniform),
  under spectral norm when D has it (their SNEmbedID).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from ..space import Arch
from . import build_discriminator, build_generator


def one_hot(y: torch.Tensor, n_classes: int, like: torch.Tensor) -> torch.Tensor:
    """y as float one-hot rows in `like`'s dtype and device."""
    return F.one_hot(y, n_classes).to(dtype=like.dtype, device=like.device)


class ConcatGenerator(nn.Module):
    """G(z, y) = net([z, onehot(y)])."""

    def __init__(self, net: nn.Module, n_classes: int):
        super().__init__()
        self.net, self.n_classes = net, n_classes

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, one_hot(y, self.n_classes, z)], dim=1))


class ConcatDiscriminator(nn.Module):
    """D(x, y) = net([x, onehot(y)]) for flat (2D) inputs."""

    def __init__(self, net: nn.Module, n_classes: int):
        super().__init__()
        self.net, self.n_classes = net, n_classes

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, one_hot(y, self.n_classes, x)], dim=1))


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = head(phi(x)) + <embed(y), phi(x)> (Miyato & Koyama 2018)."""

    def __init__(self, net: nn.Sequential, n_classes: int, spectral: bool = False):
        super().__init__()
        *body, head = list(net)
        if not isinstance(head, nn.Linear) or head.out_features != 1:
            raise ValueError("the projection discriminator needs a D whose last layer is Linear(F, 1)")
        self.body, self.head = nn.Sequential(*body), head
        self.embed = nn.Embedding(n_classes, head.in_features, device=head.weight.device)
        if self.embed.weight.device.type != "meta":
            nn.init.xavier_uniform_(self.embed.weight)
        if spectral:
            self.embed = spectral_norm(self.embed)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        return self.head(h) + (self.embed(y).to(h.dtype) * h).sum(dim=1, keepdim=True)


def build_conditional_generator(arch: Arch, data_shape: tuple[int, ...], z_dim: int, n_classes: int,
                                init: str = "dcgan") -> nn.Module:
    return ConcatGenerator(build_generator(arch, data_shape, z_dim + n_classes, init=init), n_classes)


def build_conditional_discriminator(arch: Arch, data_shape: tuple[int, ...], n_classes: int, norm: str | None,
                                    spectral: bool = False, init: str = "dcgan") -> nn.Module:
    if len(data_shape) == 1:   # the 2D mixtures: an MLP, y concatenated to x
        net = build_discriminator(arch, (data_shape[0] + n_classes,), norm, spectral=spectral, init=init)
        return ConcatDiscriminator(net, n_classes)
    net = build_discriminator(arch, data_shape, norm, spectral=spectral, init=init)
    return ProjectionDiscriminator(net, n_classes, spectral=spectral)
