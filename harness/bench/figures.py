"""The bench's other figures: evaluation cost, a trial's time outside training, torch.compile."""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import torch

from ..config import from_dict
from ..nets import build_generator
from ..record import FAILED
from ..device import resolve_precision
from ..train import run_trial
from ..trial import Trial
from .plan import OBJECTIVES, SHAPE, Z_DIM, Plan
from .runners import make_runner, sync
from .timing import iterations_for, timed_run, warm_up


def classifier_weights(tmp: Path) -> tuple[str | None, str]:
    """The shipped classifier weights, or an untrained stand-in (cost does not depend on weights)."""
    from ..evaluate.classifier import SmallCNN, default_weights_path
    shipped = default_weights_path("fashion_mnist")
    if shipped.exists():
        return None, "shipped"
    path = tmp / "standin_classifier.pt"
    torch.manual_seed(0)
    torch.save(SmallCNN().state_dict(), path)
    return str(path), "untrained stand-in (shipped weights missing; cost only)"


def measure_eval_cost(plan: Plan, device: torch.device, weights_path, cache_dir: Path) -> dict:
    from ..evaluate import make_evaluator
    ev = make_evaluator("fmnist-classifier", "fashion_mnist", plan.eval_n, real_split="train", device=str(device),
                        weights_path=weights_path, cache_dir=cache_dir)
    t0 = time.perf_counter()
    ev.prepare()
    t_real = time.perf_counter() - t0
    G = build_generator(plan.config_arch(plan.configs[0]), SHAPE, Z_DIM).to(device).eval()
    amp = resolve_precision("auto", device)
    gen = torch.Generator(device=device).manual_seed(0)

    def sample_fn(n):
        z = torch.randn(n, Z_DIM, device=device, generator=gen)
        with torch.no_grad(), (torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext()):
            return G(z).float()

    sync(device)
    t0 = time.perf_counter()
    metrics = ev.evaluate(sample_fn)
    sync(device)
    t_eval = time.perf_counter() - t0
    return {"n_samples": plan.eval_n, "seconds": t_eval, "real_features_once_s": t_real,
            "metrics": sorted(metrics), "generator": plan.configs[0]}


def measure_trial_overhead(plan: Plan, device: torch.device, weights_path, cache_dir: Path) -> dict:
    """A short run_trial with evaluation (real features already cached): wall vs train time."""
    iters = plan.trial_iters
    exp = from_dict({"name": "bench-overhead", "dataset": "fashion_mnist", "objectives": ["gan"],
                     "budget": {"iterations": iters, "batch_size": plan.batch},
                     "eval": {"n_samples": plan.eval_n, "every": max(1, iters // 2), "weights_path": weights_path},
                     "train": {"device": str(device)}})
    trial = Trial(exp, plan.config_arch(plan.configs[0]), "gan", 0)
    old = os.environ.get("HARNESS_CACHE")
    os.environ["HARNESS_CACHE"] = str(cache_dir.parent)   # evaluator cache: <HARNESS_CACHE>/fidelity
    try:
        r = run_trial(trial)
    finally:
        if old is None:
            os.environ.pop("HARNESS_CACHE", None)
        else:
            os.environ["HARNESS_CACHE"] = old
    if r.status == FAILED:
        raise RuntimeError(f"run_trial failed: {(r.error or '').splitlines()[0]}")
    outside = r.wall_time_s - r.train_time_s
    return {"iterations": r.iterations, "evaluations": len(r.history), "eval_n": plan.eval_n,
            "wall_time_s": r.wall_time_s, "train_time_s": r.train_time_s, "eval_time_s": r.eval_time_s,
            "setup_and_rest_s": outside - r.eval_time_s, "outside_training_share": outside / r.wall_time_s,
            "trial_its_per_s": r.its_per_s, "status": r.status, "config": plan.configs[0], "objective": "gan"}


def measure_compile(plan: Plan, device: torch.device, images, log) -> dict:
    """torch.compile of G and D inside the harness step: compile seconds vs steady-state gain."""
    out = {}
    for config in plan.configs:
        for objective in OBJECTIVES:
            for mode in ("default", "reduce-overhead"):
                key = f"{config}/{objective}/{mode}"
                try:
                    torch._dynamo.reset()
                    eager = make_runner("harness", plan, config, objective, device, images)
                    warm_up(eager, plan.warmup, device)
                    n = iterations_for(plan, 1 / warm_up(eager, 2, device))
                    r_eager = n / timed_run(eager, n, device)[0]
                    del eager
                    comp = make_runner("harness", plan, config, objective, device, images)
                    comp.step.G = torch.compile(comp.step.G, mode=mode)
                    comp.step.D = torch.compile(comp.step.D, mode=mode)
                    t_first = warm_up(comp, plan.warmup, device) * plan.warmup
                    r_comp = n / timed_run(comp, n, device)[0]
                    compile_s = max(0.0, t_first - plan.warmup / r_comp)
                    saved = 1 / r_eager - 1 / r_comp
                    out[key] = {"eager_its_per_s": r_eager, "compiled_its_per_s": r_comp, "speedup": r_comp / r_eager,
                                "compile_s": compile_s,
                                "break_even_iters": compile_s / saved if saved > 0 else None}
                    log(f"  compile {key}: x{r_comp / r_eager:.2f}, {compile_s:.0f} s to compile")
                except Exception as err:  # noqa: BLE001 - e.g. double backward through compiled D
                    out[key] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
                    log(f"  compile {key}: failed ({out[key]['error']})")
    torch._dynamo.reset()
    return out

