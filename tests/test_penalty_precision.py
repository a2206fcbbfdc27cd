"""train.penalty_precision: the penalties' double backward under the trial's bf16 autocast.

The numerical check: on a fixed batch, the per-sample gradient norm taken in bf16 is, on
average over the batch, within DEPTH x 2^-8 of the fp32 one. Why that tolerance: bf16 keeps
8 significant bits, so rounding a value moves it by at most 2^-9 relative; each layer of D
rounds its output in the forward pass and its input gradient in the backward pass (two
roundings, 2^-8), while sums accumulate in fp32 (oneDNN and autocast do), so the error grows
with the number of layers the gradient passes, not with their width: D's depth times 2^-8 is
the linear worst case. Measured on the harness's DCGAN critics (batch 16-32, 4 seeds): a mean
of 0.2-0.4 % at depth 4 (bound 1.6 %) and 0.6-0.7 % at depth 8 (bound 3.1 %). The largest
single sample's error is a tail (up to 3.6 % at depth 4 with 8 filters) and is not bounded
here; what Adam receives, the penalty's gradient on D's weights, keeps a cosine above 0.998.
bf16 is emulated, slowly, on a CPU without bf16 units: the fast test uses 8 filters (the
bound does not depend on the width), the slow one the quick study's 32 and depth 8 too.
"""
import math

import pytest
import torch

from harness.bench.penalty_precision import gradient_norm_error
from harness.config import from_dict
from harness.errors import ConfigError
from harness.objectives import get_objective
from harness.penalties import input_gradient, penalty_autocast
from harness.space import Arch
from harness.step import build_step
from harness.train import Session
from harness.trial import Trial

UNIT = 2.0 ** -8


def _arch(depth: int, filters: int) -> Arch:
    arch = Arch(depth_g=depth, depth_d=depth, filters_g=32, filters_d=32)
    object.__setattr__(arch, "filters_g", filters)   # off the space's grid: a narrow, fast critic
    object.__setattr__(arch, "filters_d", filters)
    return arch


def _check(arch: Arch, objective: str, batch: int) -> None:
    e = gradient_norm_error(arch, objective, batch=batch)
    assert 0 < e["mean_rel_error"] <= arch.depth_d * UNIT, e     # > 0: bf16 really ran
    # what Adam gets: the penalty's gradient on D's weights points the same way
    assert e["weight_grad_cosine"] > 0.99, e


@pytest.mark.parametrize("objective", ["wgan-gp", "gan+r1:10"])
def test_the_bf16_gradient_norm_is_within_depth_roundings_of_fp32(objective):
    _check(_arch(4, 8), objective, batch=16)


@pytest.mark.slow   # bf16 is emulated on a CPU without bf16 units: seconds per call at this size
@pytest.mark.parametrize("depth", [4, 8])
@pytest.mark.parametrize("objective", ["wgan-gp", "gan+r1:10"])
def test_the_bound_holds_at_the_quick_studys_size(objective, depth):
    _check(_arch(depth, 32), objective, batch=32)


def test_the_default_is_fp32_and_bit_identical_inside_the_trainers_autocast():
    """penalty_autocast(None) is the fp32 path: the same gradient inside a bf16 autocast block
    as outside it, and the same as before the setting existed (autocast off)."""
    torch.manual_seed(0)
    D = build_step(Arch(filters_g=32, filters_d=32), get_objective("wgan-gp"), (1, 32, 32), 8,
                   torch.device("cpu")).D
    x = torch.rand(4, 1, 32, 32)
    outside = input_gradient(D, x.clone())
    with torch.autocast("cpu", dtype=torch.bfloat16), penalty_autocast(None):
        inside = input_gradient(D, x.clone())
    with penalty_autocast(torch.bfloat16):
        low = input_gradient(D, x.clone())
    assert outside.dtype == inside.dtype == low.dtype == torch.float32
    assert torch.equal(outside, inside) and not torch.equal(outside, low)


def _experiment(**train):
    return from_dict({"dataset": "ring8", "objectives": ["wgan-gp"], "budget": {"iterations": 4, "batch_size": 16},
                      "eval": {"evaluator": "toy2d", "n_samples": 200}, "train": train})


ARCH_2D = Arch(depth_g=4, depth_d=4, filters_g=32, filters_d=32)


def test_the_session_runs_the_penalty_in_its_autocast_dtype_only_when_asked():
    cases = {("bf16", "autocast"): torch.bfloat16, ("bf16", "fp32"): None, ("fp32", "autocast"): None}
    for (precision, pp), expected in cases.items():
        s = Session(Trial(_experiment(precision=precision, penalty_precision=pp), ARCH_2D, "wgan-gp", 0))
        assert s.step.penalty_dtype == expected, (precision, pp)


@pytest.mark.slow   # emulated bf16 on a CPU without bf16 units: seconds per wgan-gp iteration
def test_the_setting_reaches_the_penalty_in_a_real_step():
    """The same seed twice with the penalty in fp32 gives the same D loss, under autocast another."""
    losses = {}
    for pp in ("fp32", "autocast", "fp32"):
        s = Session(Trial(_experiment(precision="bf16", penalty_precision=pp), ARCH_2D, "wgan-gp", 0))
        s.iteration()
        losses.setdefault(pp, []).append(s.losses.read()["loss_d"])
    assert all(math.isfinite(v) for vs in losses.values() for v in vs)
    assert losses["fp32"][0] == losses["fp32"][1] != losses["autocast"][0]


def test_a_bad_penalty_precision_is_a_config_error_naming_the_field():
    with pytest.raises(ConfigError, match=r"train\.penalty_precision.*'bf16' is not one of \['fp32', 'autocast'\]"):
        _experiment(penalty_precision="bf16")
