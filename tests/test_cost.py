"""The FLOP estimate a dry run prices a study with, against an exact count of the harness's step."""
import pytest
import torch

from harness.config import from_dict
from harness.cost import count_flops, iteration_flops
from harness.remedies.base import samples_per_input
from harness.space import Arch
from harness.train import build_step
from harness.trial import Trial, data_shape, z_dim

ARCHS = [Arch(depth_g=4, depth_d=4, filters_g=32, filters_d=32),
         Arch(nonlin_g="tanh", depth_g=8, depth_d=12, filters_g=64, filters_d=32, norm_d=False)]


def exact_iteration_flops(trial: Trial) -> int:
    exp, objective = trial.experiment, trial.make_objective()
    with torch.device("meta"):
        step = build_step(trial.arch, objective, data_shape(exp), z_dim(exp), torch.device("meta"))
        draw = exp.budget.batch_size * samples_per_input(objective.remedies)   # as train.Session draws
        real = torch.empty(draw, *data_shape(exp))
        z = torch.empty(draw, z_dim(exp))

    def iteration():
        for _ in range(objective.settings.n_critic):
            step.discriminator(real, z)
        step.generator(z, real=real)
    return count_flops(iteration)


@pytest.mark.parametrize("arch", ARCHS, ids=["small", "mixed"])
@pytest.mark.parametrize("objective", ["gan", "wgan-gp", "sngan", "gan+pack:4", "gan+unrolled:3",
                                       "gan+feature-matching", "fgan-js+minibatch-stddev", "gan+minibatch-disc",
                                       "gan+r1:10", "lsgan+dragan:10", "sngan+r1:1+gp:10"])
def test_estimate_is_within_a_quarter_of_the_exact_count(arch, objective):
    trial = Trial(from_dict({"objectives": [objective], "budget": {"batch_size": 16}}), arch, objective, 0)
    exact, estimate = exact_iteration_flops(trial), iteration_flops(trial)
    assert exact > 0 and estimate == pytest.approx(exact, rel=0.25), (exact, estimate)


def test_a_penalty_is_priced_only_where_the_method_has_one():
    """Each penalty adds its D passes to every D step, and nothing else does: a family setting
    cannot price a penalty the family does not apply (gp_weight is wgan-gp's alone)."""
    from harness.cost import forward_flops
    from harness.penalties import PENALTIES

    def trial(method):
        return Trial(from_dict({"dataset": "ring8", "objectives": [method], "budget": {"batch_size": 16}}),
                     ARCHS[0], method, 0)
    d = forward_flops(trial("gan"))[1]
    for name, cls in PENALTIES.items():
        assert iteration_flops(trial(f"gan+{name}:10")) - iteration_flops(trial("gan")) == 16 * cls.d_forwards * d
    assert iteration_flops(trial("wgan-gp@gp_weight=0")) < iteration_flops(trial("wgan-gp"))
    assert exact_iteration_flops(trial("wgan-gp@gp_weight=0")) < exact_iteration_flops(trial("wgan-gp"))


def exact_conditional_flops(trial: Trial) -> int:
    from harness.conditional import ConditionalStep
    from harness.data import get_dataset_spec
    from harness.nets.conditional import build_conditional_discriminator, build_conditional_generator
    exp, objective, arch = trial.experiment, trial.make_objective(), trial.arch
    k, b, s = get_dataset_spec(exp.dataset).num_classes, exp.budget.batch_size, objective.settings
    with torch.device("meta"):
        G = build_conditional_generator(arch, data_shape(exp), z_dim(exp), k)
        D = build_conditional_discriminator(arch, data_shape(exp), k, s.d_norm, spectral=s.spectral_norm)
        step = ConditionalStep(G, D, objective, *objective.optimizers(G, D, False), k, None)
        real = (torch.empty(b, *data_shape(exp)), torch.zeros(b, dtype=torch.long))
        z = torch.empty(b, z_dim(exp))

    def iteration():
        for _ in range(s.n_critic):
            step.discriminator(real, z)
        step.generator(z)
    return count_flops(iteration)


@pytest.mark.parametrize("dataset", ["fashion_mnist", "ring8"])
@pytest.mark.parametrize("objective", ["gan", "wgan-gp", "sngan+instance-noise"])
def test_conditional_trials_are_priced_within_a_quarter(dataset, objective):
    e = from_dict({"dataset": dataset, "conditional": True, "objectives": [objective], "budget": {"batch_size": 16}})
    trial = Trial(e, ARCHS[0], objective, 0)
    exact, estimate = exact_conditional_flops(trial), iteration_flops(trial)
    plain = iteration_flops(Trial(from_dict({"dataset": dataset, "objectives": [objective],
                                             "budget": {"batch_size": 16}}), ARCHS[0], objective, 0))
    assert exact > 0 and estimate == pytest.approx(exact, rel=0.25), (exact, estimate)
    assert estimate > plain   # the one-hot label widens G's input (and the 2D D's)
