"""Training losses summed on the device and read back only now and then (a read is a host sync)."""
from __future__ import annotations

import torch


class LossMeter:
    """(loss_d, loss_g) summed on the device and read back every `every` iterations.

    A read is a host sync, which on a GPU costs about a step; so it happens at most every
    `every` iterations, and at the log and evaluation points the loop asks for."""

    def __init__(self, device: torch.device, every: int):
        self.every = every
        self.sums = torch.zeros(2, device=device)
        self.count = 0

    def add(self, loss_d: torch.Tensor, loss_g: torch.Tensor) -> None:
        self.sums += torch.stack([loss_d, loss_g])
        self.count += 1

    def due(self, it: int) -> bool:
        return it % self.every == 0

    def read(self) -> dict:
        """Mean losses since the last read (host sync); NaN/inf where a loss was not finite."""
        means = (self.sums / max(self.count, 1)).tolist()
        self.sums.zero_()
        self.count = 0
        return {"loss_d": means[0], "loss_g": means[1]}

    def state_dict(self) -> dict:
        return {"loss_sums": self.sums.detach().cpu(), "loss_count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.sums.copy_(state["loss_sums"].to(self.sums.device))
        self.count = int(state["loss_count"])
