"""D as a probability that a point is real, for the evaluators that compare it with the
optimal D* (the 2D mixtures, where p_data is known). `step` is a training step
(step.GANStep): its D, objective, remedies and autocast."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from harness.evaluate.metrics import LOWER, register_metric

INF = float("inf")
# What D says about the game, as the objectives log it at the trainer's log points (objectives/*.py
# `diagnostics`), and D's distance from the optimal D* that this module's critic makes
# measurable: the report's game panel (Equilibrium) draws every metric declared with curve=True.
register_metric("d_mean_real", direction=None, range=(-INF, INF), group="game", order=7,
                description="D's mean output on a real batch (the default diagnostic)")
register_metric("d_mean_fake", direction=None, range=(-INF, INF), group="game", order=8,
                description="D's mean output on a generated batch")
register_metric("d_prob_real", direction=None, range=(0, 1), group="game", curve=True, reference=0.5, order=1,
                description="D's mean probability that real samples are real (1/2 at the GAN equilibrium)")
register_metric("d_prob_fake", direction=None, range=(0, 1), group="game", curve=True, reference=0.5, order=2,
                description="D's mean probability that generated samples are real (1/2 at the GAN equilibrium)")
register_metric("loss_d_minus_2log2", direction=None, range=(-INF, INF), group="game", curve=True, order=3,
                description="D's loss minus its equilibrium value 2 log 2 (Goodfellow et al. 2014)")
register_metric("loss_g_ns_minus_log2", direction=None, range=(-INF, INF), group="game", curve=True, order=4,
                description="G's non-saturating loss minus its equilibrium value log 2")
register_metric("w1_estimate", direction=None, range=(-INF, INF), group="game", curve=True, order=5,
                description="the critic's estimate of W1, E D(x) - E D(G(z)) (Wasserstein objectives)")
register_metric("divergence_estimate", direction=None, range=(-INF, INF), group="game", curve=True, order=6,
                description="the f-divergence's variational lower bound, -(D's loss) (f-GAN)")
register_metric("d_gap_mean_abs", direction=LOWER, range=(0, 1), group="game", curve=True, order=24,
                description="mean |D(x) - D*(x)|, D* = p_data / (p_data + p_g) by a KDE (2D mixtures, given a critic)")


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
