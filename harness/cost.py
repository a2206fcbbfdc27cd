"""What a trial costs in floating-point operations, counted by torch.utils.flop_counter.

`count_flops(fn)` counts what `fn` runs. `iteration_flops(trial)` estimates one generator
iteration (n_critic D steps + one G step) from forward passes of G and D at batch 1 on
PyTorch's meta device (no memory, no compute), with the usual rule that a backward pass
costs about twice its forward pass (remedies add their own terms: packing's M samples from G per D input,
the unrolled lookahead's D passes, feature matching's real batch through D):

  D step   = G fwd + 2 D fwd (real, fake) + their backward (4 D fwd)          = G + 6 D
  penalty  = D fwd on its points + input gradient with a graph + its backward = 6 D
             (each of the method's harness.penalties, `Penalty.d_forwards`; none, nothing)
  G step   = G fwd + D fwd + D backward to the input + G backward              = 3 G + 3 D
             (+ D fwd on a real batch where the loss compares with reals: relativistic GANs)

all times the batch size. tests/test_cost.py checks the estimate against an exact count of
the harness's own step. Only convolutions and matrix products count (flop_counter's
formulas); norms, nonlinearities and the optimizer are a few per cent more.
"""
from __future__ import annotations

import torch

from .data import get_dataset_spec
from .remedies.base import samples_per_input
from .step import build_nets, d_input_shape
from .trial import Trial, data_shape, z_dim

BACKWARD_PER_FORWARD = 2


class _GlobalOnly:
    """Stands in for FlopCounterMode's ModuleTracker, whose backward hooks break
    torch.autograd.grad (the gradient penalty): 'A leaf node was passed to
    _will_engine_execute_node ...'. Totals are unaffected; per-module breakdowns are lost."""

    parents = {"Global"}

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False


def count_flops(fn) -> int:
    """FLOPs of the convolutions and matrix products `fn()` runs (forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()
    with counter:
        fn()
    return int(counter.get_total_flops())


# An evaluation: G makes eval.n_samples samples (a forward each) and the evaluator's network
# reads them; the real side's features are extracted once per sweep and cached
# (evaluate/fidelity.py). toy2d has no network: its exact W1 and KDE are timed instead
# (study/sweep/dry_run.py).
def extractor_flops(evaluator: str) -> int:
    """Forward FLOPs of the evaluator's feature network for one sample, counted on the meta
    device: torchvision's Inception-v3 at 299 x 299 (the architecture of torch-fidelity's
    inception-v3-compat, which resizes every image to 299), the shipped classifier at 32 x 32;
    0 for toy2d."""
    if evaluator == "toy2d":
        return 0
    with torch.device("meta"):
        if evaluator == "inception":
            from torchvision.models import inception_v3
            net, x = inception_v3(weights=None, aux_logits=False, init_weights=False), torch.empty(1, 3, 299, 299)
        else:
            from .evaluate.classifier import SmallCNN
            net, x = SmallCNN(), torch.empty(1, 1, 32, 32)
        with torch.no_grad():
            return count_flops(lambda: net.eval()(x))


def evaluations_per_trial(exp) -> int:
    """Every eval.every iterations and at the last (train._loop)."""
    every, iterations = exp.eval.every, exp.budget.iterations
    return 1 if not every else iterations // every + (1 if iterations % every else 0)


def evaluation_flops(trial: Trial, extractor: int) -> int:
    """FLOPs of one trial's evaluations: n_samples x (G forward + the extractor) each."""
    g, _ = forward_flops(trial)
    return evaluations_per_trial(trial.experiment) * trial.experiment.eval.n_samples * (g + extractor)


def forward_flops(trial: Trial) -> tuple[int, int]:
    """(G, D) forward FLOPs for one sample, on the meta device; a conditional pair gets a label."""
    exp, objective = trial.experiment, trial.make_objective()
    k = get_dataset_spec(exp.dataset).num_classes if exp.conditional else 0
    d_shape = d_input_shape(objective, data_shape(exp))   # packing widens D's input
    with torch.device("meta"):   # a one-hot y widens G's (and the 2D D's) input; the projection is a dot product
        G, D = build_nets(trial.arch, objective, data_shape(exp), z_dim(exp), k)
        label = (torch.zeros(1, dtype=torch.long),) if k else ()
        z = torch.empty(1, z_dim(exp))
        x = torch.empty(1, *d_shape)
        with torch.no_grad():
            return count_flops(lambda: G.eval()(z, *label)), count_flops(lambda: D.eval()(x, *label))


def iteration_flops(trial: Trial) -> int:
    """Estimated FLOPs of one generator iteration of `trial` (see the module docstring)."""
    g, d = forward_flops(trial)
    objective = trial.make_objective()
    s = objective.settings
    g *= samples_per_input(objective.remedies)   # packing: G makes M samples per (wider) D input
    penalties = sum(p.d_forwards for p in objective.all_penalties)   # 0 without a penalty
    d_step = g + 2 * d * (1 + BACKWARD_PER_FORWARD) + penalties * d
    g_step = (g + d) * (1 + BACKWARD_PER_FORWARD) + d * sum(r.extra_g_step_d_forwards for r in objective.remedies)
    if objective.needs_real_in_g_step and not any(r.replaces_g_loss for r in objective.remedies):
        g_step += d     # a relativistic loss: D's output on a real batch too, without a graph (step.GANStep)
    return trial.experiment.budget.batch_size * (s.n_critic * d_step + g_step)
