"""Conditional training (`conditional: true`): labelled real batches and the step with G(z, y), D(x, y).

The labels are Fashion-MNIST's (and every image dataset's) classes, or the 2D mixtures'
mode index. `train.Session` draws labelled batches (`real_data.RealData(labelled=True)`) and uses
`ConditionalStep` in place of `GANStep` when the experiment is conditional; nothing changes otherwise, and
no random number is drawn from the unconditional streams that was not drawn before.

Labels in the step:
- D update: real (x, y) from the data; the fake batch is G(z, y) with the *same* labels, so
  that the gradient penalty's interpolates between real and fake have one label each
  (as the WGAN-GP authors' conditional CIFAR-10 code, gan_cifar_resnet.py, makes D's fakes).
- G update: y uniform over the K classes (as that code), from a stream of its own (`label_seed`).
- Evaluation and final samples: balanced labels, sample i asking for class i mod K
  (`evaluate.base.balanced_labels`): deterministic, so every evaluation asks for the same labels.

Remedies: only those that act on x alone (`Remedy.conditional_ok`) are allowed; the config
rejects the others by name (packing mixes labels in a pack, feature matching and the unrolled
lookahead call D without labels, minibatch-stddev rewrites D's head).
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np
import torch

from .data import get_dataset_spec
from .nets.conditional import build_conditional_discriminator, build_conditional_generator
from .penalties import penalty_autocast

LABEL_STREAM = 3    # SeedSequence child 3: children 0-2 are train.STREAMS (data, z, eval)


def label_seed(seed: int) -> int:
    """The G step's label stream: a SeedSequence child the unconditional streams never use."""
    child = np.random.SeedSequence(seed).spawn(LABEL_STREAM + 1)[LABEL_STREAM]
    return int(child.generate_state(1, dtype=np.uint64)[0] >> 1)


class ConditionalStep:
    """`train.GANStep` with labels: the same attributes and calls, `real` being (x, y)."""

    g_loss_remedy = None            # no remedy that replaces G's loss is allowed with labels
    needs_real_in_g_step = False
    penalty_dtype = None            # as GANStep's

    def __init__(self, G, D, objective, opt_g, opt_d, n_classes, label_generator, autocast=contextlib.nullcontext):
        self.G, self.D, self.objective = G, D, objective
        self.opt_g, self.opt_d, self.autocast = opt_g, opt_d, autocast
        self.n_classes, self.label_generator = n_classes, label_generator
        self.remedies = list(getattr(objective, "remedies", []))
        self.progress = 0.0
        # a relativistic objective's G loss reads D on a real (x, y) batch too (train.GANStep)
        self.needs_real_in_g_step = getattr(objective, "needs_real_in_g_step", False)

    def d_input(self, x: torch.Tensor) -> torch.Tensor:
        for remedy in self.remedies:
            x = remedy.d_input(x, self.progress)
        return x

    def discriminator(self, real: tuple[torch.Tensor, torch.Tensor], z: torch.Tensor) -> torch.Tensor:
        x, y = real
        self.G.requires_grad_(False)
        self.D.requires_grad_(True)
        with self.autocast():
            with torch.no_grad():
                fake = self.G(z, y)
            x, fake = self.d_input(x), self.d_input(fake)
            d_real, d_fake = self.D(x, y), self.D(fake, y)
        self.last_d_outputs = (d_real.detach(), d_fake.detach())
        loss = self.objective.d_loss(d_real.float(), d_fake.float())
        with penalty_autocast(self.penalty_dtype):
            penalty = self.objective.penalty(functools.partial(self.D, y=y), x, fake)
        self.opt_d.zero_grad(set_to_none=True)
        (loss if penalty is None else loss + penalty).backward()
        self.opt_d.step()
        self.objective.after_d_step(self.D)
        return loss.detach()

    def generator(self, z: torch.Tensor, before_update=None, real=None) -> torch.Tensor:
        y = torch.randint(self.n_classes, (z.shape[0],), device=z.device, generator=self.label_generator)
        self.G.requires_grad_(True)
        self.D.requires_grad_(False)
        with self.autocast():
            d_fake = self.D(self.d_input(self.G(z, y)), y).float()
            if self.needs_real_in_g_step:
                with torch.no_grad():
                    d_real = self.D(self.d_input(real[0]), real[1]).float()
                loss = self.objective.g_loss(d_fake, d_real)
            else:
                loss = self.objective.g_loss(d_fake)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        if before_update is not None:
            before_update()
        self.opt_g.step()
        return loss.detach()


def build_conditional_step(trial, data_shape, z_dim, device, amp_dtype=None, channels_last=False,
                           init: str = "dcgan", objective=None) -> ConditionalStep:
    """What `train.build_step` does, with conditional nets and the label stream."""
    objective = objective or trial.make_objective()
    s, arch = objective.settings, trial.arch
    n_classes = get_dataset_spec(trial.experiment.dataset).num_classes
    G = build_conditional_generator(arch, data_shape, z_dim, n_classes, init=init).to(device)
    D = build_conditional_discriminator(arch, data_shape, n_classes, s.d_norm, spectral=s.spectral_norm,
                                        init=init).to(device)
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    opt_g, opt_d = objective.optimizers(G, D, d_has_norm=objective.d_is_normalized(arch.norm_d))
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else contextlib.nullcontext
    labels = torch.Generator(device=device).manual_seed(label_seed(trial.seed))
    return ConditionalStep(G, D, objective, opt_g, opt_d, n_classes, labels, autocast)
