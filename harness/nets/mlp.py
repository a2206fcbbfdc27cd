"""MLP generator and discriminator: the 2D mixtures and the paper's MLP-generator preset.

Depth counts linear layers; width is 4 x base filters (32, 64, 128 -> 128, 256, 512), so
depth 4 at 128 filters is the 3-hidden-layer 512-unit MLP of the WGAN-GP toy experiments.
"""
from __future__ import annotations

import math

from torch import nn

from .blocks import channel_multiplier, nonlinearity, norm_layer
from .dcgan import Reshape


def _mlp(n_in, n_out, width, depth, nonlin, norm, first_norm=True):
    m = channel_multiplier(nonlin)
    layers, d_in = [], n_in
    for i in range(depth - 1):
        layers += [nn.Linear(d_in, width * m),
                   norm_layer(norm if (i or first_norm) else None, width * m, spatial=False),
                   nonlinearity(nonlin)]
        d_in = width
    layers.append(nn.Linear(d_in, n_out))
    return layers


class MLPGenerator(nn.Sequential):
    def __init__(self, z_dim, out_shape, filters, depth, nonlin, norm):
        n_out = math.prod(out_shape)
        tail = [nn.Tanh(), Reshape(*out_shape)] if len(out_shape) == 3 else []
        super().__init__(*_mlp(z_dim, n_out, 4 * filters, depth, nonlin, norm), *tail)


class MLPDiscriminator(nn.Sequential):
    def __init__(self, in_shape, filters, depth, nonlin, norm):
        head = [nn.Flatten()] if len(in_shape) == 3 else []
        super().__init__(*head, *_mlp(math.prod(in_shape), 1, 4 * filters, depth, nonlin, norm,
                                      first_norm=False))
