"""Penalties: extra D loss terms that need D itself, composable with any objective.

Kurach et al. 2019 (compare_gan) vary loss, penalty and normalization independently, and
compare_gan keeps its penalties in a library of their own; so does the harness. A method
names a penalty after '+' as it names a remedy, with its weight as the argument:
`gan+r1:10`, `lsgan+dragan:10`, `sngan+gp:10`. `wgan-gp` stays the name of the published
combination (the Wasserstein loss with `gp` at the objective's setting gp_weight, 10):
it builds the same `GradientPenalty` that `+gp` does, so the two cannot drift apart.

Remedies and penalties share the names after '+' (one namespace, `claim_part_name`): a name
says which it is, and registering a name the other registry holds is an error.

Precision: by default each penalty takes the input gradient of D in fp32 with autocast off,
and the trainer calls it outside its autocast block (WGAN-GP's penalty has always done this,
and every penalty here does the same, through `input_gradient`). `train.penalty_precision:
autocast` lets the trainer run the penalty's D forward, input gradient and double backward
under the trial's own autocast dtype instead (bf16 on the bf16 path; `penalty_autocast`),
with the gradient and its norm still taken in fp32: the gradient norm then differs from the
fp32 one by 0.2-0.7 % on average over a batch (depth 4-8 critics; bounded by depth x 2^-8 in
tests/test_penalty_precision.py). Off by default: the penalty is most of a wgan-gp iteration
on a CPU (`harness bench --only profile`), but the bf16 penalty's speed has not been measured
on a CPU with bf16 units yet (docs/benchmark.md).
"""
from __future__ import annotations

import contextlib
import contextvars
import math

import torch

from .errors import UnknownName
from .registry import DuplicateName, check_free

# The names that follow '+' in a method string, remedy or penalty: name -> "remedy" | "penalty".
METHOD_PARTS: dict[str, str] = {}


def claim_part_name(name: str, kind: str) -> None:
    """Reserve `name` for a remedy or a penalty: the method string cannot tell two of one name
    apart, so a clash is refused when the second registers, not guessed at when parsed."""
    taken = METHOD_PARTS.get(name)
    if taken is not None and taken != kind:
        raise DuplicateName(f"{kind} {name!r}: a {taken} has that name already (remedies and penalties share "
                         "the names after '+' in a method); choose another")
    METHOD_PARTS[name] = kind


class Penalty:
    """A weighted term added to D's loss at every D step: `weight * term(D, real, fake)`.

    `real` and `fake` are the batches D has just judged, after the remedies' `d_input`;
    `D` is a callable (a conditional step passes D with its labels bound)."""

    name: str = ""
    summary: str = ""               # one line for `python -m harness list penalties`
    source: str = ""
    arg_name = "LAMBDA, the penalty's weight in D's loss"
    arg_type = float
    default: float = 10.0
    # for harness.cost: D forward-pass equivalents per D step: a D forward on its points (1), the
    # input gradient with a graph (1: activations only), and the backward through both (2 + 2).
    # flop_counter's exact count of the step gives 6.0 on DCGAN, ResNet and MLP critics (images
    # and 2D); the harness priced WGAN-GP's penalty at 9 before penalties had their own module.
    d_forwards = 6

    def __init__(self, arg=None):
        self.arg = self.default if arg is None else arg

    @property
    def weight(self) -> float:
        return self.arg

    @property
    def label(self) -> str:
        return f"{self.name}:{self.arg:g}"

    def validate(self) -> None:
        """Raise ValueError for a weight out of range."""
        if not 0 < self.arg < math.inf:
            raise ValueError(f"penalty {self.name!r}: the weight must be a finite number > 0, got {self.arg}")

    def term(self, D, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, D, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return self.weight * self.term(D, real, fake)


PENALTIES: dict[str, type[Penalty]] = {}


def register_penalty(cls: type[Penalty]) -> type[Penalty]:
    """Class decorator: the penalty `cls.name`, named after '+' in a method with its weight.
    Built-ins and plugins register alike; a name another penalty or a remedy holds is refused."""
    check_free(PENALTIES, cls.name, cls, "penalty")
    claim_part_name(cls.name, "penalty")
    PENALTIES[cls.name] = cls
    return cls


def get_penalty(name: str, arg=None) -> Penalty:
    """A penalty by name; an unknown name lists the valid ones."""
    if name not in PENALTIES:
        raise UnknownName(f"unknown penalty {name!r}; valid: {sorted(PENALTIES)}")
    return PENALTIES[name](arg)


# The autocast dtype the penalties run D under; None (the default): fp32, autocast off.
_AUTOCAST_DTYPE: contextvars.ContextVar[torch.dtype | None] = contextvars.ContextVar("penalty_autocast",
                                                                                     default=None)


@contextlib.contextmanager
def penalty_autocast(dtype: torch.dtype | None):
    """Run the penalties called inside under autocast to `dtype` (None: fp32, the default).
    A context variable, not an argument, because the penalties are reached through each
    objective's `penalty` with the same signature whatever the precision."""
    token = _AUTOCAST_DTYPE.set(dtype)
    try:
        yield
    finally:
        _AUTOCAST_DTYPE.reset(token)


def input_gradient(D, x: torch.Tensor) -> torch.Tensor:
    """grad_x sum_i D(x_i), with a graph (the penalty is trained through), returned in fp32.

    By default in fp32 throughout: the forward and the gradient both with autocast off, since
    a gradient taken with a graph records its backward's matrix products under whatever
    autocast is active where it is taken (so the double backward runs in that precision too).
    Inside `penalty_autocast(dtype)` both run under autocast to that dtype: D's convolutions,
    their input gradients and the double backward in bf16, the sum and the gradient in fp32."""
    dtype = _AUTOCAST_DTYPE.get()
    x = x.requires_grad_(True)
    with torch.autocast(device_type="cuda" if x.is_cuda else "cpu", dtype=dtype or torch.bfloat16,
                        enabled=dtype is not None):
        out = D(x).float()
        (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.float()


def gradient_penalty(D, real, fake, eps=None):
    """E[(||grad D(x_hat)||_2 - 1)^2] at random interpolates, in fp32: one epsilon per sample,
    the norm over every non-batch dimension (Gulrajani et al. 2017, Algorithm 1)."""
    if eps is None:
        eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    x_hat = eps * real.float() + (1 - eps) * fake.float().detach()
    grad = input_gradient(D, x_hat)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


@register_penalty
class GradientPenalty(Penalty):
    """Two-sided: the gradient norm is pulled to 1 on lines between real and generated samples,
    where the optimal 1-Lipschitz critic has norm 1 (WGAN-GP's Proposition 1)."""

    name = "gp"
    summary = "lambda E[(||grad D(x_hat)||_2 - 1)^2] at random interpolates of real and fake"
    source = "Gulrajani et al. 2017, Improved training of Wasserstein GANs, Algorithm 1 (lambda 10)"

    def term(self, D, real, fake):
        return gradient_penalty(D, real, fake)


@register_penalty
class R1(Penalty):
    """D's gradient on real data only, pushed to 0: at the equilibrium (p_g = p_data, D constant
    on the data) it vanishes, which makes the game locally convergent (Mescheder et al. 2018,
    Theorem 4). The argument is gamma; the term is (gamma / 2) E[||grad D(x)||^2]."""

    name = "r1"
    summary = "(gamma / 2) E[||grad D(x)||_2^2] on real data"
    source = "Mescheder et al. 2018, Which training methods for GANs do actually converge?, eq. 9"
    arg_name = "GAMMA, the penalty is GAMMA / 2 times the squared gradient norm"

    @property
    def weight(self) -> float:
        return self.arg / 2

    def term(self, D, real, fake):
        grad = input_gradient(D, real.float().detach())
        return grad.flatten(1).pow(2).sum(1).mean()


@register_penalty
class DRAGAN(Penalty):
    """The gradient norm pulled to 1 around the real data, where sharp gradients of D mark the
    local equilibria DRAGAN blames for mode collapse. As the authors' code: points
    x + alpha * delta with delta = C * std(batch) * U[0, 1) per element, alpha ~ U[0, 1) per
    sample (the paper writes delta ~ N(0, cI); the code is what was run)."""

    name = "dragan"
    summary = "lambda E[(||grad D(x + delta)||_2 - 1)^2] around perturbed real data"
    source = "Kodali et al. 2017, On convergence and stability of GANs (DRAGAN), sec. 4 and its code (C 0.5)"
    spread = 0.5      # C: the perturbation's scale in units of the batch's std

    def term(self, D, real, fake):
        x = real.float().detach()
        delta = self.spread * x.std() * torch.rand_like(x)
        alpha = torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device)
        grad = input_gradient(D, x + alpha * delta)
        return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
