"""ResNet G and D for 32x32 (the paper's 101-layer LSUN setting).

Depth counts weight layers: G is a linear layer, (depth - 2) // 2 residual blocks of
two 3x3 convolutions, and an output convolution; D is an input convolution, the blocks,
and a linear layer. Depth 101 thus gives 49 blocks and 100 weight layers. Width is the
base filter count throughout, so identity shortcuts suffice; resolution changes by
nearest upsampling (G) or average pooling (D) at the first block of each level.
"""
from __future__ import annotations

from torch import nn
from torch.nn import functional as F

from .blocks import channel_multiplier, deal_round_robin, nonlinearity, norm_layer
from .dcgan import Reshape


class ResBlock(nn.Module):
    """x + conv(act(norm(conv(x)))), resampling x first where the level changes."""

    def __init__(self, width, nonlin, norm, resample=None):
        super().__init__()
        m = channel_multiplier(nonlin)
        self.resample = resample
        self.body = nn.Sequential(
            nn.Conv2d(width, width * m, 3, padding=1), norm_layer(norm, width * m),
            nonlinearity(nonlin), nn.Conv2d(width, width, 3, padding=1),
        )

    def forward(self, x):
        if self.resample == "up":
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        elif self.resample == "down":
            x = F.avg_pool2d(x, 2)
        return x + self.body(x)


def _blocks(depth, width, nonlin, norm, resample):
    per_level = deal_round_robin(max((depth - 2) // 2, 3))
    blocks = []
    for level, count in enumerate(per_level):
        for i in range(max(count, 1)):
            blocks.append(ResBlock(width, nonlin, norm, resample if i == 0 and (level or resample == "down") else None))
    return blocks


class ResNetGenerator(nn.Sequential):
    def __init__(self, z_dim, channels, filters, depth, nonlin, norm):
        # 4x4 -> 8 -> 16 -> 32: the first block of levels 1, 2 and a final upsample.
        super().__init__(
            nn.Linear(z_dim, filters * 16), Reshape(filters, 4, 4),
            *_blocks(depth, filters, nonlin, norm, "up"),
            nn.Upsample(scale_factor=2), norm_layer(norm, filters), nn.ReLU(),
            nn.Conv2d(filters, channels, 3, padding=1), nn.Tanh(),
        )


class ResNetDiscriminator(nn.Sequential):
    def __init__(self, channels, filters, depth, nonlin, norm):
        # 32x32 -> 16 -> 8 -> 4: each level's first block pools.
        super().__init__(
            nn.Conv2d(channels, filters, 3, padding=1),
            *_blocks(depth, filters, nonlin, norm, "down"),
            nonlinearity(nonlin) if channel_multiplier(nonlin) == 1 else nn.ReLU(),
            nn.Flatten(), nn.Linear(filters * 16, 1),
        )
