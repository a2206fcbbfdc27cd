"""f-GAN (Nowozin et al. 2016): variational divergence minimization for five f-divergences.

D outputs V(x); the variational function is T = g_f(V) with the output activation g_f of
the paper's Table 2, which keeps T in the domain of the conjugate f*. D maximizes the bound

    F(T) = E_P[T(x)] - E_Q[f*(T(G(z)))]        (<= D_f(P || Q), equal at T* = f'(p/q))

and G, as in the paper's experiments, maximizes E_Q[g_f(V(G(z)))] (the non-saturating form).
Each loss below is that expression with f*(g_f(v)) simplified by hand, so that no exp or
log of an intermediate can overflow where the closed form does not:

| name | g_f(v) | f*(g_f(v)) | f(u) (divergence D_f = E_Q[f(p/q)]) |
|---|---|---|---|
| fgan-kl | v | exp(v - 1) | u log u (KL(P||Q)) |
| fgan-reverse-kl | -exp(-v) | v - 1 | -log u (KL(Q||P)) |
| fgan-pearson | v | v^2/4 + v | (u - 1)^2 (Pearson chi^2) |
| fgan-hellinger | 1 - exp(-v) | exp(v) - 1 | (sqrt u - 1)^2 (squared Hellinger, unnormalized) |
| fgan-js | log 2 - softplus(-v) | softplus(v) - log 2 | u log u - (u+1) log((u+1)/2) (2 x JSD) |

Settings: the paper trained with Adam, lr 2e-4, beta1 0.5 (its DCGAN-based experiments),
as the harness's `gan`; the GAN entry of Table 2 is the harness's `gan` objective itself.
"""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from .base import Objective, register
from .gan import DCGAN_SETTINGS

LOG2 = math.log(2.0)


class FGAN(Objective):
    """D loss = -(E_P[g_f(v)] - E_Q[f*(g_f(v))]); G loss = -E_Q[g_f(v)]."""

    defaults = DCGAN_SETTINGS

    @staticmethod
    def activation(v: torch.Tensor) -> torch.Tensor:     # g_f
        raise NotImplementedError

    @staticmethod
    def conjugate_of_activation(v: torch.Tensor) -> torch.Tensor:     # f*(g_f(v)), simplified
        raise NotImplementedError

    def d_loss(self, d_real, d_fake):
        return -(self.activation(d_real).mean() - self.conjugate_of_activation(d_fake).mean())

    def g_loss(self, d_fake):
        return -self.activation(d_fake).mean()

    def diagnostics(self, d_real, d_fake):
        """The variational lower bound on D_f(P || Q) that D's current critic achieves."""
        return {"divergence_estimate": -self.d_loss(d_real, d_fake)}


@register
class KL(FGAN):
    name = "fgan-kl"
    activation = staticmethod(lambda v: v)
    conjugate_of_activation = staticmethod(lambda v: torch.exp(v - 1))


@register
class ReverseKL(FGAN):
    name = "fgan-reverse-kl"
    activation = staticmethod(lambda v: -torch.exp(-v))
    conjugate_of_activation = staticmethod(lambda v: v - 1)


@register
class Pearson(FGAN):
    name = "fgan-pearson"
    activation = staticmethod(lambda v: v)
    conjugate_of_activation = staticmethod(lambda v: v * v / 4 + v)


@register
class SquaredHellinger(FGAN):
    name = "fgan-hellinger"
    activation = staticmethod(lambda v: 1 - torch.exp(-v))
    conjugate_of_activation = staticmethod(lambda v: torch.expm1(v))


@register
class JensenShannon(FGAN):
    name = "fgan-js"
    activation = staticmethod(lambda v: LOG2 - F.softplus(-v))
    conjugate_of_activation = staticmethod(lambda v: F.softplus(v) - LOG2)

    def d_probability(self, output):
        """sigmoid(v): the optimal T* = f'(p/q) = log(2p / (p + q)) and T = g_f(v) = log(2 sigmoid(v)),
        so sigmoid(v*) = p / (p + q). (The other f-GANs' T* is a function of p/q as well, mappable
        to the same ratio; not done here.)"""
        return torch.sigmoid(output)
