"""`python -m harness bench --only w1-solver`: the 2D evaluator's exact W1, two solvers, two clouds.

Why (issue 27 section 2): scipy's linear_sum_assignment, the solver `w1_exact_2k` used first,
finds the optimal assignment between 2,000 generated and 2,000 data points quickly when the
generated cloud is spread out but slowly when it has collapsed to a point (a near-degenerate cost
matrix), which is what an early generator looks like: evaluations cost ten times more exactly
where a study has the most of them. POT's network simplex (ot.emd2, what `exact_w1` uses now)
solves the same linear programme. This bench times both on a spread cloud (exact mixture samples:
a generator that has learned the data) and on a collapsed one (every point within 1e-3 of one
mode's centre), checks they agree, and times the whole toy2d evaluation on each cloud.

Time is measured as wall (`perf_counter`) and as this process's CPU time (`process_time`),
best of `repeats`: on a shared machine the wall figure carries other people's load, the CPU
figure much less of it.
"""
from __future__ import annotations

import time

import numpy as np
import torch

DATASET = "ring8"
N = 2000            # toy2d.W1_POINTS: the size every evaluation solves
COLLAPSE_RADIUS = 1e-3


def clouds(dataset: str = DATASET, n: int = N) -> dict[str, torch.Tensor]:
    """{spread, collapsed}: n generated points each, seeded (not the evaluator's reference seed)."""
    from ..data import mixture_modes, sample_mixture
    g = torch.Generator().manual_seed(1)
    centre = mixture_modes(dataset)[0][0].double()
    # uniform on a square of side r * sqrt(2) around the centre: every point within r of it
    offsets = (torch.rand(n, 2, generator=g, dtype=torch.float64) - 0.5) * COLLAPSE_RADIUS * 2 ** 0.5
    return {"spread": sample_mixture(dataset, n, g).double(), "collapsed": centre + offsets}


def _lsa(cost: np.ndarray) -> float:
    from scipy.optimize import linear_sum_assignment
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def _emd(cost: np.ndarray) -> float:
    import ot

    from ..evaluate.toy2d import W1_MAX_ITER
    a, b = np.full(cost.shape[0], 1.0 / cost.shape[0]), np.full(cost.shape[1], 1.0 / cost.shape[1])
    return float(ot.emd2(a, b, cost, numItermax=W1_MAX_ITER))


SOLVERS = {"scipy linear_sum_assignment": _lsa, "POT ot.emd2": _emd}


def _best_of(fn, repeats: int) -> tuple[object, float, float]:
    """(result, best wall s, best CPU s) over `repeats` calls."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return out, min(walls), min(cpus)


def measure_w1_solver(log, dataset: str = DATASET, n: int = N, repeats: int = 3, evaluations: bool = True) -> dict:
    """Both solvers on both clouds (the same cost matrices), their agreement, and (evaluations) the
    full toy2d evaluation of 2,500 samples drawn from each cloud's shape."""
    from ..evaluate.toy2d import Toy2DEvaluator
    ev = Toy2DEvaluator(dataset)
    reference = ev.reference[:n].double()   # the evaluator's own data points
    out = {"dataset": dataset, "n": n, "repeats": repeats, "collapse_radius": COLLAPSE_RADIUS,
           "threads": torch.get_num_threads(), "clouds": {}}
    drawn = clouds(dataset, ev.n_samples) if evaluations else {}
    for name, x in clouds(dataset, n).items():
        cost = torch.cdist(x, reference).numpy()
        row = {"solvers": {}}
        for solver, fn in SOLVERS.items():
            w1, wall, cpu = _best_of(lambda fn=fn: fn(cost), repeats)
            row["solvers"][solver] = {"w1": w1, "wall_s": wall, "cpu_s": cpu}
            log(f"w1-solver {name}: {solver} W1 {w1:.6f}, {wall:.3f} s wall, {cpu:.3f} s CPU (best of {repeats})")
        values = [s["w1"] for s in row["solvers"].values()]
        row["abs_diff"] = max(values) - min(values)
        if evaluations:
            pts = drawn[name].float()
            _, wall, cpu = _best_of(lambda: ev.evaluate(lambda k: pts[:k]), repeats)
            row["evaluation"] = {"n_samples": ev.n_samples, "wall_s": wall, "cpu_s": cpu}
            log(f"w1-solver {name}: whole toy2d evaluation {wall:.3f} s wall, {cpu:.3f} s CPU")
        out["clouds"][name] = row
    return out


def w1_solver_markdown(r: dict) -> str:
    """The file of `bench --only w1-solver`."""
    hw, w = r["hardware"], r["w1_solver"]
    lines = [f"# Benchmark: exact W1 solvers, {hw['device_name']}", "",
             f"- CPU: {hw['cpu_model']}, {hw['cpu_count']} cores; torch {hw['torch']}, Python {hw['python']}",
             f"- date: {hw['date']}; command: `{hw['command']}`; took {r['bench_seconds']:.0f} s; "
             f"load average at the start {hw.get('load_average_1m', float('nan')):.2f}",
             f"- {w['n']} generated x {w['n']} {w['dataset']} points, Euclidean cost; best of {w['repeats']}; "
             f"collapsed = every point within {w['collapse_radius']:g} of one mode's centre", "",
             "| cloud | solver | W1 | wall s | CPU s |", "|---|---|---|---|---|"]
    for name, row in w["clouds"].items():
        for solver, s in row["solvers"].items():
            lines.append(f"| {name} | {solver} | {s['w1']:.6f} | {s['wall_s']:.3f} | {s['cpu_s']:.3f} |")
    lines += ["", "| cloud | solvers' largest W1 difference | whole toy2d evaluation (POT), wall s | CPU s |",
              "|---|---|---|---|"]
    for name, row in w["clouds"].items():
        e = row.get("evaluation")
        lines.append(f"| {name} | {row['abs_diff']:.1e} | {e['wall_s']:.3f} | {e['cpu_s']:.3f} |" if e else
                     f"| {name} | {row['abs_diff']:.1e} | - | - |")
    return "\n".join(lines) + "\n"
