"""The FLOP estimate a dry run prices a study with, against an exact count of the harness's step."""
import pytest
import torch

from harness.config import from_dict
from harness.cost import count_flops, iteration_flops
from harness.space import Arch
from harness.train import build_step
from harness.trial import Trial, data_shape, z_dim

ARCHS = [Arch(depth_g=4, depth_d=4, filters_g=32, filters_d=32),
         Arch(nonlin_g="tanh", depth_g=8, depth_d=12, filters_g=64, filters_d=32, norm_d=False)]


def exact_iteration_flops(trial: Trial) -> int:
    exp, objective = trial.experiment, trial.make_objective()
    with torch.device("meta"):
        step = build_step(trial.arch, objective, data_shape(exp), z_dim(exp), torch.device("meta"))
        real = torch.empty(exp.budget.batch_size, *data_shape(exp))
        z = torch.empty(exp.budget.batch_size, z_dim(exp))

    def iteration():
        for _ in range(objective.settings.n_critic):
            step.discriminator(real, z)
        step.generator(z, real=real)
    return count_flops(iteration)


@pytest.mark.parametrize("arch", ARCHS, ids=["small", "mixed"])
@pytest.mark.parametrize("objective", ["gan", "wgan-gp", "sngan", "gan+pack:4", "gan+unrolled:3",
                                       "gan+feature-matching", "fgan-js+minibatch-stddev"])
def test_estimate_is_within_a_quarter_of_the_exact_count(arch, objective):
    trial = Trial(from_dict({"objectives": [objective], "budget": {"batch_size": 16}}), arch, objective, 0)
    exact, estimate = exact_iteration_flops(trial), iteration_flops(trial)
    assert exact > 0 and estimate == pytest.approx(exact, rel=0.25), (exact, estimate)
