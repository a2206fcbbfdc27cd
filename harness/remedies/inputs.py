"""Remedies that change what D sees: packing (PacGAN) and instance noise."""
from __future__ import annotations

import torch

from .base import Remedy, register


@register
class Pack(Remedy):
    """D judges M samples at once, concatenated along channels (images) or features (2D):
    real with real, fake with fake, so a collapsed G's packs look alike (Lin et al. 2018).
    As in PacGAN's code, the batch counts D's inputs: a batch of B is B packs, made of
    M x B real samples and M x B generated ones (G makes M x B samples per step)."""

    name = "pack"
    d_judges_one_sample = False
    summary = "D judges M samples at once, real with real, fake with fake"
    arg_name, arg_type, default = "M, samples per packed input", int, 2
    source = "Lin et al. 2018, PacGAN"
    conditional_problem = "a pack would mix samples of different labels under one D(x, y)"

    @property
    def samples_per_input(self):
        return self.arg

    def validate(self):
        if self.arg < 2:
            raise ValueError(f"pack: M must be >= 2, got {self.arg}")

    def d_shape(self, shape):
        return (shape[0] * self.arg, *shape[1:])

    def d_input(self, x, progress):
        b = x.shape[0] // self.arg
        # (B, C, ...) -> (B/M, M, C, ...) -> (B/M, M*C, ...): sample k of a pack is channels k*C..(k+1)*C-1
        return x[: b * self.arg].reshape(b, self.arg * x.shape[1], *x.shape[2:])


@register
class InstanceNoise(Remedy):
    """Gaussian noise on every D input, real and fake, its std annealed linearly from SIGMA to
    0 over the budget (Sonderby et al. 2016): the two distributions overlap early on."""

    name = "instance-noise"
    d_judges_one_sample = False     # D's optimum is for the noise-blurred distributions
    summary = "Gaussian noise on D's inputs, annealed linearly to zero over the budget"
    arg_name, arg_type, default = "SIGMA, the initial noise std (data in [-1, 1])", float, 0.1
    source = "Sonderby et al. 2016, Amortised MAP inference for image super-resolution, sec. 3.2"
    conditional_ok = True           # noise on x; the label is untouched

    def validate(self):
        if not 0 < self.arg < float("inf"):
            raise ValueError(f"instance-noise: SIGMA must be > 0, got {self.arg}")

    def d_input(self, x, progress):
        sigma = self.arg * max(0.0, 1.0 - progress)
        return x + sigma * torch.randn_like(x) if sigma > 0 else x
