"""One training step: D's update(s) and G's, for every objective, remedy and penalty, with or
without labels (stylegan2-ada's c_dim=0 idiom: one path; n_classes = 0 is unconditional).

Conditional training (`conditional: true`) passes labels: Fashion-MNIST's (and every image
dataset's) classes, or the 2D mixtures' mode index; nothing changes when it is off, and no
random number is drawn from the unconditional streams that was not drawn before.
- D update: real (x, y) from the data; the fake batch is G(z, y) with the *same* labels, so
  that the gradient penalty's interpolates between real and fake have one label each
  (as the WGAN-GP authors' conditional CIFAR-10 code, gan_cifar_resnet.py, makes D's fakes).
- G update: y uniform over the K classes (as that code), from a stream of its own (`label_seed`).
- Evaluation and final samples: balanced labels, sample i asking for class i mod K
  (`evaluate.base.balanced_labels`): deterministic, so every evaluation asks for the same labels.
Remedies with labels: only those that act on x alone (`Remedy.conditional_ok`); the config
rejects the others by name (packing mixes labels in a pack, feature matching and the unrolled
lookahead call D without labels, minibatch-stddev rewrites D's head).
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np
import torch

from .nets import build_discriminator, build_generator
from .nets.conditional import build_conditional_discriminator, build_conditional_generator
from .penalties import penalty_autocast

LABEL_STREAM = 3    # SeedSequence child 3: children 0-2 are train.STREAMS (data, z, eval)


def label_seed(seed: int) -> int:
    """The G step's label stream: a SeedSequence child the unconditional streams never use."""
    child = np.random.SeedSequence(seed).spawn(LABEL_STREAM + 1)[LABEL_STREAM]
    return int(child.generate_state(1, dtype=np.uint64)[0] >> 1)


class GANStep:
    """One D update and one G update: the whole of what training does per step.

    D's fake batch is made without a graph through G; G's update runs through a frozen D
    so that no gradients for D are computed and thrown away. The objective's remedies
    (harness.remedies) act here: on every batch D sees (`d_input`), and on G's loss.
    """

    # The autocast dtype the penalties run under (train.penalty_precision: autocast); None: fp32.
    penalty_dtype: torch.dtype | None = None

    def __init__(self, G, D, objective, opt_g, opt_d, autocast=contextlib.nullcontext, n_classes: int = 0,
                 label_generator: torch.Generator | None = None):
        self.G, self.D, self.objective = G, D, objective
        self.opt_g, self.opt_d, self.autocast = opt_g, opt_d, autocast
        # 0: G(z), D(x) and real batches are x; K > 0: G(z, y), D(x, y), real batches (x, y)
        self.n_classes, self.label_generator = n_classes, label_generator
        self.remedies = list(getattr(objective, "remedies", []))
        self.g_loss_remedy = next((r for r in self.remedies if r.replaces_g_loss), None)
        # an objective that compares with reals (relativistic) gets D's output on a real batch too
        self.objective_reads_real = getattr(objective, "needs_real_in_g_step", False) and self.g_loss_remedy is None
        self.needs_real_in_g_step = any(r.needs_real_in_g_step for r in self.remedies) or self.objective_reads_real
        self.progress = 0.0       # share of the budget done: remedies that anneal read it

    def d_input(self, x: torch.Tensor) -> torch.Tensor:
        for remedy in self.remedies:
            x = remedy.d_input(x, self.progress)
        return x

    def discriminator(self, real, z: torch.Tensor) -> torch.Tensor:
        x, y = real if self.n_classes else (real, None)
        label = () if y is None else (y,)           # D's fakes carry the real batch's labels
        self.G.requires_grad_(False)
        self.D.requires_grad_(True)
        with self.autocast():
            with torch.no_grad():
                fake = self.G(z, *label)
            x, fake = self.d_input(x), self.d_input(fake)
            d_real, d_fake = self.D(x, *label), self.D(fake, *label)
        self.last_d_outputs = (d_real.detach(), d_fake.detach())   # for diagnostics at log points
        loss = self.objective.d_loss(d_real.float(), d_fake.float())
        with penalty_autocast(self.penalty_dtype):   # None: fp32 (train.penalty_precision)
            penalty = self.objective.penalty(self.D if y is None else functools.partial(self.D, y=y), x, fake)
        self.opt_d.zero_grad(set_to_none=True)
        (loss if penalty is None else loss + penalty).backward()
        self.opt_d.step()
        self.objective.after_d_step(self.D)
        return loss.detach()

    def generator(self, z: torch.Tensor, before_update=None, real=None) -> torch.Tensor:
        label = () if not self.n_classes else \
            (torch.randint(self.n_classes, (z.shape[0],), device=z.device, generator=self.label_generator),)
        x_real, real_label = (real, ()) if not self.n_classes or real is None else (real[0], (real[1],))
        self.G.requires_grad_(True)
        self.D.requires_grad_(False)
        with self.autocast():
            fake = self.G(z, *label)
            if self.objective_reads_real:
                with torch.no_grad():   # a constant for G: D is frozen, the batch is data
                    d_real = self.D(self.d_input(x_real), *real_label).float()
                loss = self.objective.g_loss(self.D(self.d_input(fake), *label).float(), d_real)
            elif self.g_loss_remedy is None:
                loss = self.objective.g_loss(self.D(self.d_input(fake), *label).float())
            else:                   # no such remedy with labels (Remedy.conditional_ok)
                loss = self.g_loss_remedy.g_loss(self, real, fake).float()
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        if before_update is not None:
            before_update()
        self.opt_g.step()
        return loss.detach()


def d_input_shape(objective, data_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape D reads: the data's, as the remedies reshape it (packing widens it)."""
    for remedy in objective.remedies:
        data_shape = remedy.d_shape(data_shape)
    return data_shape


def build_nets(arch, objective, data_shape, z_dim, n_classes: int = 0, init: str = "dcgan"):
    """(G, D) for one (architecture, objective) on the default device: D reads the remedies'
    input shape and carries their head layers; n_classes > 0: the conditional pair G(z, y), D(x, y)."""
    s, d_shape = objective.settings, d_input_shape(objective, data_shape)
    if n_classes:
        G = build_conditional_generator(arch, data_shape, z_dim, n_classes, init=init)
        D = build_conditional_discriminator(arch, d_shape, n_classes, s.d_norm, spectral=s.spectral_norm, init=init)
    else:
        G = build_generator(arch, data_shape, z_dim, init=init)
        D = build_discriminator(arch, d_shape, s.d_norm, spectral=s.spectral_norm, init=init)
    for remedy in objective.remedies:   # a layer added to D's head (minibatch features)
        D = remedy.wrap_discriminator(D)
    return G, D


def build_step(arch, objective, data_shape, z_dim, device, amp_dtype=None, channels_last=False,
               init: str = "dcgan", n_classes: int = 0, label_generator: torch.Generator | None = None) -> GANStep:
    """Nets, optimizers and the step for one (architecture, objective) on a device."""
    G, D = build_nets(arch, objective, data_shape, z_dim, n_classes, init)
    G, D = G.to(device), D.to(device)
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    opt_g, opt_d = objective.optimizers(G, D, d_has_norm=objective.d_is_normalized(arch.norm_d))
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else contextlib.nullcontext
    return GANStep(G, D, objective, opt_g, opt_d, autocast, n_classes, label_generator)
