"""The relativistic average GAN as a harness plugin: an objective and a penalty, written as a
user would, outside the harness (docs/extending.md).

Jolicoeur-Martineau 2019, "The relativistic discriminator: a key element missing from
standard GAN" (RaSGAN, sec. 4.2): the critic C judges whether a real sample is more
realistic than the average fake, D_ra(x_r, x_f) = sigmoid(C(x_r) - E_f C(x_f)), and the
other way round, so that G's loss also pulls C's output on real data down.

    L_D = -E_r[log sigmoid(C(x_r) - E_f C(x_f))] - E_f[log(1 - sigmoid(C(x_f) - E_r C(x_r)))]
    L_G = -E_f[log sigmoid(C(x_f) - E_r C(x_r))] - E_r[log(1 - sigmoid(C(x_r) - E_f C(x_f)))]

With -log sigmoid(a) = softplus(-a) and -log(1 - sigmoid(a)) = softplus(a) both are sums of
softplus terms, stable for any logit. G's loss needs C on a real batch too: the objective
says so (`needs_real_in_g_step`) and the harness's G step passes `d_real`, computed without a
graph (for G it is a constant).

Use it from an experiment: `plugins: [ragan.py]`, then `objectives: [gan, ragan]`, and the
penalty as any other: `ragan+r2:1`.
"""
from __future__ import annotations

from torch.nn import functional as F

from harness.objectives import Objective, Settings, register
from harness.penalties import Penalty, input_gradient, register_penalty


@register
class RelativisticAverageGAN(Objective):
    """RaSGAN: the standard GAN's losses on the critic's output relative to the other batch's mean."""

    name = "ragan"
    # the paper's settings for its CIFAR-10 runs (sec. 4.1, after DCGAN): Adam lr 2e-4, betas
    # (0.5, 0.999), one D step per G step; D normalized as DCGAN's, batch norm
    defaults = Settings(optimizer="adam", lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, n_critic=1, d_norm="batch")
    needs_real_in_g_step = True

    def d_loss(self, d_real, d_fake):
        return F.softplus(-(d_real - d_fake.mean())).mean() + F.softplus(d_fake - d_real.mean()).mean()

    def g_loss(self, d_fake, d_real):
        return F.softplus(-(d_fake - d_real.mean())).mean() + F.softplus(d_real - d_fake.mean()).mean()

    def diagnostics(self, d_real, d_fake):
        """How sure C is that real data is more realistic than the average fake (1/2: it cannot tell)."""
        return {"d_ra_real": (d_real - d_fake.mean()).sigmoid().mean(),
                "d_ra_fake": (d_fake - d_real.mean()).sigmoid().mean()}


@register_penalty
class R2(Penalty):
    """Zero-centred gradient penalty on generated data: (gamma / 2) E_f[||grad C(x_f)||^2],
    R1's twin on the other distribution (Mescheder et al. 2018, eq. 10, "R2")."""

    name = "r2"
    summary = "(gamma / 2) E[||grad D(G(z))||_2^2] on generated data"
    source = "Mescheder et al. 2018, Which training methods for GANs do actually converge?, eq. 10"
    arg_name = "GAMMA, the penalty is GAMMA / 2 times the squared gradient norm"

    @property
    def weight(self) -> float:
        return self.arg / 2

    def term(self, D, real, fake):
        grad = input_gradient(D, fake.float().detach())   # fp32, autocast off: harness.penalties
        return grad.flatten(1).pow(2).sum(1).mean()
