"""Exact metrics for the 2D Gaussian mixtures, as in VEEGAN and PacGAN (no network).

Protocol (VEEGAN, Srivastava et al. 2017, sec. 5.1; PacGAN, Lin et al. 2018, sec. 5 and
its metric code):
- a sample is *high quality* (HQ) if it lies within 3 standard deviations of its nearest
  mode's center (Euclidean distance <= 3 * std);
- `modes_covered`: modes with at least one HQ sample (the published, lenient rule);
- `modes_covered_strict`: modes holding at least a quarter of a uniform share of the
  samples as HQ samples (>= n / (4K)), the rule the image evaluators use for classes;
- `reverse_kl` = KL(p || uniform), p = the histogram of the *HQ* samples over their modes,
  as PacGAN's code computes it (NaN when there is no HQ sample); `reverse_kl_all`: the same
  over all samples. Empty modes contribute 0 * log 0 = 0 (torch.xlogy). Both range from 0
  (balanced) to log K (every sample on one mode).
- `w1_exact_2k`: the true Wasserstein-1 distance between (up to) 2,000 generated points and
  2,000 exact data samples, by exact optimal transport on the Euclidean cost matrix (POT's
  network simplex, `exact_w1`): what WGAN's critic estimates, measured without a critic.
- `kl_data_gen_kde` = KL(p_data || p_g), `kl_gen_data_kde` = KL(p_g || p_data), `js_kde` (nats,
  at most log 2), `kde_bandwidth` (the KDE's kernel std): p_data exact, p_g by a kernel
  density estimate of the generated points (evaluate/kde.py, which states the bandwidth rule);
- `d_gap_mean_abs`: mean |D(x) - D*(x)| with D* = p_data / (p_data + p_g), when the trainer
  passes a critic (only for objectives whose D output is a probability with that optimum, and
  only where D judges one sample: train.Evaluation decides).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from harness.data import get_dataset_spec, mixture_modes, sample_mixture
from harness.evaluate.base import CriticFn, Evaluator, SampleFn, draw_samples
from harness.evaluate.kde import LOG2, d_gap, densities
from harness.evaluate.metrics import HIGHER, LOWER, register_metric
from harness.evaluate.prdc import NAMES as PRDC_NAMES
from harness.evaluate.prdc import prdc

HQ_STDS = 3.0
W1_POINTS = 2000    # exact OT on 2,000 x 2,000 points: well under a second on one core (bench --only w1-solver)
# An upper bound on network-simplex pivots (POT's default is 100,000), set high so that it never
# binds: a solve that stops at the bound is not optimal, and exact_w1 raises rather than report it.
W1_MAX_ITER = 10_000_000
MIN_PER_MODE = 10   # samples per mode of a uniform spread, at least: fewer cannot tell modes apart


def _kl_to_uniform(counts: torch.Tensor) -> float:
    total = counts.sum()
    if total == 0:
        return float("nan")
    p = counts.double() / total
    return float((torch.xlogy(p, p) - p * math.log(1.0 / len(counts))).sum().item())


def exact_w1(x: torch.Tensor, y: torch.Tensor) -> float:
    """W1 between the uniform distributions on two point sets, by exact optimal transport (POT's
    network simplex, ot.emd2). For equal sizes this is the mean cost of the optimal one-to-one
    assignment (the uniform transport polytope's vertices are permutations), which scipy's
    linear_sum_assignment, used first, also finds; but its time depends on the cloud's shape:
    at 2,000 points it took 0.45 s of CPU on a spread cloud and 13 s on a collapsed one (every
    point within 1e-3 of one point: a near-degenerate cost matrix), so an early, collapsed
    trial's evaluations cost several times a spread one's. The simplex took 0.45 s and 0.94 s
    (`python -m harness bench --only w1-solver`, results/bench/*-w1-solver.md)."""
    import ot
    cost = torch.cdist(x.double(), y.double()).numpy()
    a, b = np.full(len(x), 1.0 / len(x)), np.full(len(y), 1.0 / len(y))
    w1, log = ot.emd2(a, b, cost, numItermax=W1_MAX_ITER, log=True)
    if log["result_code"] != 1:   # 1 = optimal; anything else is not the exact W1
        raise RuntimeError(f"exact W1: POT's network simplex did not reach the optimum ({log['warning']})")
    return float(w1)


def toy2d_metrics(x: torch.Tensor, centers: torch.Tensor, std: float, min_hq_per_mode: int = 1,
                  reference: torch.Tensor | None = None, critic: CriticFn | None = None) -> dict[str, float]:
    x = x.to(torch.float32)
    d = torch.cdist(x, centers.to(x))  # n x K
    dmin, nearest = d.min(dim=1)
    finite = torch.isfinite(x).all(dim=1)
    hq = (dmin <= HQ_STDS * std) & finite
    k = len(centers)
    hq_counts = torch.bincount(nearest[hq], minlength=k)
    metrics = {
        "modes_covered": float((hq_counts >= min_hq_per_mode).sum().item()),
        "modes_covered_strict": float((hq_counts >= len(x) / (4 * k)).sum().item()),
        "hq_share": float(hq.double().mean().item()),
        "reverse_kl": _kl_to_uniform(hq_counts),
        "reverse_kl_all": _kl_to_uniform(torch.bincount(nearest[finite], minlength=k)),
        "n_modes": float(k),
    }
    if reference is not None:
        pts = x[finite][: len(reference)]
        metrics["w1_exact_2k"] = exact_w1(pts, reference[: len(pts)]) if len(pts) else float("nan")
        metrics.update(kde_metrics(x, reference, centers, std, critic))
    return metrics


KDE_METRICS = ("kl_data_gen_kde", "kl_gen_data_kde", "js_kde", "kde_bandwidth")


def kde_metrics(x, reference, centers, std, critic: CriticFn | None = None) -> dict[str, float]:
    """The KDE divergences (NaN where no KDE can be fitted), and D's gap to D* given a critic."""
    dens = densities(x, reference, centers, std)
    if dens is None:
        out = dict.fromkeys(KDE_METRICS, float("nan"))
        return out if critic is None else {**out, "d_gap_mean_abs": float("nan")}
    out = dens.divergences()
    if critic is not None:
        out["d_gap_mean_abs"] = d_gap(dens, critic)
    return out


PRDC_2D = tuple(f"{k}_2k" for k in PRDC_NAMES)   # precision_2k, recall_2k, density_2k, coverage_2k

# What each metric is (evaluate/metrics.py): the report's success rule, tables and plots read it.
INF = float("inf")
register_metric("modes_covered", direction=HIGHER, range=(0, "n_modes"), group="diversity", order=10,
                description="modes with at least one high-quality sample (within 3 std; VEEGAN, PacGAN)")
register_metric("modes_covered_strict", direction=HIGHER, range=(0, "n_modes"), group="diversity", order=11,
                description="modes holding >= 1/(4K) of the samples as high-quality ones")
register_metric("hq_share", direction=HIGHER, range=(0, 1), group="quality", summary=True, order=12,
                description="share of samples within 3 std of their nearest mode (PacGAN's high quality)")
register_metric("reverse_kl", direction=LOWER, range=(0, "log n_modes"), group="divergence", summary=True, order=13,
                description="KL(mode histogram of the high-quality samples || uniform), PacGAN's code; NaN without one")
register_metric("reverse_kl_all", direction=LOWER, range=(0, "log n_modes"), group="divergence", order=14,
                description="KL(mode histogram of all finite samples || uniform)")
register_metric("n_modes", direction=None, range=(1, INF), group="setting", order=15,
                description="the mixture's number of modes")
register_metric("w1_exact_{n}", direction=LOWER, range=(0, INF), group="divergence", curve=True, order=20,
                description="exact Wasserstein-1 between n generated and n exact data points (optimal transport)")
register_metric("kl_data_gen_kde", direction=LOWER, range=(-INF, INF), group="divergence", curve=True, symlog=True,
                ideal=0.0, order=22, description="KL(p_data || p_g), p_g by a KDE (its bias has either sign)")
register_metric("kl_gen_data_kde", direction=LOWER, range=(-INF, INF), group="divergence", curve=True, symlog=True,
                ideal=0.0, order=23, description="KL(p_g || p_data), p_g by a KDE (its bias has either sign)")
register_metric("js_kde", direction=LOWER, range=(0, LOG2), group="divergence", curve=True, reference=LOG2,
                order=21, description="Jensen-Shannon divergence in nats, p_g by a KDE (log 2: disjoint supports)")
register_metric("kde_bandwidth", direction=None, range=(0, INF), group="setting", order=29,
                description="the KDE's kernel std, chosen by held-out likelihood")
# precision / recall / density / coverage in raw coordinates (evaluate/prdc.py; `{n}` is W1's sample)
register_metric("precision_{n}", direction=HIGHER, range=(0, 1), group="quality", family="prdc", order=40,
                description="share of generated points inside the data's k-NN manifold (Kynkaanniemi 2019)")
register_metric("recall_{n}", direction=HIGHER, range=(0, 1), group="diversity", family="prdc", order=41,
                description="share of data points inside the generated k-NN manifold (Kynkaanniemi 2019)")
register_metric("density_{n}", direction=HIGHER, range=(0, INF), group="quality", family="prdc", ideal=1.0, order=42,
                description="real k-NN balls holding each generated point, / k: about 1 when G matches (Naeem 2020)")
register_metric("coverage_{n}", direction=HIGHER, range=(0, 1), group="diversity", family="prdc", order=43,
                description="share of data points whose k-NN ball holds a generated point (Naeem 2020)")


class Toy2DEvaluator(Evaluator):
    name = "toy2d"
    headline = "modes_covered"
    metric_names = ("modes_covered", "modes_covered_strict", "hq_share", "reverse_kl", "reverse_kl_all", "n_modes",
                    "w1_exact_2k", *KDE_METRICS, *PRDC_2D, "d_gap_mean_abs")   # the last given a critic only
    wants_critic = True   # train.Evaluation passes D's probability where it is defined
    critic_metrics = ("d_gap_mean_abs",)

    def __init__(self, dataset: str, n_samples: int = 2500, min_hq_per_mode: int = 1):
        spec = get_dataset_spec(dataset)
        if spec.kind != "toy2d":
            raise ValueError(f"evaluator 'toy2d' measures 2D mixtures, not {dataset!r}")
        if n_samples < MIN_PER_MODE * spec.num_classes:
            raise ValueError(f"n_samples must be >= {MIN_PER_MODE * spec.num_classes} for {dataset} "
                             f"({MIN_PER_MODE} per mode), got {n_samples}")
        self.dataset = dataset
        self.n_samples = n_samples
        self.min_hq_per_mode = min_hq_per_mode
        self.centers, self.std = mixture_modes(dataset)
        self.reference = sample_mixture(dataset, W1_POINTS, torch.Generator().manual_seed(0))

    def evaluate(self, sample_fn: SampleFn, critic: CriticFn | None = None) -> dict[str, float]:
        x = draw_samples(sample_fn, self.n_samples)
        if x.dim() != 2 or x.shape[1] != 2:
            raise ValueError(f"toy2d expects n x 2 samples, got {tuple(x.shape)}")
        out = toy2d_metrics(x, self.centers, self.std, self.min_hq_per_mode, self.reference, critic)
        # quality and diversity apart, in raw coordinates, against the same exact data sample as W1
        found = prdc(self.reference, x[:W1_POINTS])
        return {**out, **{f"{k}_2k": v for k, v in found.items()}}

    def collapsed(self, metrics: dict[str, float]) -> bool:
        """Collapsed when fewer than half the modes are covered (a GAN that collapsed on the
        ring covers 1 of 8 in VEEGAN's table; partial coverage such as 17 of 25 is not collapse)."""
        return metrics["modes_covered"] < 0.5 * metrics["n_modes"]
