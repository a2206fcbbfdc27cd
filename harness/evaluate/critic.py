"""D as a probability that a point is real, for the evaluators that compare it with the
optimal D* (the 2D mixtures, where p_data is known). `step` is a training step
(train.GANStep): its D, objective, remedies and autocast."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def probability_critic(step) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """D's probability that each point is real, for evaluators that compare D with the optimal
    D* (`Evaluator.wants_critic`); None where that comparison has no meaning: the objective's
    output is no such probability (`Objective.d_probability`), a remedy makes D judge more than
    one sample (`Remedy.d_judges_one_sample`: packing, instance noise, the batch's spread), or
    D has batch norm (its output depends on the batch it is in). D runs in eval mode, so that
    the call changes nothing (spectral norm's power iteration), and is restored after."""
    if step.objective.d_probability(torch.zeros(1)) is None:
        return None
    if not all(r.d_judges_one_sample for r in step.remedies):
        return None
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in step.D.modules()):
        return None
    device = next(step.D.parameters()).device

    def critic(x: torch.Tensor) -> torch.Tensor:
        was_training = step.D.training
        step.D.eval()
        try:
            with torch.no_grad(), step.autocast():
                out = step.D(x.to(device)).float()
        finally:
            step.D.train(was_training)
        return step.objective.d_probability(out).cpu()
    return critic
