"""Penalties (harness.penalties): each is a real step on tiny inputs, is zero where theory says,
runs in fp32 under the trainer's bf16 autocast, composes with any objective through the method
string, and is priced by the dry run only where a method has one."""
import io
import json
import math

import pytest
import torch
from torch import nn

from harness.config import from_dict
from harness.errors import ConfigError, UnknownName
from harness.objectives import get_objective
from harness.penalties import (PENALTIES, DRAGAN, GradientPenalty, Penalty, get_penalty, gradient_penalty,
                               register_penalty)
from harness.remedies import REMEDIES, split_method
from harness.space import Arch
from harness.step import build_step

ARCH = Arch(filters_g=32, filters_d=32)
SHAPES = {"images": (1, 32, 32), "2d": (2,)}


def linear_critic(*weights: float) -> nn.Linear:
    critic = nn.Linear(len(weights), 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([weights]))
    return critic


def test_the_registry_names_every_penalty_and_refuses_a_remedys_name():
    assert set(PENALTIES) == {"gp", "r1", "dragan"}
    assert not set(PENALTIES) & set(REMEDIES)          # one namespace after '+'
    with pytest.raises(UnknownName, match=r"unknown penalty 'r2'; valid: \['dragan', 'gp', 'r1'\]"):
        get_penalty("r2")

    class Clash(Penalty):
        name = "pack"
    with pytest.raises(ValueError, match="a remedy has that name already"):
        register_penalty(Clash)
    assert "pack" not in PENALTIES and REMEDIES["pack"].name == "pack"


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("penalty", sorted(PENALTIES))
def test_one_real_step_with_every_penalty(penalty, shape):
    """gan+PENALTY:10: the penalty is finite and positive on a random D, its gradient reaches
    every D weight layer, and a D step and a G step train both nets."""
    torch.manual_seed(0)
    step = build_step(ARCH, get_objective(f"gan+{penalty}:10"), shape, 8, torch.device("cpu"))
    real = torch.rand(8, *shape) * 2 - 1
    fake = step.G(torch.randn(8, 8)).detach()
    value = step.objective.penalty(step.D, real, fake)
    assert value.dtype == torch.float32 and math.isfinite(value.item()) and value.item() > 0
    weights = [m.weight for m in step.D.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    grads = torch.autograd.grad(value, weights, allow_unused=True)
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    before = [[p.detach().clone() for p in net.parameters()] for net in (step.G, step.D)]
    loss_d = step.discriminator(real, torch.randn(8, 8))
    loss_g = step.generator(torch.randn(8, 8))
    assert math.isfinite(loss_d.item()) and math.isfinite(loss_g.item())
    for old, net in zip(before, (step.G, step.D)):
        assert any(not torch.equal(a, b) for a, b in zip(old, net.parameters()))


def test_r1_is_zero_for_a_d_constant_in_x_and_half_gamma_w_squared_for_a_linear_d():
    real, fake = torch.randn(16, 3), torch.randn(16, 3)
    constant = linear_critic(0.0, 0.0, 0.0)
    with torch.no_grad():
        constant.bias.fill_(2.5)
    assert get_penalty("r1", 10.0)(constant, real, fake).item() == 0.0
    assert get_penalty("r1", 10.0)(linear_critic(1.0, 2.0, 2.0), real, fake).item() == pytest.approx(10 / 2 * 9)


def test_r1_looks_at_real_data_only():
    """D(x) = x_0^2 / 2 has gradient norm |x_0|: R1 depends on the real batch, not on the fake one."""
    D = lambda x: x[:, :1] ** 2 / 2
    real = torch.tensor([[1.0, 0.0], [3.0, 5.0]])
    r1 = get_penalty("r1", 2.0)
    assert r1(D, real, torch.randn(2, 2)).item() == pytest.approx((1 + 9) / 2)
    assert r1(D, real, torch.randn(2, 2) * 100).item() == pytest.approx((1 + 9) / 2)


@pytest.mark.parametrize("penalty", ["gp", "dragan"])
def test_two_sided_penalties_are_zero_for_a_unit_gradient_and_grow_with_the_norm(penalty):
    """A linear D with ||w|| = 1 has unit gradient everywhere, on every line: the two-sided
    penalties vanish; with ||w|| = 5 they are lambda (5 - 1)^2 wherever they look."""
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    assert get_penalty(penalty, 10.0)(linear_critic(0.6, 0.8), real, fake).item() == pytest.approx(0.0, abs=1e-10)
    assert get_penalty(penalty, 10.0)(linear_critic(3.0, 4.0), real, fake).item() == pytest.approx(10 * 16)


def test_gp_looks_between_real_and_fake_and_dragan_around_real():
    """Where each penalty evaluates D: GP on segments from fake to real, one epsilon per sample;
    DRAGAN within [x, x + C std(batch)] per element around the real batch."""
    seen = []
    D = lambda x: seen.append(x.detach().clone()) or x.sum(1, keepdim=True)
    real, fake = torch.zeros(500, 2), torch.ones(500, 2)
    get_penalty("gp")(D, real, fake)
    on_segment = seen[-1]
    assert torch.allclose(on_segment[:, 0], on_segment[:, 1])           # one epsilon per sample
    assert 0 <= on_segment.min() and on_segment.max() <= 1 and on_segment.std() > 0.2
    real = torch.randn(500, 2)
    get_penalty("dragan")(D, real, fake)
    delta = seen[-1] - real
    assert delta.min() >= 0 and delta.max() <= DRAGAN.spread * real.std() + 1e-6
    assert delta.max() > 0.5 * DRAGAN.spread * real.std()


@pytest.mark.parametrize("penalty", sorted(PENALTIES))
def test_every_penalty_runs_in_fp32_under_the_trainers_bf16_autocast(penalty):
    """The trainer runs D in bf16 under autocast (train.build_step's amp_dtype); a penalty's
    double backward takes D in fp32 with autocast off, as WGAN-GP's always has: the same value
    inside the autocast block as outside it, and a whole bf16 step is finite."""
    torch.manual_seed(0)
    step = build_step(ARCH, get_objective(f"gan+{penalty}:10"), (1, 32, 32), 8, torch.device("cpu"),
                      amp_dtype=torch.bfloat16)
    real = torch.rand(4, 1, 32, 32) * 2 - 1
    fake = step.G(torch.randn(4, 8)).detach()
    torch.manual_seed(1)
    outside = step.objective.penalty(step.D, real, fake)
    torch.manual_seed(1)
    with step.autocast():
        inside = step.objective.penalty(step.D, real, fake)
    assert inside.dtype == torch.float32 and torch.equal(inside, outside)
    assert math.isfinite(step.discriminator(real, torch.randn(4, 8)).item())


def test_wgan_gp_is_the_wasserstein_loss_with_the_gp_penalty():
    """`wgan-gp` builds harness.penalties' gp at its gp_weight: the same term `+gp` adds."""
    objective = get_objective("wgan-gp")
    assert [(p.name, p.arg) for p in objective.all_penalties] == [("gp", 10.0)]
    assert [p.arg for p in get_objective("wgan-gp@gp_weight=5").all_penalties] == [5.0]
    assert get_objective("wgan-gp@gp_weight=0").penalty(None, None, None) is None
    D, real, fake = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)), torch.randn(8, 2), torch.randn(8, 2)
    torch.manual_seed(3)
    builtin = objective.penalty(D, real, fake)
    torch.manual_seed(3)
    assert torch.equal(builtin, GradientPenalty(10.0)(D, real, fake))
    torch.manual_seed(3)
    assert torch.equal(builtin, 10.0 * gradient_penalty(D, real, fake))


def test_penalties_and_remedies_compose_in_one_method():
    method = split_method("lsgan@n_critic=2+pack:2+dragan:5+r1")
    assert method.base == "lsgan@n_critic=2"
    assert [r.name for r in method.remedies] == ["pack"]
    assert [(p.name, p.arg) for p in method.penalties] == [("dragan", 5.0), ("r1", 10.0)]
    objective = get_objective("lsgan+pack:2+dragan:5+r1")
    assert [p.label for p in objective.all_penalties] == ["dragan:5", "r1:10"]
    assert get_objective("gan").penalty(None, None, None) is None      # no penalty: no term, no cost


@pytest.mark.parametrize("method,message", [
    ("gan@gp_weight=10", r"gp_weight: gan does not read it \(only wgan-gp does\).*gan\+gp:10"),
    ("lsgan@gp_weight=2.5", r"gp_weight: lsgan does not read it \(only wgan-gp does\).*lsgan\+gp:2.5"),
    ("gan@clip=0.01", r"clip: gan does not read it \(only wgan-clip does\)"),
    ("wgan-gp@clip=0.01", r"clip: wgan-gp does not read it"),
    ("wgan-gp+gp:10", r"wgan-gp applies the penalty 'gp' already.*write wgan-gp@gp_weight=10 instead of \+gp:10"),
    ("gan+r1:0", "the weight must be a finite number > 0"),
    ("gan+gp:inf", "the weight must be a finite number > 0"),
    ("gan+r1:x", "GAMMA must be a float"),
    ("gan+r1:1+r1:2", "'r1' is named twice"),
    ("gan+r2:1", r"unknown remedy or penalty 'r2'; remedies: .*penalties: \['dragan', 'gp', 'r1'\]"),
])
def test_a_bad_penalty_or_an_unread_setting_is_a_config_error_naming_it(method, message):
    with pytest.raises(ConfigError, match=message) as err:
        from_dict({"dataset": "ring8", "objectives": ["gan", method]})
    assert err.value.field == "objectives[1]"


def test_an_unread_setting_in_the_overrides_is_refused_by_field():
    with pytest.raises(ConfigError, match="does not read it") as err:
        from_dict({"dataset": "ring8", "objectives": ["gan"], "objective_overrides": {"gan": {"gp_weight": 10.0}}})
    assert err.value.field == "objective_overrides.gan.gp_weight"
    assert from_dict({"dataset": "ring8", "objectives": ["wgan-gp@gp_weight=5", "wgan-clip@clip=0.02", "gan+gp:10"],
                      "objective_overrides": {"wgan-gp": {"gp_weight": 1.0}}})


def test_list_penalties_names_each_with_its_source(capsys):
    from harness.cli import main
    assert main(["list", "penalties"]) == 0
    out = capsys.readouterr().out
    for name, cls in PENALTIES.items():
        assert f"{name}:" in out and cls.source in out
    assert "Mescheder et al. 2018" in out and "Gulrajani et al. 2017" in out and "Kodali et al. 2017" in out


@pytest.mark.parametrize("method,message", [
    ("gan@gp_weight=10", "gp_weight: gan does not read it"),
    ("wgan-gp+gp:10", "write wgan-gp@gp_weight=10 instead of +gp:10"),
    ("gan+r1:-1", "the weight must be a finite number > 0"),
])
def test_train_refuses_a_bad_penalty_with_exit_2_before_training(method, message, tmp_path, capsys, monkeypatch):
    from harness import train
    from harness.cli import main
    monkeypatch.setattr(train, "run_trial", lambda *a, **k: pytest.fail("trained"))
    path = tmp_path / "ring.yaml"
    path.write_text("dataset: ring8\nobjectives: [gan]\nbudget: {iterations: 2}\n")
    assert main(["train", str(path), "--objective", method]) == 2
    assert message in capsys.readouterr().err


def ring_experiment(methods, iterations):
    return from_dict({"dataset": "ring8", "objectives": methods, "budget": {"iterations": iterations, "batch_size": 32},
                      "eval": {"n_samples": 256}, "train": {"threads": 1, "init": "pytorch"}})


TOY_ARCH = Arch(nonlin_g="relu", nonlin_d="relu", depth_g=4, depth_d=4, norm_g=False, norm_d=False,
                filters_g=32, filters_d=32)


def test_penalized_methods_train_on_the_ring_and_the_penalty_acts(monkeypatch):
    """gan+r1:10, gan+gp:10 and lsgan+dragan:10 run a real trial (30 iterations, evaluation
    included) to the end with finite losses, their penalty taken at every D step."""
    from harness.train import run_trial
    from harness.trial import Trial
    calls = []
    real_call = Penalty.__call__
    monkeypatch.setattr(Penalty, "__call__", lambda self, *a: calls.append(self.label) or real_call(self, *a))
    methods = ["gan+r1:10", "gan+gp:10", "lsgan+dragan:10"]
    e = ring_experiment(methods, 30)
    for method in methods:
        losses, calls[:] = [], []
        record = run_trial(Trial(e, TOY_ARCH, method, 0), on_metrics=lambda step, m: losses.append(m.get("loss_d")))
        assert record.status in ("ok", "collapsed") and record.iterations == 30, record.error
        assert set(record.metrics) >= {"hq_share", "modes_covered"}
        assert losses and all(math.isfinite(v) for v in losses if v is not None)
        assert calls == [method.split("+")[1]] * 30         # n_critic 1: once per iteration


@pytest.mark.slow   # about 10 s of meta-device pricing; fast twin: tests/test_cost.py's penalty pricing test
def test_the_dry_run_prices_a_penalty_only_where_a_method_has_one(monkeypatch):
    """The dry run's FLOPs: each penalized method costs its loss's plain price plus the same
    penalty term (the losses themselves are not priced: gan and lsgan share their networks).
    Its rate measurement is stubbed: it times a real session, which is not the price."""
    from harness.cost import iteration_flops
    from harness.study.sweep import dry_run as dry_run_module
    from harness.trial import trials_of
    flops = {}
    monkeypatch.setattr(dry_run_module, "seconds_per_iteration", lambda trial, threads: 0.01)
    monkeypatch.setattr(dry_run_module, "iteration_flops",
                        lambda trial: flops.setdefault(trial.objective, iteration_flops(trial)))
    methods = ["gan", "gan+r1:10", "gan+gp:10", "lsgan+dragan:10"]
    e = ring_experiment(methods, 10)
    e.space.n = 1
    out = io.StringIO()
    summary = dry_run_module.dry_run(e, trials_of(e), {"cpu": 1}, {"CPU": 1}, e.thresholds, out=out)
    assert [json.loads(line)["objective"] for line in out.getvalue().splitlines()[:-1]] == methods
    assert summary["training_flop"] == sum(flops.values()) * 10
    assert flops["gan+r1:10"] == flops["gan+gp:10"] == flops["lsgan+dragan:10"] > flops["gan"]
