"""Conditional nets: G(z, y) and D(x, y) shapes per family, and D's label term really reads y."""
import pytest
import torch
from torch import nn

from harness.nets.conditional import (ConcatDiscriminator, ProjectionDiscriminator, build_conditional_discriminator,
                                      build_conditional_generator)
from harness.space import Arch

K = 10
IMAGE = (1, 32, 32)


@pytest.mark.parametrize("family", ["dcgan", "resnet", "mlp"])
def test_image_shapes(family):
    # images: D is DCGAN or ResNet (the space has no MLP D for images); an MLP G pairs with a DCGAN D
    arch = Arch(family_g=family, family_d="dcgan" if family == "mlp" else family, depth_g=4, depth_d=4,
                filters_g=32, filters_d=32)
    G = build_conditional_generator(arch, IMAGE, 16, K)
    D = build_conditional_discriminator(arch, IMAGE, K, "layer")
    y = torch.arange(5) % K
    x = G(torch.randn(5, 16), y)
    assert x.shape == (5, *IMAGE) and x.abs().max() <= 1
    assert D(x, y).shape == (5, 1)
    assert isinstance(D, ProjectionDiscriminator)


def test_2d_shapes_and_concatenation():
    arch = Arch(depth_g=4, depth_d=4, filters_g=32, filters_d=32)
    G = build_conditional_generator(arch, (2,), 2, 8)
    D = build_conditional_discriminator(arch, (2,), 8, "batch")
    y = torch.arange(6) % 8
    x = G(torch.randn(6, 2), y)
    assert x.shape == (6, 2) and D(x, y).shape == (6, 1)
    assert isinstance(D, ConcatDiscriminator)
    assert D.net[0].in_features == 2 + 8 and G.net[0].in_features == 2 + 8


@pytest.mark.parametrize("family,spectral", [("dcgan", False), ("dcgan", True), ("resnet", False)])
def test_projection_term_depends_on_the_label(family, spectral):
    torch.manual_seed(0)
    D = build_conditional_discriminator(Arch(family_d=family, depth_d=4, filters_d=32), IMAGE, K, "layer",
                                        spectral=spectral).eval()
    x = torch.randn(4, *IMAGE)
    y = torch.tensor([0, 1, 2, 3])
    same, other = D(x, y), D(x, (y + 1) % K)
    assert not torch.allclose(same, other, atol=1e-4)
    assert torch.equal(same, D(x, y))   # and on nothing else
    # the label term is exactly <embed(y), phi(x)> on top of the unconditional head psi(phi(x))
    with torch.no_grad():
        h = D.body(x)
    assert torch.allclose(same - D.head(h), (D.embed(y) * h).sum(1, keepdim=True), atol=1e-5)


def test_concatenated_label_changes_the_2d_output():
    torch.manual_seed(0)
    D = build_conditional_discriminator(Arch(depth_d=4, filters_d=32), (2,), 8, "batch").eval()
    x = torch.randn(4, 2)
    assert not torch.allclose(D(x, torch.zeros(4, dtype=torch.long)), D(x, torch.ones(4, dtype=torch.long)))


def test_label_gradients_reach_g_and_the_embedding():
    arch = Arch(depth_g=4, depth_d=4, filters_g=32, filters_d=32)
    G, D = build_conditional_generator(arch, IMAGE, 16, K), build_conditional_discriminator(arch, IMAGE, K, "layer")
    y = torch.arange(4)
    D(G(torch.randn(4, 16), y), y).sum().backward()
    assert D.embed.weight.grad[:4].abs().sum() > 0 and D.embed.weight.grad[4:].abs().sum() == 0


def test_projection_needs_a_linear_head():
    with pytest.raises(ValueError, match="last layer is Linear"):
        ProjectionDiscriminator(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), K)
