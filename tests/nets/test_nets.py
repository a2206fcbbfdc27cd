import pytest
import torch
from torch import nn

from harness.nets import build_discriminator, build_generator, count_weight_layers
from harness.nets.blocks import ScaledSoftplus, deal_round_robin
from harness.space import DEPTHS, PRESETS, Arch


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_depth_counts_weight_layers(depth, channels):
    arch = Arch(depth_g=depth, depth_d=depth, filters_g=32, filters_d=32)
    G = build_generator(arch, (channels, 32, 32), z_dim=16)
    D = build_discriminator(arch, (channels, 32, 32), "batch")
    assert count_weight_layers(G) == depth and count_weight_layers(D) == depth
    x = G(torch.randn(3, 16))
    assert x.shape == (3, channels, 32, 32) and x.abs().max() <= 1
    assert D(x).shape == (3, 1)


def test_extra_depth_is_dealt_round_robin():
    assert deal_round_robin(0) == [0, 0, 0]
    assert deal_round_robin(4) == [2, 1, 1]
    assert deal_round_robin(16) == [6, 5, 5]


def test_norm_choices_reach_the_layers():
    arch = Arch(norm_g=True, norm_d=True)
    layer_d = build_discriminator(arch, (1, 32, 32), "layer")
    assert any(isinstance(m, nn.GroupNorm) for m in layer_d.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in layer_d.modules())
    off = build_discriminator(Arch(norm_d=False), (1, 32, 32), "batch")
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for m in off.modules())
    g_off = build_generator(Arch(norm_g=False), (1, 32, 32), 8)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in g_off.modules())


def test_spectral_norm_on_every_d_layer():
    D = build_discriminator(Arch(depth_d=8), (1, 32, 32), "batch", spectral=True)
    layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 8
    assert all(hasattr(m, "parametrizations") and "weight" in m.parametrizations for m in layers)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_and_run(name):
    arch = PRESETS[name]
    G = build_generator(arch, (3, 32, 32), z_dim=16)
    D = build_discriminator(arch, (3, 32, 32), "layer")
    assert D(G(torch.randn(2, 16))).shape == (2, 1)


def test_preset_shapes_match_the_paper():
    mlp = build_generator(PRESETS["g-mlp512"], (1, 32, 32), 128)
    widths = [m.out_features for m in mlp.modules() if isinstance(m, nn.Linear)]
    assert widths == [512, 512, 512, 32 * 32]
    res = build_generator(PRESETS["resnet101"], (1, 32, 32), 128)
    assert count_weight_layers(res) == 100  # (101 - 2) // 2 = 49 blocks of 2 convs + in + out


def test_mlp_for_2d_data_uses_the_factors():
    arch = Arch(depth_g=4, depth_d=8, filters_g=128, filters_d=32, nonlin_g="tanh")
    G = build_generator(arch, (2,), z_dim=2)
    D = build_discriminator(arch, (2,), "layer")
    assert count_weight_layers(G) == 4 and count_weight_layers(D) == 8
    assert [m.out_features for m in G.modules() if isinstance(m, nn.Linear)][0] == 512
    assert G(torch.randn(5, 2)).shape == (5, 2)


def test_scaled_softplus_matches_its_definition():
    x = torch.linspace(-3, 3, 7)
    expected = torch.log1p(torch.exp(2 * x + 2)) / 2 - 1
    assert torch.allclose(ScaledSoftplus()(x), expected, atol=1e-6)


def test_dcgan_init_statistics_and_the_pytorch_switch():
    arch = Arch(depth_g=8, depth_d=8, filters_g=64, filters_d=64)
    G = build_generator(arch, (1, 32, 32), 128)
    weights = torch.cat([m.weight.detach().flatten() for m in G.modules()
                         if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))])
    assert weights.mean().abs() < 1e-3 and abs(weights.std().item() - 0.02) < 1e-3
    scales = torch.cat([m.weight.detach() for m in G.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(scales.mean().item() - 1) < 5e-3 and abs(scales.std().item() - 0.02) < 5e-3
    plain = build_generator(arch, (1, 32, 32), 128, init="pytorch")
    bn = [m for m in plain.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(bool((m.weight == 1).all()) for m in bn)          # PyTorch's default: scale 1
    # spectral norm reparametrizes the initialized weight, not a fresh one
    D = build_discriminator(arch, (1, 32, 32), "none", spectral=True)
    originals = [m.parametrizations.weight.original for m in D.modules() if hasattr(m, "parametrizations")]
    assert abs(torch.cat([w.detach().flatten() for w in originals]).std().item() - 0.02) < 1e-3


def test_sngan_critic_has_no_norm_layers_and_is_near_1_lipschitz():
    """With d_norm none (SN-GAN's default) D has no BN whatever norm_d says, and its input
    gradient norm at initialization stays far below the BN variant's."""
    torch.manual_seed(0)
    arch = Arch(depth_d=8, norm_d=True, filters_d=64)
    x = torch.randn(16, 1, 32, 32, requires_grad=True)

    def grad_norm(norm):
        D = build_discriminator(arch, (1, 32, 32), norm, spectral=True)
        for _ in range(20):   # settle the power iteration
            D(x)
        (g,) = torch.autograd.grad(D(x).sum(), x)
        return g.flatten(1).norm(dim=1).mean().item(), D
    plain, D = grad_norm("none")
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for m in D.modules())
    with_bn, _ = grad_norm("batch")
    assert plain <= 1.0 and with_bn > 10 * plain


def test_maxout_takes_the_max_over_groups_of_five():
    from harness.nets.blocks import Maxout, channel_multiplier
    x = torch.arange(20.0).reshape(2, 10)            # two samples, two groups of 5
    assert torch.equal(Maxout()(x), torch.tensor([[4.0, 9.0], [14.0, 19.0]]))
    img = torch.randn(3, 10, 4, 4)
    assert torch.equal(Maxout()(img), img.unflatten(1, (2, 5)).amax(2))
    assert channel_multiplier("maxout") == 5 and channel_multiplier("relu") == 1


def test_pacgan_2d_preset_has_the_papers_shapes():
    """PacGAN (Lin et al. 2018): G 2 -> 4 x 400 ReLU + BN -> 2; D 3 maxout layers of 200 x 5."""
    arch = PRESETS["pacgan-2d"]
    G = build_generator(arch, (2,), z_dim=2)
    assert [m.out_features for m in G.modules() if isinstance(m, nn.Linear)] == [400, 400, 400, 400, 2]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in G.modules()) == 4
    D = build_discriminator(arch, (2,), "batch")
    assert [m.out_features for m in D.modules() if isinstance(m, nn.Linear)] == [1000, 1000, 1000, 1]
    assert [m.in_features for m in D.modules() if isinstance(m, nn.Linear)] == [2, 200, 200, 200]
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.GroupNorm)) for m in D.modules())
    assert D(G(torch.randn(7, 2))).shape == (7, 1)
