"""SN-GAN (Miyato et al. 2018): hinge loss with spectral norm on every D layer."""
from __future__ import annotations

from torch.nn import functional as F

from .base import Objective, Settings, register


@register
class SNGAN(Objective):
    # Miyato et al. 2018, Table 1 setting C: Adam 2e-4, betas (0.5, 0.999), n_dis 1.
    # Section 4 / Table 2: the hinge loss gives their best CIFAR-10 scores.
    # No norm layers in D: spectral norm is its normalization (their D has no batch norm);
    # affine batch norm between spectrally normalized layers breaks the Lipschitz bound.
    name = "sngan"
    defaults = Settings(optimizer="adam", lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999,
                        n_critic=1, d_norm="none", spectral_norm=True)

    def d_loss(self, d_real, d_fake):
        return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()

    def g_loss(self, d_fake):
        return -d_fake.mean()
