"""Precision / recall / density / coverage against hand-computed k-NN cases and a collapsed sample."""
from __future__ import annotations

import pytest
import torch

from harness.evaluate.prdc import prdc


def test_a_hand_computed_case_on_a_line():
    # real points 0,1,2,3 on a line, k=1: each real ball's radius is 1 (the nearest other point)
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    # generated: 0.5 is inside 2 real balls (those of 0 and 1), 10 is inside none
    fake = torch.tensor([[0.5], [10.0]])
    got = prdc(real, fake, k=1)
    assert got["precision"] == pytest.approx(0.5)          # 1 of 2 generated points inside
    assert got["density"] == pytest.approx(2 / (1 * 2))    # (2 + 0) balls / (k * 2 points)
    # coverage: real balls holding a generated point: 0 (|0.5-0| <= 1) and 1 (|0.5-1| <= 1) -> 2 of 4
    assert got["coverage"] == pytest.approx(0.5)
    # recall: fake radii (k=1) are 9.5 each: every real point is within 9.5 of 0.5 -> 1
    assert got["recall"] == pytest.approx(1.0)


def test_identical_distributions_read_about_one_and_a_collapsed_sample_loses_diversity_only():
    g = torch.Generator().manual_seed(0)
    angles = torch.arange(8) * (2 * torch.pi / 8)
    centres = 2.0 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    def ring(n):
        return centres[torch.randint(0, 8, (n,), generator=g)] + 0.05 * torch.randn(n, 2, generator=g)
    real, same = ring(1000), ring(1000)
    good = prdc(real, same)
    assert good["precision"] > 0.9 and good["recall"] > 0.9 and good["coverage"] > 0.9
    assert 0.8 < good["density"] < 1.2
    collapsed = centres[0] + 0.05 * torch.randn(1000, 2, generator=g)     # one mode of eight
    bad = prdc(real, collapsed)
    assert bad["precision"] > 0.9                            # what it draws is real-looking
    assert bad["recall"] < 0.3 and bad["coverage"] < 0.2     # but it covers one mode in eight


def test_block_boundaries_do_not_change_the_answer(monkeypatch):
    import harness.evaluate.prdc as mod
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(300, 3, generator=g), torch.randn(200, 3, generator=g) + 0.5
    whole = prdc(real, fake)
    monkeypatch.setattr(mod, "BLOCK", 7)
    assert prdc(real, fake) == pytest.approx(whole)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="n x d"):
        prdc(torch.zeros(10, 2), torch.zeros(10, 3))
    with pytest.raises(ValueError, match="more than k"):
        prdc(torch.zeros(3, 2), torch.zeros(10, 2))


@pytest.mark.slow
def test_the_2d_evaluator_reports_them_and_they_separate_collapse_from_spread():
    from harness.data import sample_mixture
    from harness.evaluate.toy2d import Toy2DEvaluator
    ev = Toy2DEvaluator("ring8", n_samples=2000)
    g = torch.Generator().manual_seed(3)
    data = sample_mixture("ring8", 2000, g)
    spread = ev.evaluate(lambda n: sample_mixture("ring8", n, g))       # the data's own distribution
    assert {"precision_2k", "recall_2k", "density_2k", "coverage_2k"} <= set(spread) <= set(ev.metric_names)
    one_mode = data[(data[:, 0] > 1.0) & (data[:, 1].abs() < 0.5)]
    collapsed = ev.evaluate(lambda n: one_mode[torch.randint(0, len(one_mode), (n,), generator=g)])
    assert spread["coverage_2k"] > 0.9 and collapsed["coverage_2k"] < 0.2
    assert collapsed["precision_2k"] > 0.9
