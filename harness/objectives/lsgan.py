"""Least-squares GAN (Mao et al. 2017) with the a=0, b=c=1 coding."""
from __future__ import annotations

from .base import Objective, Settings, register


@register
class LSGAN(Objective):
    # Settings of the WGAN-GP paper's appendix E comparison: RMSProp lr 1e-4, n_critic 1.
    name = "lsgan"
    defaults = Settings(optimizer="rmsprop", lr_g=1e-4, lr_d=1e-4, n_critic=1, d_norm="batch")

    def d_loss(self, d_real, d_fake):
        return 0.5 * ((d_real - 1) ** 2).mean() + 0.5 * (d_fake ** 2).mean()

    def g_loss(self, d_fake):
        return 0.5 * ((d_fake - 1) ** 2).mean()

    def d_probability(self, output):
        """The output itself: with targets a=0 (fake), b=1 (real) the optimal D is
        (b p_data + a p_g) / (p_data + p_g) = p_data / (p_data + p_g) (Mao et al. 2017, Prop. 1).
        Not squashed: an output outside [0, 1] is a distance from D* like any other."""
        return output
