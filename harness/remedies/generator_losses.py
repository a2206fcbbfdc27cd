"""Remedies that change D's head or G's loss: minibatch standard deviation, feature matching,
unrolled D."""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from .base import Remedy, register


class MinibatchStdDevLayer(nn.Module):
    """Appends one feature: the standard deviation of each feature over the batch, averaged."""

    def forward(self, x):
        std = x.float().std(dim=0, unbiased=False).mean()
        return torch.cat([x, std.expand(x.shape[0], 1).to(x.dtype)], dim=1)


@register
class MinibatchStdDev(Remedy):
    """Minibatch standard deviation before D's output layer (Karras et al. 2018, sec. 3): the
    cheaper variant of minibatch discrimination (Salimans et al. 2016), named as such. A
    collapsed G's batches have a small spread, which D can now see."""

    name = "minibatch-stddev"
    d_judges_one_sample = False     # D(x) depends on the rest of the batch
    summary = "the batch's feature spread as an extra input to D's output layer"
    source = "Karras et al. 2018, Progressive growing of GANs, sec. 3 (after Salimans et al. 2016)"
    conditional_problem = "it rewrites D's output layer, which the projection discriminator splits"

    def wrap_discriminator(self, D):
        *body, head = list(D)
        if not isinstance(head, nn.Linear):
            raise ValueError("minibatch-stddev needs a discriminator whose last layer is linear")
        new = nn.Linear(head.in_features + 1, head.out_features, device=head.weight.device)
        with torch.no_grad():   # the same D at initialization: the extra input starts with weight 0
            new.weight.zero_()
            new.weight[:, : head.in_features] = head.weight
            new.bias.copy_(head.bias)
        if parametrize.is_parametrized(head):
            new = spectral_norm(new)
        return nn.Sequential(*body, MinibatchStdDevLayer(), new)


def features(D: nn.Sequential, x):
    """D's last hidden layer: everything but its output layer."""
    for layer in list(D)[:-1]:
        x = layer(x)
    return x


@register
class FeatureMatching(Remedy):
    """G matches the mean of D's last hidden features on real and generated batches:
    loss = ||E f(x) - E f(G(z))||^2 (Salimans et al. 2016, sec. 3.1); D trains as before."""

    name = "feature-matching"
    extra_g_step_d_forwards = 3     # D's features of the real batch, and their backward
    summary = "G matches the mean of D's last hidden features on real and fake"
    source = "Salimans et al. 2016, Improved techniques for training GANs, sec. 3.1"
    conditional_problem = "it reads D's features without labels"
    replaces_g_loss = True
    needs_real_in_g_step = True

    def g_loss(self, step, real, fake):
        f_real = features(step.D, step.d_input(real)).detach().float().mean(0)
        f_fake = features(step.D, step.d_input(fake)).float().mean(0)
        return ((f_real - f_fake) ** 2).sum()


@register
class Unrolled(Remedy):
    """G's loss is taken through D unrolled K gradient steps ahead, with gradients through the
    unrolling (Metz et al. 2017). The lookahead uses copies of D's parameters and buffers
    (torch.func.functional_call), so D's own update is unchanged. Simplification: the
    lookahead takes plain gradient steps at D's learning rate on the objective's D loss
    without its gradient penalty (the paper unrolled Adam on a plain GAN)."""

    name = "unrolled"
    summary = "G's loss through D unrolled K steps ahead (gradients through the unrolling)"
    arg_name, arg_type, default = "K, lookahead steps", int, 5
    source = "Metz et al. 2017, Unrolled generative adversarial networks"
    conditional_problem = "its lookahead calls D without labels"
    replaces_g_loss = True
    needs_real_in_g_step = True

    @property
    def extra_g_step_d_forwards(self):
        """Each lookahead step: D on real and fake (2) and a backward with a graph (4); the G
        step's backward runs through all of it again, double backward included (x 3:
        calibrated against an exact count in tests/test_cost.py)."""
        return 18 * self.arg

    def validate(self):
        if not 1 <= self.arg <= 100:
            raise ValueError(f"unrolled: K must be in 1..100, got {self.arg}")

    def g_loss(self, step, real, fake):
        D, objective = step.D, step.objective
        lr = step.opt_d.param_groups[0]["lr"]
        params = {k: p.detach().clone().requires_grad_(True) for k, p in D.named_parameters()}
        buffers = {k: b.clone() for k, b in D.named_buffers()}
        x_real, x_fake = step.d_input(real), step.d_input(fake)

        def d(x):
            return functional_call(D, (params, buffers), (x,)).float()
        for _ in range(self.arg):
            loss = objective.d_loss(d(x_real), d(x_fake))
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
            params = {k: p - lr * g for (k, p), g in zip(params.items(), grads)}
        return objective.g_loss(d(x_fake))
