"""Wasserstein GANs: Lipschitz by weight clipping (WGAN) or by gradient penalty (WGAN-GP)."""
from __future__ import annotations

import torch

from ..penalties import GradientPenalty, gradient_penalty  # noqa: F401 - gradient_penalty: its old home
from .base import Objective, Settings, register


class _Wasserstein(Objective):
    def d_loss(self, d_real, d_fake):
        return d_fake.mean() - d_real.mean()

    def g_loss(self, d_fake):
        return -d_fake.mean()

    def diagnostics(self, d_real, d_fake):
        """The critic's estimate of W1 (Kantorovich-Rubinstein: exact for the best 1-Lipschitz
        critic; with clipping, up to the Lipschitz constant the clip implies)."""
        return {"w1_estimate": d_real.mean() - d_fake.mean()}


@register
class WGANClip(_Wasserstein):
    # Arjovsky et al. 2017, Algorithm 1: RMSProp lr 5e-5, c = 0.01, n_critic = 5.
    name = "wgan-clip"
    reads = frozenset({"clip"})
    defaults = Settings(optimizer="rmsprop", lr_g=5e-5, lr_d=5e-5, n_critic=5, d_norm="batch",
                        clip=0.01)

    @torch.no_grad()
    def after_d_step(self, D):
        for p in D.parameters():
            p.clamp_(-self.settings.clip, self.settings.clip)


@register
class WGANGP(_Wasserstein):
    # Gulrajani et al. 2017, Algorithm 1: lambda 10, n_critic 5, Adam 1e-4, betas (0, 0.9).
    # Layer norm in D (batch norm would make the penalty depend on the batch, section 4);
    # appendix B: weight decay 1e-3 on D when it is normalised (the Settings default).
    # The published combination of the Wasserstein loss with harness.penalties' `gp`: the same
    # penalty `+gp:W` adds to any objective, its weight this family's setting gp_weight.
    name = "wgan-gp"
    reads = frozenset({"gp_weight"})
    defaults = Settings(optimizer="adam", lr_g=1e-4, lr_d=1e-4, beta1=0.0, beta2=0.9,
                        n_critic=5, d_norm="layer", gp_weight=10.0)

    def builtin_penalties(self):
        return [GradientPenalty(self.settings.gp_weight)] if self.settings.gp_weight else []
