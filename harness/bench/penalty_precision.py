"""The penalty's double backward in bf16 (train.penalty_precision: autocast) against fp32.

`harness bench --only penalty-precision` measures what running the penalty under the trial's
bf16 autocast changes, numerically and in a trained result:

- on a fixed batch: the per-sample relative error of the input gradient's norm, the
  penalty's value and the direction of its gradient on D's weights, fp32 against bf16, for
  DCGAN critics of depth 4 and 8 (the quick study's size; deeper compounds the rounding);
- trained: the robustness2d-ring8 study's wgan-gp at one of its architectures, bf16 autocast
  for the networks in both runs, the penalty in fp32 (the default) or under autocast, over a
  few seeds: the paired difference of each metric against the seeds' own spread.

Its speed is measured by `--only profile` (levers.py), where the CPU has bf16 units.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from ..config import from_dict, load_experiment
from ..device import torch_threads
from ..objectives import get_objective
from ..penalties import input_gradient, penalty_autocast
from ..space import Arch
from ..step import build_step
from ..train import run_trial
from ..trial import Trial

METRICS = ("modes_covered", "hq_share", "w1_exact_2k", "reverse_kl")


def gradient_norm_error(arch: Arch, objective: str = "wgan-gp", batch: int = 32, seed: int = 0,
                        dtype: torch.dtype = torch.bfloat16) -> dict:
    """fp32 against `dtype` for one D and one batch of interpolates: per-sample relative errors
    of ||grad_x D||, the penalty value's relative error, and the cosine between the penalty's
    gradients on D's weights (what the double backward delivers to Adam)."""
    torch.manual_seed(seed)
    step = build_step(arch, get_objective(objective), (1, 32, 32), 128, torch.device("cpu"))
    g = torch.Generator().manual_seed(seed + 1)
    real = torch.rand(batch, 1, 32, 32, generator=g) * 2 - 1
    with torch.no_grad():
        fake = step.G(torch.randn(batch, 128, generator=g))
    eps = torch.rand(batch, 1, 1, 1, generator=g)
    x = (eps * real + (1 - eps) * fake).detach()
    params = list(step.D.parameters())
    out = {}
    for name, dt in (("fp32", None), ("low", dtype)):
        with penalty_autocast(dt):
            grad = input_gradient(step.D, x.clone())
        norms = grad.flatten(1).norm(2, dim=1)
        penalty = ((norms - 1) ** 2).mean()
        grads = torch.autograd.grad(penalty, params, allow_unused=True)
        flat = torch.cat([(torch.zeros_like(p) if q is None else q).flatten() for p, q in zip(params, grads)])
        out[name] = (norms.detach(), penalty.item(), flat)
    (n0, p0, w0), (n1, p1, w1) = out["fp32"], out["low"]
    rel = ((n1 - n0).abs() / n0).tolist()
    return {"depth": arch.depth_d, "objective": objective, "batch": batch, "mean_norm": n0.mean().item(),
            "max_rel_error": max(rel), "mean_rel_error": sum(rel) / len(rel),
            "penalty_rel_error": abs(p1 - p0) / abs(p0),
            "weight_grad_cosine": torch.nn.functional.cosine_similarity(w0.double(), w1.double(), dim=0).item(),
            "weight_grad_rel_error": ((w1 - w0).norm() / w0.norm()).item()}


def trained_comparison(log, seeds=(0, 1, 2), iterations: int = 1000, arch_index: int = 4,
                       experiment: str = "experiments/robustness2d-ring8.yaml") -> dict:
    """wgan-gp on the study's `arch_index`-th architecture: bf16 nets with the penalty in fp32
    and under autocast, one trial per seed each; every figure and the paired differences."""
    base = load_experiment(experiment)
    arch = base.archs()[arch_index]
    runs: dict = {"fp32": {}, "autocast": {}}
    for seed in seeds:
        for pp in runs:
            exp = from_dict({"name": "penalty-precision", "dataset": base.dataset, "objectives": ["wgan-gp"],
                             "objective_overrides": base.objective_overrides,
                             "budget": {"iterations": iterations, "batch_size": base.budget.batch_size},
                             "eval": {"evaluator": base.eval.evaluator, "n_samples": base.eval.n_samples},
                             "train": {"init": base.train.init, "precision": "bf16", "penalty_precision": pp,
                                       "threads": 1}})
            r = run_trial(Trial(exp, arch, "wgan-gp", seed))
            runs[pp][seed] = {"status": r.status, "its_per_s": r.its_per_s,
                              **{m: r.metrics.get(m, math.nan) for m in METRICS}}
            log(f"penalty {pp}, seed {seed}: {r.status}, " + ", ".join(
                f"{m} {runs[pp][seed][m]:.4g}" for m in METRICS) + f" ({r.its_per_s:.1f} it/s)")
    summary = {}
    for m in METRICS:
        a = [runs["fp32"][s][m] for s in seeds]
        b = [runs["autocast"][s][m] for s in seeds]
        diffs = np.array(b, dtype=float) - np.array(a, dtype=float)   # NaN where a metric is undefined
        with warnings.catch_warnings():   # an all-NaN metric (reverse KL of collapsed runs) stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            summary[m] = {"fp32_mean": float(np.nanmean(a)), "autocast_mean": float(np.nanmean(b)),
                          "seed_sd_fp32": float(np.nanstd(a, ddof=1)) if len(a) > 1 else math.nan,
                          "mean_paired_diff": float(np.nanmean(diffs)),
                          "max_abs_paired_diff": float(np.nanmax(np.abs(diffs)))}
    return {"arch": arch.id, "arch_describe": arch.describe(), "iterations": iterations, "seeds": list(seeds),
            "experiment": experiment, "runs": {k: {str(s): v for s, v in d.items()} for k, d in runs.items()},
            "summary": summary}


def measure_penalty_precision(log, seeds=(0, 1, 2), iterations: int = 1000) -> dict:
    with torch_threads(1):
        numeric = [gradient_norm_error(Arch(depth_g=d, depth_d=d, filters_g=32, filters_d=32), obj)
                   for d in (4, 8) for obj in ("wgan-gp", "gan+r1:10")]
        for x in numeric:
            log(f"depth {x['depth']} {x['objective']}: |grad| rel. error max {x['max_rel_error']:.4f}, "
                f"mean {x['mean_rel_error']:.4f}; weight-gradient cosine {x['weight_grad_cosine']:.5f}")
        return {"numeric": numeric, "trained": trained_comparison(log, seeds, iterations)}


def penalty_precision_markdown(r: dict) -> list[str]:
    lines = ["", "## The penalty in bf16 (train.penalty_precision: autocast) against fp32", "",
             "On a fixed batch of 32 interpolates (harness/bench/penalty_precision.py): the input gradient's "
             "norm per sample, the penalty, and its gradient on D's weights (what the double backward hands "
             "to Adam), bf16 autocast against fp32.", "",
             "| D depth | method | mean norm | rel. error of the norm, max | mean | penalty rel. error | "
             "weight-gradient cosine | weight-gradient rel. error |", "|---|---|---|---|---|---|---|---|"]
    for x in r["numeric"]:
        lines.append(f"| {x['depth']} | {x['objective']} | {x['mean_norm']:.3f} | {100 * x['max_rel_error']:.2f} % | "
                     f"{100 * x['mean_rel_error']:.2f} % | {100 * x['penalty_rel_error']:.2f} % | "
                     f"{x['weight_grad_cosine']:.5f} | {100 * x['weight_grad_rel_error']:.2f} % |")
    t = r["trained"]
    lines += ["", f"Trained: wgan-gp on {t['experiment']}'s architecture {t['arch']} ({t['arch_describe']}), "
                  f"{t['iterations']} iterations, bf16 autocast for the networks in both runs, seeds "
                  f"{', '.join(map(str, t['seeds']))}:", "",
              "| metric | penalty fp32: mean | penalty autocast: mean | seed SD (fp32) | mean paired difference | "
              "largest paired difference |", "|---|---|---|---|---|---|"]
    for m, s in t["summary"].items():
        lines.append(f"| {m} | {s['fp32_mean']:.4g} | {s['autocast_mean']:.4g} | {s['seed_sd_fp32']:.3g} | "
                     f"{s['mean_paired_diff']:+.3g} | {s['max_abs_paired_diff']:.3g} |")
    lines += ["", "Each run (its speed is in the JSON only: the profile measures speed, and where the CPU has no "
                  "bf16 units bf16 is emulated):", "",
              "| penalty | seed | status | " + " | ".join(METRICS) + " |", "|---|---|---|" + "---|" * len(METRICS)]
    for pp, d in t["runs"].items():
        for seed, x in d.items():
            lines.append(f"| {pp} | {seed} | {x['status']} | "
                         + " | ".join(f"{x[m]:.4g}" for m in METRICS) + " |")
    return lines
