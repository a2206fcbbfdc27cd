"""The seeded stream of real training batches, with labels where training is conditional.

Images are drawn by random index from a uint8 tensor resident on the device; the 2D mixtures
are sampled on the CPU (identical on every device) from a CPU generator seeded like the
device one. `labelled=True` (conditional training) returns (x, y): the images' classes or
the mixture's mode index, with exactly the x an unlabelled stream of the same seed draws, so
turning conditioning on changes nothing else (stylegan2-ada's c_dim=0 idiom: one path).
"""
from __future__ import annotations

import torch

from .data import sample_mixture, sample_mixture_labelled, to_unit_range


class RealData:
    def __init__(self, spec, images, device, generator, channels_last=False, labels=None, labelled=False):
        if labelled and images is not None and labels is None:
            raise ValueError(f"conditional training on {spec.name} needs the images' labels")
        self.spec, self.device, self.generator = spec, device, generator
        self.channels_last, self.labelled = channels_last, labelled
        self.images = None if images is None else images.to(device)
        self.labels = labels.to(device) if labelled and labels is not None else None
        self.cpu_generator = torch.Generator().manual_seed(generator.initial_seed()) if images is None else None

    def batch(self, n: int):
        """n real samples (x), or (x, y) when labelled."""
        if self.images is None:
            draw = sample_mixture_labelled if self.labelled else sample_mixture
            return draw(self.spec.name, n, self.cpu_generator, device=self.device)
        idx = torch.randint(len(self.images), (n,), device=self.device, generator=self.generator)
        x = to_unit_range(self.images[idx], self.device)
        x = x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
        return (x, self.labels[idx]) if self.labelled else x

    def generators(self) -> dict[str, torch.Generator]:
        """The random streams it draws from, by the names checkpoints keep them under."""
        return {"data": self.generator, **({"mixture": self.cpu_generator} if self.cpu_generator is not None else {})}
