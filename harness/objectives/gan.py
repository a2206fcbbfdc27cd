"""The original GAN (Goodfellow et al. 2014) in its two generator forms."""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from .base import Objective, Settings, register

# DCGAN (Radford et al. 2016, section 4): Adam lr 2e-4, beta1 0.5; batch norm in D.
DCGAN_SETTINGS = Settings(optimizer="adam", lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999,
                          n_critic=1, d_norm="batch")


@register
class NonSaturatingGAN(Objective):
    """G maximises log D(G(z)): the form everyone trains, with strong early gradients."""

    name = "gan"
    defaults = DCGAN_SETTINGS

    def d_loss(self, d_real, d_fake):
        # -log sigmoid(r) - log(1 - sigmoid(f)) == softplus(-r) + softplus(f)
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()

    def g_loss(self, d_fake):
        return F.softplus(-d_fake).mean()

    def diagnostics(self, d_real, d_fake):
        """D's mean probability on real and generated samples: 1/2 each at the equilibrium
        (Goodfellow et al. 2014), where D's loss is 2 log 2 and the non-saturating G's log 2."""
        loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        return {"d_prob_real": torch.sigmoid(d_real).mean(), "d_prob_fake": torch.sigmoid(d_fake).mean(),
                "loss_d_minus_2log2": loss_d - 2 * math.log(2),                  # D's loss vs its equilibrium
                "loss_g_ns_minus_log2": F.softplus(-d_fake).mean() - math.log(2)}   # non-saturating G's

    def d_probability(self, output):
        """sigmoid(logit): for a fixed G its optimum is p_data / (p_data + p_g) (Goodfellow et al.
        2014, Prop. 1); G's loss form does not change D's game, so the minimax form inherits it."""
        return torch.sigmoid(output)


@register
class MinimaxGAN(NonSaturatingGAN):
    """G minimises log(1 - D(G(z))): the game as written, which saturates early."""

    name = "gan-minimax"

    def g_loss(self, d_fake):
        return -F.softplus(d_fake).mean()
