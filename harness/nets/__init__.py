"""Builders for G and D from an `Arch`, a data shape and the objective's D norm.

Images (C, 32, 32) use the architecture's family (dcgan, resnet, mlp); 2D data (2,)
always uses MLPs driven by the same factors.
"""
from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..space import Arch
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .init import initialize
from .mlp import MLPDiscriminator, MLPGenerator
from .resnet import ResNetDiscriminator, ResNetGenerator


def build_generator(arch: Arch, data_shape: tuple[int, ...], z_dim: int, init: str = "dcgan") -> nn.Module:
    norm = "batch" if arch.norm_g else None
    if len(data_shape) == 1 or arch.family_g == "mlp":
        net = MLPGenerator(z_dim, data_shape, arch.filters_g, arch.depth_g, arch.nonlin_g, norm)
    elif arch.family_g == "resnet":
        net = ResNetGenerator(z_dim, data_shape[0], arch.filters_g, arch.depth_g, arch.nonlin_g, norm)
    else:
        net = DCGANGenerator(z_dim, data_shape[0], arch.filters_g, arch.depth_g, arch.nonlin_g, norm,
                             constant_filters=arch.constant_filters_g)
    return initialize(net, init)


def build_discriminator(arch: Arch, data_shape: tuple[int, ...], norm: str | None,
                        spectral: bool = False, init: str = "dcgan") -> nn.Module:
    """`norm` is what "D normalization on" means for the objective (batch, layer, or none:
    SN-GAN's critic, whose spectral norm is its normalization)."""
    norm = norm if arch.norm_d and norm != "none" else None
    if len(data_shape) == 1:
        net = MLPDiscriminator(data_shape, arch.filters_d, arch.depth_d, arch.nonlin_d, norm)
    elif arch.family_d == "resnet":
        net = ResNetDiscriminator(data_shape[0], arch.filters_d, arch.depth_d, arch.nonlin_d, norm)
    else:
        net = DCGANDiscriminator(data_shape[0], arch.filters_d, arch.depth_d, arch.nonlin_d, norm)
    initialize(net, init)   # before spectral norm, which then reparametrizes the initialized weight
    if spectral:
        for module in list(net.modules()):
            if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                spectral_norm(module)
    return net


def count_weight_layers(net: nn.Module) -> int:
    return sum(isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)) for m in net.modules())
