"""The two loops the bench times: the harness's own training loop, and a plain PyTorch one."""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ..config import from_dict
from ..nets import build_discriminator, build_generator
from ..objectives import get_objective
from ..space import Arch
from ..train import Session
from ..trial import Trial
from .plan import N_IMAGES, SHAPE, Z_DIM, Plan


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def resident_images(device: torch.device, seed: int = 0) -> torch.Tensor:
    """A uint8 N x 1 x 32 x 32 tensor on the device: Fashion-MNIST's size; contents do not change timing."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (N_IMAGES, *SHAPE), generator=g, dtype=torch.uint8).to(device)


class HarnessRunner:
    """train.Session, the state and loop body every trial runs, driven as train's loop drives it:
    `iteration()` each step, losses read back when `LossMeter.due` (minus logging and evaluation)."""

    impl = "harness"

    def __init__(self, arch: Arch, objective: str, batch: int, device: torch.device, images: torch.Tensor,
                 seed: int = 0, precision: str = "auto"):
        exp = from_dict({"name": "bench", "dataset": "fashion_mnist", "objectives": [objective],
                         "budget": {"batch_size": batch}, "train": {"device": str(device), "precision": precision}})
        self.session = Session(Trial(exp, arch, objective, seed), images=images)
        self.device = device

    @property
    def step(self):
        return self.session.step

    @property
    def precision(self) -> str:
        return "bf16-autocast" if self.session.amp_dtype == torch.bfloat16 else "fp32"

    def run(self, n: int, tick=None) -> None:
        s = self.session
        for it in range(1, n + 1):
            s.iteration()
            if s.losses.due(it) or it == n:
                losses = s.losses.read()
                if not all(map(math.isfinite, losses.values())):
                    raise FloatingPointError(f"non-finite loss in the benchmark: {losses}")
                if tick:
                    tick(it)

    def nets(self):
        return self.step.G, self.step.D


class ReferenceRunner:
    """A textbook fp32 PyTorch GAN loop over the same networks; no harness code but the builders."""

    impl = "reference"
    precision = "fp32"

    def __init__(self, arch: Arch, objective: str, batch: int, device: torch.device, images: torch.Tensor,
                 seed: int = 0):
        s = get_objective(objective).settings      # hyperparameters only
        torch.manual_seed(seed)
        self.device, self.batch, self.images = device, batch, images
        self.G = build_generator(arch, SHAPE, Z_DIM).to(device)
        self.D = build_discriminator(arch, SHAPE, s.d_norm, spectral=s.spectral_norm).to(device)
        wd = s.d_weight_decay if arch.norm_d and s.d_norm != "none" else 0.0
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=s.lr_g, betas=(s.beta1, s.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=s.lr_d, betas=(s.beta1, s.beta2), weight_decay=wd)
        self.wgan, self.gp_weight, self.n_critic = objective.startswith("wgan"), s.gp_weight, s.n_critic
        self.ones = torch.ones(batch, 1, device=device)
        self.zeros = torch.zeros(batch, 1, device=device)

    def iteration(self) -> None:
        G, D, b, dev = self.G, self.D, self.batch, self.device
        for _ in range(self.n_critic):
            real = self.images[torch.randint(len(self.images), (b,), device=dev)].float() / 127.5 - 1
            fake = G(torch.randn(b, Z_DIM, device=dev)).detach()
            d_real, d_fake = D(real), D(fake)
            if self.wgan:
                loss_d = d_fake.mean() - d_real.mean()
                alpha = torch.rand(b, 1, 1, 1, device=dev)
                x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
                grad = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)[0]
                loss_d = loss_d + self.gp_weight * ((grad.view(b, -1).norm(2, dim=1) - 1) ** 2).mean()
            else:
                loss_d = (F.binary_cross_entropy_with_logits(d_real, self.ones)
                          + F.binary_cross_entropy_with_logits(d_fake, self.zeros))
            self.opt_d.zero_grad()
            loss_d.backward()
            self.opt_d.step()
            loss_d.item()
        out = D(G(torch.randn(b, Z_DIM, device=dev)))
        loss_g = -out.mean() if self.wgan else F.binary_cross_entropy_with_logits(out, self.ones)
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()
        if not math.isfinite(loss_g.item()):
            raise FloatingPointError("non-finite loss in the reference loop")

    def run(self, n: int, tick=None) -> None:
        torch.backends.cudnn.benchmark = True    # as pytorch/examples' dcgan sets it: the stronger baseline
        for it in range(1, n + 1):
            self.iteration()
            if tick:
                tick(it)

    def nets(self):
        return self.G, self.D


RUNNERS = {"harness": HarnessRunner, "reference": ReferenceRunner}


def make_runner(impl: str, plan: Plan, config: str, objective: str, device: torch.device, images):
    return RUNNERS[impl](plan.config_arch(config), objective, plan.batch, device, images)
