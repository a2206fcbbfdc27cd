"""Weight initialization schemes, by name.

`dcgan` (the default): every convolution, transposed convolution and linear weight from
N(0, 0.02), biases 0; batch-norm scale from N(1, 0.02), shift 0 (Radford et al. 2016,
section 4; the WGAN and WGAN-GP reference code). `pytorch` keeps PyTorch's own defaults
(Kaiming-uniform), which differ and change results.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import UnknownName

WEIGHT_STD = 0.02
WEIGHT_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


@torch.no_grad()
def dcgan_init(net: nn.Module) -> None:
    for m in net.modules():
        if isinstance(m, WEIGHT_LAYERS):
            nn.init.normal_(m.weight, 0.0, WEIGHT_STD)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, BATCH_NORMS) and m.affine:
            nn.init.normal_(m.weight, 1.0, WEIGHT_STD)
            nn.init.zeros_(m.bias)


INITS = {"dcgan": dcgan_init, "pytorch": lambda net: None}


def initialize(net: nn.Module, scheme: str) -> nn.Module:
    if scheme not in INITS:
        raise UnknownName(f"unknown init {scheme!r}; valid: {sorted(INITS)}")
    INITS[scheme](net)
    return net
