"""DCGAN generator and discriminator for 32x32 images, at any depth of the space.

Depth counts weight layers; depth 4 is plain DCGAN. Extra depth is stride-1 3x3
convolutions dealt round-robin to the three resolutions (see harness/space.py).
"""
from __future__ import annotations

from torch import nn

from .blocks import channel_multiplier, deal_round_robin, nonlinearity, norm_layer


def _conv_unit(conv_cls, c_in, c_out, nonlin, norm, **kw):
    """conv -> norm -> nonlinearity, widening the conv for gated units."""
    m = channel_multiplier(nonlin)
    return [conv_cls(c_in, c_out * m, **kw), norm_layer(norm, c_out * m), nonlinearity(nonlin)]


class Reshape(nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.view(x.shape[0], *self.shape)


class DCGANGenerator(nn.Sequential):
    def __init__(self, z_dim, channels, filters, depth, nonlin, norm, constant_filters=False):
        widths = [filters] * 3 if constant_filters else [4 * filters, 2 * filters, filters]
        extras = deal_round_robin(depth - 4)  # lowest resolution first
        m = channel_multiplier(nonlin)
        layers = [nn.Linear(z_dim, widths[0] * m * 16), Reshape(widths[0] * m, 4, 4),
                  norm_layer(norm, widths[0] * m), nonlinearity(nonlin)]
        for level in range(3):
            for _ in range(extras[level]):
                layers += _conv_unit(nn.Conv2d, widths[level], widths[level], nonlin, norm,
                                     kernel_size=3, padding=1)
            if level < 2:
                layers += _conv_unit(nn.ConvTranspose2d, widths[level], widths[level + 1], nonlin,
                                     norm, kernel_size=4, stride=2, padding=1)
        layers += [nn.ConvTranspose2d(widths[2], channels, 4, 2, 1), nn.Tanh()]
        super().__init__(*layers)


class DCGANDiscriminator(nn.Sequential):
    def __init__(self, channels, filters, depth, nonlin, norm):
        widths = [filters, 2 * filters, 4 * filters]
        extras = deal_round_robin(depth - 4)  # highest resolution first
        # DCGAN: no normalization on the first layer.
        layers = _conv_unit(nn.Conv2d, channels, widths[0], nonlin, None,
                            kernel_size=4, stride=2, padding=1)
        for level in range(3):
            for _ in range(extras[level]):
                layers += _conv_unit(nn.Conv2d, widths[level], widths[level], nonlin, norm,
                                     kernel_size=3, padding=1)
            if level < 2:
                layers += _conv_unit(nn.Conv2d, widths[level], widths[level + 1], nonlin, norm,
                                     kernel_size=4, stride=2, padding=1)
        layers += [nn.Flatten(), nn.Linear(widths[2] * 16, 1)]
        super().__init__(*layers)
