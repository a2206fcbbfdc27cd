import math

import pytest
import torch
from torch import nn

from harness.objectives import OBJECTIVES, get_objective
from harness.objectives.wgan import gradient_penalty
from harness.space import Arch
from harness.step import build_step

ARCHS = {
    "deepest-widest": Arch(depth_g=20, depth_d=20, filters_g=128, filters_d=128),
    "shallowest-narrowest": Arch(depth_g=4, depth_d=4, filters_g=32, filters_d=32),
    "mixed-no-norm": Arch(nonlin_g="softplus", nonlin_d="tanh", depth_g=8, depth_d=12,
                          norm_g=False, norm_d=False, filters_g=32, filters_d=64),
}


@pytest.mark.parametrize("arch_name", sorted(ARCHS))
@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_one_training_step_changes_weights(name, arch_name):
    torch.manual_seed(0)
    step = build_step(ARCHS[arch_name], get_objective(name), (1, 32, 32), z_dim=16, device=torch.device("cpu"))
    before_g = [p.detach().clone() for p in step.G.parameters()]
    before_d = [p.detach().clone() for p in step.D.parameters()]
    real = torch.rand(4, 1, 32, 32) * 2 - 1
    loss_d = step.discriminator(real, torch.randn(4, 16))
    loss_g = step.generator(torch.randn(4, 16))
    assert math.isfinite(loss_d.item()) and math.isfinite(loss_g.item())
    assert any(not torch.equal(a, b) for a, b in zip(before_g, step.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(before_d, step.D.parameters()))


def test_losses_match_hand_computed_values():
    r, f = torch.tensor([[2.0], [0.0]]), torch.tensor([[-1.0], [1.0]])
    sp = lambda x: math.log1p(math.exp(x))
    gan = get_objective("gan")
    assert gan.d_loss(r, f).item() == pytest.approx((sp(-2) + sp(0)) / 2 + (sp(-1) + sp(1)) / 2)
    assert gan.g_loss(f).item() == pytest.approx((sp(1) + sp(-1)) / 2)
    assert get_objective("gan-minimax").g_loss(f).item() == pytest.approx(-(sp(-1) + sp(1)) / 2)
    for name in ("wgan-clip", "wgan-gp"):
        w = get_objective(name)
        assert w.d_loss(r, f).item() == pytest.approx(0.0 - 1.0)
        assert w.g_loss(f).item() == pytest.approx(0.0)
    sn = get_objective("sngan")
    assert sn.d_loss(r, f).item() == pytest.approx((0 + 1) / 2 + (0 + 2) / 2)
    assert sn.g_loss(f).item() == pytest.approx(0.0)
    ls = get_objective("lsgan")
    assert ls.d_loss(r, f).item() == pytest.approx(0.5 * (1 + 1) / 2 + 0.5 * (1 + 1) / 2)
    assert ls.g_loss(f).item() == pytest.approx(0.5 * (4 + 0) / 2)


def test_gradient_penalty_of_a_linear_critic():
    critic = nn.Linear(5, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 0.0, 4.0, 0.0, 0.0]]))
    real, fake = torch.randn(8, 5), torch.randn(8, 5)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx((5.0 - 1.0) ** 2)


def test_clipping_keeps_every_d_weight_in_range():
    torch.manual_seed(0)
    step = build_step(Arch(filters_g=32, filters_d=32), get_objective("wgan-clip", lr_d=0.5),
                      (1, 32, 32), 16, torch.device("cpu"))
    step.discriminator(torch.rand(4, 1, 32, 32), torch.randn(4, 16))
    c = step.objective.settings.clip
    assert all(p.abs().max() <= c for p in step.D.parameters())
    assert max(p.detach().abs().max().item() for p in step.D.parameters()) == pytest.approx(c)  # it did bind


def test_sngan_critic_stays_spectrally_normalized_through_training():
    """Every weight layer of the harness's SN-GAN D, as the step trains it (requires_grad
    toggled between D and G updates), has largest singular value ~1 (weights of convs
    flattened per output channel, as torch's spectral_norm normalizes them)."""
    torch.manual_seed(0)
    step = build_step(Arch(depth_d=8, filters_g=32, filters_d=32), get_objective("sngan"), (1, 32, 32), 16,
                      torch.device("cpu"))
    layers = [m for m in step.D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        for m in layers:
            m.parametrizations.weight.original.mul_(10)    # far from 1 before training
    for _ in range(30):   # each training-mode forward runs one power iteration
        step.discriminator(torch.rand(4, 1, 32, 32) * 2 - 1, torch.randn(4, 16))
        step.generator(torch.randn(4, 16))
    sigmas = [torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item() for m in layers]
    assert len(sigmas) == 8 and sigmas == pytest.approx([1.0] * 8, abs=0.05)


def test_published_settings_reach_the_networks_and_optimizers():
    """Each objective's settings arrive where they act: D's norm layers, the optimizer class,
    its betas, D's weight decay; an override replaces exactly the setting it names."""
    arch = Arch(filters_g=32, filters_d=32)
    def built(name, **overrides):
        return build_step(arch, get_objective(name, **overrides), (1, 32, 32), 16, torch.device("cpu"))
    gp = built("wgan-gp")
    assert any(isinstance(m, nn.GroupNorm) for m in gp.D.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in gp.D.modules())
    assert gp.opt_d.param_groups[0]["betas"] == (0.0, 0.9) and gp.opt_d.param_groups[0]["weight_decay"] == 1e-3
    assert gp.objective.settings.n_critic == 5
    clip = built("wgan-clip")
    assert isinstance(clip.opt_d, torch.optim.RMSprop) and clip.opt_d.param_groups[0]["lr"] == 5e-5
    assert isinstance(built("gan").opt_g, torch.optim.Adam)
    assert built("gan", lr_d=1e-3).opt_d.param_groups[0]["lr"] == 1e-3
    assert built("gan", lr_d=1e-3).opt_g.param_groups[0]["lr"] == 2e-4
    with pytest.raises(KeyError, match="valid"):
        get_objective("gan", learning_rate=1e-3)
    with pytest.raises(KeyError, match="wgan-gp"):
        get_objective("wgan-gpp")


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_d_weight_decay_follows_d_normalization_for_every_objective(name):
    """WGAN-GP appendix B: 1e-3 on a normalized D helps both algorithms, so every objective
    gets it where D has norm layers; SN-GAN's D has none (spectral norm is its normalization)."""
    def decay(norm_d):
        step = build_step(Arch(norm_d=norm_d, filters_g=32, filters_d=32), get_objective(name), (1, 32, 32), 16,
                          torch.device("cpu"))
        has_norm = any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for m in step.D.modules())
        return step.opt_d.param_groups[0]["weight_decay"], has_norm
    assert decay(False) == (0.0, False)
    assert decay(True) == ((0.0, False) if name == "sngan" else (1e-3, True))


def test_d_probability_is_declared_where_the_optimum_is_p_over_p_plus_q():
    """gan, gan-minimax, fgan-js: sigmoid of the output; lsgan (targets 0/1): the output itself;
    everything else: None (no probability with that optimum)."""
    out = torch.tensor([[-2.0], [0.0], [3.0]])
    expected = {"gan": torch.sigmoid(out), "gan-minimax": torch.sigmoid(out), "fgan-js": torch.sigmoid(out),
                "lsgan": out}
    for name in OBJECTIVES:
        got = get_objective(name).d_probability(out)
        if name in expected:
            assert torch.allclose(got, expected[name]), name
        else:
            assert got is None, name


def test_fgan_js_probability_is_its_optimal_t():
    """T = g_f(v) = log 2 - softplus(-v) at the optimum equals f'(p/q) = log(2p / (p + q)):
    so sigmoid(v) = p / (p + q)."""
    obj = get_objective("fgan-js")
    v = torch.linspace(-5, 5, 11)
    p_over_q = obj.d_probability(v) / (1 - obj.d_probability(v))
    assert torch.allclose(obj.activation(v), torch.log(2 * p_over_q / (p_over_q + 1)), atol=1e-5)


def test_settings_in_a_method_name_build_one_objective_at_several_settings():
    from harness.config import from_dict
    from harness.objectives import family_of, parse_settings
    from harness.trial import trials_of
    assert parse_settings("gan-minimax@n_critic=25") == ("gan-minimax", {"n_critic": 25})
    assert parse_settings("gan@lr_d=1e-3@spectral_norm=true@optimizer=rmsprop") == (
        "gan", {"lr_d": 1e-3, "spectral_norm": True, "optimizer": "rmsprop"})
    assert family_of("gan-minimax@n_critic=25+pack:2") == "gan-minimax"
    e = from_dict({"dataset": "ring8", "space": {"n": 1},
                   "objectives": ["gan", "gan@n_critic=5", "gan@n_critic=25+pack:2"],
                   "objective_overrides": {"gan": {"lr_d": 1e-3, "n_critic": 2}}})
    plain, five, packed = trials_of(e)
    assert [t.make_objective().settings.n_critic for t in (plain, five, packed)] == [2, 5, 25]   # the name wins
    assert all(t.make_objective().settings.lr_d == 1e-3 for t in (plain, five, packed))      # overrides hold
    assert five.id.endswith("-gan@n_critic=5-s0") and five.params()["objective"] == "gan@n_critic=5"
    assert five.params()["objective.n_critic"] == 5 and five.make_objective().method == "gan@n_critic=5"
    assert [r.name for r in packed.make_objective().remedies] == ["pack"]


@pytest.mark.parametrize("method,message", [
    ("gan@n_crit=5", "unknown objective setting 'n_crit'"),
    ("gan@n_critic=2.5", "n_critic must be an int"),
    ("gan@n_critic=0", "n_critic: must be a finite number > 0"),
    ("gan@n_critic", "written @NAME=VALUE"),
    ("gan@n_critic=", "written @NAME=VALUE"),
    ("gan@n_critic=2@n_critic=3", "given twice"),
    ("gan@lr_d=fast", "lr_d must be a float"),
    ("gan@lr_d=nan", "lr_d: must be a finite number"),
    ("gan@spectral_norm=yes", "spectral_norm must be a bool"),
    ("gan@optimizer=sgd", "optimizer: 'sgd' is not one of"),
    ("gann@n_critic=5", "unknown objective 'gann'"),
])
def test_bad_settings_in_a_method_name_are_config_errors(method, message):
    from harness.config import ConfigError, from_dict
    with pytest.raises(ConfigError, match=message) as err:
        from_dict({"dataset": "ring8", "objectives": ["gan", method]})
    assert err.value.field == "objectives[1]"


@pytest.mark.parametrize("name", ["gan", "gan-minimax"])
def test_gan_diagnostics_are_zero_gaps_at_the_equilibrium(name):
    """D = 1/2 everywhere (logit 0): probabilities 1/2, D's loss 2 log 2, the non-saturating
    G's loss log 2 (Goodfellow et al. 2014, Theorem 1); a D that tells them apart moves all."""
    obj = get_objective(name)
    zero = torch.zeros(64, 1)
    d = {k: float(v) for k, v in obj.diagnostics(zero, zero).items()}
    assert d == pytest.approx({"d_prob_real": 0.5, "d_prob_fake": 0.5, "loss_d_minus_2log2": 0.0,
                               "loss_g_ns_minus_log2": 0.0}, abs=1e-6)
    sure = {k: float(v) for k, v in obj.diagnostics(zero + 5, zero - 5).items()}
    assert sure["loss_d_minus_2log2"] < -1.3 and sure["loss_g_ns_minus_log2"] > 4   # D right, G's loss high


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_a_family_setting_is_refused_by_every_family_that_does_not_read_it(name):
    """clip is wgan-clip's, gp_weight wgan-gp's: any other family given one raises a ConfigError
    naming the setting (it would be logged as objective.SETTING and change nothing)."""
    from harness.errors import ConfigError
    from harness.objectives.base import FAMILY_SETTINGS
    assert OBJECTIVES[name].reads <= set(FAMILY_SETTINGS)
    for key in FAMILY_SETTINGS:
        if key in OBJECTIVES[name].reads:
            assert getattr(get_objective(name, **{key: 0.5}).settings, key) == 0.5
        else:
            with pytest.raises(ConfigError, match=f"^{key}: {name} does not read it") as err:
                get_objective(name, **{key: 0.5})
            assert err.value.field == key
    assert {n for n, cls in OBJECTIVES.items() if cls.reads} == {"wgan-clip", "wgan-gp"}
