"""Remedies that change D's head or G's loss: minibatch standard deviation, minibatch
discrimination, feature matching, unrolled D."""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from .base import Remedy, register


def with_batch_features(D: nn.Sequential, name: str, make_layer, extra: int) -> nn.Sequential:
    """D with `make_layer(A)` (A: D's penultimate width) before its output layer, which gains
    `extra` inputs. The extra inputs start with weight 0, so D is the same function at
    initialization as without the remedy; spectral norm on the old head carries over."""
    *body, head = list(D)
    if not isinstance(head, nn.Linear):
        raise ValueError(f"{name} needs a discriminator whose last layer is linear")
    new = nn.Linear(head.in_features + extra, head.out_features, device=head.weight.device)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : head.in_features] = head.weight
        new.bias.copy_(head.bias)
    if parametrize.is_parametrized(head):
        new = spectral_norm(new)
    return nn.Sequential(*body, make_layer(head.in_features), new)


class MinibatchStdDevLayer(nn.Module):
    """Appends one feature: the standard deviation of each feature over the batch, averaged."""

    def forward(self, x):
        std = x.float().std(dim=0, unbiased=False).mean()
        return torch.cat([x, std.expand(x.shape[0], 1).to(x.dtype)], dim=1)


@register
class MinibatchStdDev(Remedy):
    """Minibatch standard deviation before D's output layer (Karras et al. 2018, sec. 3): the
    cheaper variant of minibatch discrimination (Salimans et al. 2016, `minibatch-disc`). A
    collapsed G's batches have a small spread, which D can now see."""

    name = "minibatch-stddev"
    d_judges_one_sample = False     # D(x) depends on the rest of the batch
    summary = "the batch's feature spread as an extra input to D's output layer"
    source = "Karras et al. 2018, Progressive growing of GANs, sec. 3 (after Salimans et al. 2016)"
    conditional_problem = "it rewrites D's output layer, which the projection discriminator splits"

    def wrap_discriminator(self, D):
        return with_batch_features(D, self.name, lambda width: MinibatchStdDevLayer(), 1)


class MinibatchDiscriminationLayer(nn.Module):
    """Salimans et al. 2016, sec. 3.2: M_i = f(x_i) T with a learned T of shape (A, B, C); for
    each of the B kernels, o(x_i)_b = sum_j exp(-||M_i,b - M_j,b||_1) over the batch (j = i
    included, as in the paper), appended to f(x_i). A collapsed batch has every o_b = N; a
    spread one has o_b near 1. Computed in fp32 with autocast off: exp(-L1) of bf16 rows
    would round the small distances that tell the two apart."""

    def __init__(self, in_features: int, kernels: int, dims: int, device=None):
        super().__init__()
        # N(0, 0.05), the init of the authors' code (improved-gan, MinibatchLayer)
        self.T = nn.Parameter(0.05 * torch.randn(in_features, kernels, dims, device=device))

    def forward(self, x):
        a, b, c = self.T.shape
        with torch.autocast(device_type="cuda" if x.is_cuda else "cpu", enabled=False):
            m = (x.float() @ self.T.float().view(a, b * c)).view(-1, b, c).transpose(0, 1)   # (B, N, C)
            o = torch.exp(-torch.cdist(m, m, p=1)).sum(-1).transpose(0, 1)                     # (N, B)
        return torch.cat([x, o.to(x.dtype)], dim=1)


@register
class MinibatchDiscrimination(Remedy):
    """Minibatch discrimination (Salimans et al. 2016, sec. 3.2) before D's output layer: B
    learned kernels of C = 5 dimensions each measure how close each sample lies to the rest
    of its batch, so that D can penalize a G whose samples are alike."""

    name = "minibatch-disc"
    d_judges_one_sample = False     # D(x) depends on the rest of the batch
    summary = "learned closeness of each sample to the rest of its batch, as extra inputs to D's output layer"
    arg_name, arg_type, default = "B, the number of kernels", int, 100
    dims = 5                        # C: each kernel's dimensions (B = 100, C = 5 in the authors' code)
    source = "Salimans et al. 2016, Improved techniques for training GANs, sec. 3.2"
    conditional_problem = "it rewrites D's output layer, which the projection discriminator splits"

    def validate(self):
        if not 1 <= self.arg <= 1000:
            raise ValueError(f"minibatch-disc: B must be in 1..1000, got {self.arg}")

    def wrap_discriminator(self, D):
        device = next(iter(D.parameters())).device
        return with_batch_features(
            D, self.name, lambda width: MinibatchDiscriminationLayer(width, self.arg, self.dims, device), self.arg)


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
