"""Precision, recall, density and coverage: quality and diversity as separate numbers.

A single score (IS, FID, W1) cannot tell a generator that draws a few modes well from one
that covers every mode badly. The k-nearest-neighbour manifold estimates can:

- precision (Kynkaanniemi et al. 2019): share of generated points inside the real manifold
  (the union of balls around each real point reaching its k-th real neighbour);
- recall (same paper): share of real points inside the generated manifold;
- density (Naeem et al. 2020, eq. 2): how many real balls contain each generated point, / k,
  averaged: about 1 for a generator matching the data, robust to real outliers;
- coverage (Naeem et al. 2020, eq. 3): share of real points whose ball holds at least one
  generated point; a collapsed generator keeps precision high and loses recall and coverage.

Both papers use k = 5, the default here. Features are whatever the evaluator's space is: the
shipped classifier's penultimate layer for Fashion-MNIST, raw coordinates for the 2D
mixtures. torch-fidelity (0.4) computes precision and recall in Inception space only, so the
four are computed here, on any features, by one exact k-NN (torch.cdist, in row blocks so
memory stays O(block x n)).
"""
from __future__ import annotations

import torch
from torch import Tensor

K = 5               # Kynkaanniemi et al. 2019 and Naeem et al. 2020 both use k = 5
BLOCK = 1024        # rows of the distance matrix held at once
NAMES = ("precision", "recall", "density", "coverage")


def _kth_neighbour_radius(x: Tensor, k: int) -> Tensor:
    """Distance from each row of x to its k-th nearest other row (itself excluded)."""
    radii = []
    for i in range(0, len(x), BLOCK):
        d = torch.cdist(x[i:i + BLOCK], x)
        radii.append(d.kthvalue(k + 1, dim=1).values)     # the 1st smallest is the point itself (0)
    return torch.cat(radii)


def _inside_counts(points: Tensor, centres: Tensor, radii: Tensor) -> Tensor:
    """For each point: how many balls (centre, radius) contain it (distance <= radius)."""
    counts = []
    for i in range(0, len(points), BLOCK):
        d = torch.cdist(points[i:i + BLOCK], centres)
        counts.append((d <= radii.unsqueeze(0)).sum(dim=1))
    return torch.cat(counts)


def _nearest(points: Tensor, others: Tensor) -> Tensor:
    """Distance from each point to its nearest row of `others`."""
    return torch.cat([torch.cdist(points[i:i + BLOCK], others).min(dim=1).values
                      for i in range(0, len(points), BLOCK)])


@torch.no_grad()
def prdc(real: Tensor, fake: Tensor, k: int = K) -> dict[str, float]:
    """The four metrics of `fake` against `real` (n x d feature tensors, any device)."""
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"prdc: expected two n x d feature matrices, got {tuple(real.shape)} and {tuple(fake.shape)}")
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"prdc: needs more than k={k} real and generated points, got {len(real)} and {len(fake)}")
    real, fake = real.double(), fake.double()
    real_r = _kth_neighbour_radius(real, k)
    fake_r = _kth_neighbour_radius(fake, k)
    in_real = _inside_counts(fake, real, real_r)                     # per generated point
    precision = (in_real > 0).double().mean()
    recall = (_inside_counts(real, fake, fake_r) > 0).double().mean()
    density = in_real.double().sum() / (k * len(fake))
    coverage = (_nearest(real, fake) <= real_r).double().mean()      # a real ball holding a generated point
    return {"precision": float(precision), "recall": float(recall), "density": float(density),
            "coverage": float(coverage)}
