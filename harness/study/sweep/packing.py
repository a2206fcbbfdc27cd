"""How many trials fit on one GPU together: a memory estimate per trial.

Ray packs fractional GPU requests without looking at memory, so a trial whose nets
would not fit beside `trials_per_gpu - 1` others asks for a larger share instead. The
estimate is deliberately conservative (fp32 activations even where bf16 is used):

  bytes = 16 x parameters (weights, grads, two Adam moments)
        + batch x 4 bytes x (G activations + 3 x D activations: real, fake, and the
          gradient penalty's interpolates whose double backward keeps another copy)
        + the resident uint8 dataset (trial.dataset_bytes: 3.9 GB for imagenet32)
        + a CUDA context.

Activation sizes come from one batch-1 forward pass on the CPU with hooks counting every
module's output, so they follow any architecture the builders make.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ...device import CUDA_CONTEXT_BYTES, USABLE_SHARE  # noqa: F401 (defined with the device)
from ...nets import build_discriminator, build_generator
from ...space import Arch


def _activation_elements(net: nn.Module, x: torch.Tensor) -> int:
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if not list(module.children()) and isinstance(output, torch.Tensor):
            total += output[0].numel()

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    try:
        with torch.no_grad():
            net.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return total


def estimate_trial_bytes(arch: Arch, data_shape: tuple[int, ...], batch_size: int, z_dim: int = 128,
                         d_norm: str | None = "batch", dataset_bytes: int = 0) -> int:
    G = build_generator(arch, data_shape, z_dim)
    D = build_discriminator(arch, data_shape, d_norm)
    params = sum(p.numel() for net in (G, D) for p in net.parameters())
    act_g = _activation_elements(G, torch.zeros(1, z_dim))
    act_d = _activation_elements(D, torch.zeros(1, *data_shape))
    return 16 * params + 4 * batch_size * (act_g + 3 * act_d) + dataset_bytes + CUDA_CONTEXT_BYTES


def gpu_share(trial_bytes: int, gpu_bytes: int, trials_per_gpu: int) -> float:
    """1 / trials_per_gpu, or the smallest 1/k (k whole) that leaves room for this trial."""
    fits = max(1, math.floor(USABLE_SHARE * gpu_bytes / trial_bytes))
    return 1.0 / min(trials_per_gpu, fits)
