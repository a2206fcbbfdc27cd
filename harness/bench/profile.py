"""Where a CPU training iteration's time goes: torch.profiler over the bench's own runners.

`harness bench --only profile` (and the cpu-speed report) profiles a gan and a wgan-gp
iteration of the quick study's architecture on one thread through `runners.HarnessRunner`,
the loop body every trial runs, and sorts every microsecond of the profiler's self CPU time
into the categories below. Why: issue 27 asks the CPU path for twice the fp32 speed, and
whether that is reachable is a question of Amdahl's law over these shares (`ceiling`).

How an event is attributed (`attribute`), first rule that applies:

1. a region, by what the event ran inside of (its ancestors in the profiler's call tree):
   - "optimizer": anything under torch's `Optimizer.step#...` / `Optimizer.zero_grad#...`;
   - "penalty: D forward on its points": inside the penalty (the bench wraps the objective's
     `penalty` in a `harness.penalty` record_function), outside the autograd engine;
   - "penalty: input gradient (with graph)": inside the penalty, under the autograd engine
     (`torch.autograd.grad(..., create_graph=True)`);
   - "penalty: double backward": during D's `loss.backward()`, under an autograd node created
     inside the penalty (matched by the autograd sequence number the profiler records for the
     forward op and for its backward node): the backward of the input gradient's graph and of
     the penalty's own D forward;
2. otherwise the op's own category, by its name (`OP_CATEGORIES`: the name exactly, or a
   prefix where the entry ends in '*'; the first category that matches);
3. what no op covers: "Python and untracked" = the profiled wall time minus the time of
   every top-level profiler event (the interpreter, the loop, the profiler's own cost).

Within each region the op categories are kept too (`by_region`), so the report can say how
much of the penalty is convolution. The profiler adds a few microseconds per op; the
unprofiled it/s of the same runner is reported beside the profile for scale.
"""
from __future__ import annotations

import contextlib
import time
from collections import defaultdict

import torch

from ..device import native_bf16_cpu
from .cpu_speed import MATMUL_N

# (category, profiler op names): a name matches exactly, or as a prefix where it ends in '*'.
# Everything not listed is "other"; the report prints the top ops with their categories so a
# missing mapping shows.
OP_CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("convolution", ("aten::conv*", "aten::_conv*", "aten::mkldnn_convolution*", "aten::slow_conv*",
                     "aten::thnn_conv*", "aten::_slow_conv*", "aten::cudnn_convolution*")),
    ("matmul (linear layers)", ("aten::addmm", "aten::mm", "aten::bmm", "aten::linear", "aten::matmul",
                                "aten::baddbmm", "aten::_addmm_activation")),
    ("batch norm", ("aten::batch_norm*", "aten::_batch_norm*", "aten::native_batch_norm*",
                    "aten::_native_batch_norm*")),
    ("layer norm (group_norm)", ("aten::group_norm*", "aten::native_group_norm*", "aten::layer_norm*",
                                 "aten::native_layer_norm*")),
    ("activations", ("aten::relu*", "aten::leaky_relu*", "aten::tanh*", "aten::sigmoid*", "aten::threshold*",
                     "aten::clamp_min*", "aten::softplus*", "aten::elu*", "aten::hardtanh*", "aten::gelu*",
                     "aten::silu*", "aten::log_sigmoid*")),
    ("optimizer", ("aten::_fused_adam*", "aten::_foreach_*", "aten::_fused_sgd*", "aten::addcdiv*",
                   "aten::addcmul*", "aten::lerp*")),
    ("host synchronisation", ("aten::item", "aten::_local_scalar_dense", "aten::is_nonzero", "aten::equal",
                              "aten::allclose")),
    ("allocation", ("aten::empty*", "aten::zeros*", "aten::ones*", "aten::new_empty*", "aten::new_zeros",
                    "aten::new_ones", "aten::resize_", "aten::full*", "aten::scalar_tensor", "[memory]")),
    ("copies and casts (dtype, layout)", ("aten::copy_", "aten::_to_copy", "aten::to", "aten::clone",
                                          "aten::contiguous", "aten::_copy_from*", "aten::type_as")),
    ("views and bookkeeping", ("aten::view*", "aten::t", "aten::transpose*", "aten::permute", "aten::reshape*",
                               "aten::_reshape_alias", "aten::as_strided*", "aten::expand*", "aten::unsqueeze*",
                               "aten::squeeze*", "aten::detach*", "detach", "aten::alias", "aten::select*",
                               "aten::slice*", "aten::flatten", "aten::lift_fresh", "aten::unflatten",
                               "aten::resolve_conj", "aten::resolve_neg", "aten::_unsafe_view",
                               "aten::set_", "aten::requires_grad_", "aten::result_type", "aten::chunk",
                               "aten::split*", "aten::unbind", "aten::narrow")),
    ("random numbers and batch draw", ("aten::randn*", "aten::rand", "aten::rand_like", "aten::randint*",
                                       "aten::normal_", "aten::uniform_", "aten::random_", "aten::bernoulli*",
                                       "aten::index", "aten::_unsafe_index", "aten::index_select",
                                       "aten::gather")),
    ("elementwise and reductions", ("aten::add*", "aten::sub*", "aten::rsub", "aten::mul*", "aten::div*",
                                    "aten::sum", "aten::mean", "aten::norm", "aten::linalg_vector_norm",
                                    "aten::pow*", "aten::sqrt*", "aten::rsqrt*", "aten::neg*", "aten::abs*",
                                    "aten::exp*", "aten::log", "aten::log_", "aten::clamp*", "aten::where",
                                    "aten::fill_", "aten::zero_", "aten::binary_cross_entropy*", "aten::stack",
                                    "aten::cat", "aten::sign", "aten::reciprocal*", "aten::max*", "aten::min*",
                                    "aten::std*", "aten::var*", "aten::isfinite", "aten::logsumexp",
                                    "aten::ne", "aten::eq", "aten::lt", "aten::gt", "aten::ge", "aten::le",
                                    "aten::masked_fill*", "aten::_has_compatible_shallow_copy_type",
                                    "aten::square", "aten::sgn", "aten::_softmax*", "aten::softmax")),
    ("autograd engine", ("autograd::engine::evaluate_function*",)),
]
FAST_IN_BF16 = ("convolution", "matmul (linear layers)")   # the ops with bf16 kernels (oneDNN / MKL)
PENALTY_REGIONS = ("penalty: D forward on its points", "penalty: input gradient (with graph)",
                   "penalty: double backward")
PYTHON = "Python and untracked"


def op_category(name: str) -> str:
    """The category of an op by its profiler name (OP_CATEGORIES); autograd nodes
    (`MulBackward0`) are the engine's, record_function labels the Python around them."""
    for category, patterns in OP_CATEGORIES:
        if any(name == p or p.endswith("*") and name.startswith(p[:-1]) for p in patterns):
            return category
    if name.endswith(("Backward0", "Backward1", "BackwardBackward0")) and "::" not in name:
        return "autograd engine"
    if "::" not in name:            # a record_function label: Optimizer.step#..., harness.penalty
        return PYTHON
    return "other"


def _ancestors(event):
    while event is not None:
        yield event
        event = event.cpu_parent


def _region(event, penalty_seq: set) -> str | None:
    chain = list(_ancestors(event))
    names = [e.name for e in chain]
    if any(n.startswith(("Optimizer.step#", "Optimizer.zero_grad#")) for n in names):
        return "optimizer"
    if "harness.penalty" in names:
        inner = names[:names.index("harness.penalty")]
        return PENALTY_REGIONS[1] if any(n.startswith("autograd::engine::evaluate_function") for n in inner) \
            else PENALTY_REGIONS[0]
    for e in chain:
        if e.name.startswith("autograd::engine::evaluate_function") and e.sequence_nr in penalty_seq:
            return PENALTY_REGIONS[2]
    return None


def attribute(events, wall_us: float) -> dict:
    """{"categories": category -> self µs, "by_region": region -> op category -> µs,
    "ops": op name -> [self µs, calls]} over a profile's events (module docstring)."""
    events = list(events)
    penalty_seq = set()
    for e in events:
        if e.sequence_nr >= 0 and "harness.penalty" in (a.name for a in _ancestors(e.cpu_parent)):
            penalty_seq.add(e.sequence_nr)
    categories: dict = defaultdict(float)
    by_region: dict = defaultdict(lambda: defaultdict(float))
    ops: dict = defaultdict(lambda: [0.0, 0])
    covered = 0.0
    for e in events:
        us = e.self_cpu_time_total
        if e.cpu_parent is None:
            covered += e.cpu_time_total
        op = op_category(e.name)
        region = _region(e, penalty_seq)
        categories[region or op] += us
        by_region[region or "outside the penalty"][op] += us
        ops[e.name][0] += us
        ops[e.name][1] += 1
    categories[PYTHON] += max(0.0, wall_us - covered)
    by_region["outside the penalty"][PYTHON] += max(0.0, wall_us - covered)
    return {"categories": dict(categories), "by_region": {k: dict(v) for k, v in by_region.items()},
            "ops": {k: tuple(v) for k, v in ops.items()}}


@contextlib.contextmanager
def labelled_penalty(runner):
    """The runner's objective's `penalty` inside a `harness.penalty` record_function (only
    where it has a penalty: otherwise the call is a few microseconds of Python returning None)."""
    objective = runner.session.step.objective
    original = objective.penalty
    if not objective.all_penalties:
        yield
        return

    def penalty(*args, **kwargs):
        with torch.profiler.record_function("harness.penalty"):
            return original(*args, **kwargs)
    objective.penalty = penalty
    try:
        yield
    finally:
        objective.penalty = original


def profile_runner(runner, iterations: int, top: int = 12) -> dict:
    """Per-iteration figures of `iterations` profiled iterations (after the caller's warm-up),
    and the unprofiled rate of as many iterations just before (by the thread's CPU time), for scale."""
    from torch.profiler import ProfilerActivity, profile
    c0 = time.thread_time()     # one thread does the work: its CPU time is the run's own (cpu_speed.CLOCK)
    runner.run(iterations)
    plain = iterations / max(time.thread_time() - c0, 1e-9)
    with labelled_penalty(runner), profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        runner.run(iterations)
        wall_us = (time.perf_counter() - t0) * 1e6
    a = attribute(prof.events(), wall_us)
    total = sum(a["categories"].values())
    per_it = lambda us: us / iterations / 1e3   # noqa: E731 - ms per iteration
    cats = sorted(a["categories"].items(), key=lambda kv: -kv[1])
    ops = sorted(a["ops"].items(), key=lambda kv: -kv[1][0])[:top]
    return {"iterations": iterations, "its_per_s_unprofiled": plain, "ms_per_it_profiled": per_it(wall_us),
            "categories": {k: {"ms_per_it": per_it(v), "share": v / total} for k, v in cats},
            "by_region": {r: {k: per_it(v) for k, v in sorted(d.items(), key=lambda kv: -kv[1])}
                          for r, d in a["by_region"].items()},
            "top_ops": [{"op": k, "category": op_category(k), "ms_per_it": per_it(us), "share": us / total,
                         "calls_per_it": n / iterations} for k, (us, n) in ops]}


def fast_share(p: dict, penalty: bool = True) -> float:
    """Share of the iteration in ops with bf16 kernels (convolution, matmul), over every region
    or, with penalty=False, outside the penalty (which stays fp32 on the default path)."""
    total = sum(c["ms_per_it"] for c in p["categories"].values())
    regions = p["by_region"].items() if penalty else \
        ((r, d) for r, d in p["by_region"].items() if r not in PENALTY_REGIONS)
    return sum(ms for _, d in regions for k, ms in d.items() if k in FAST_IN_BF16) / total


def ceiling(share: float, unit_speedup: float | None) -> float:
    """Amdahl's law: the whole iteration's speed-up when a `share` of it runs `unit_speedup`
    times faster and the rest as before; None: the limit of infinitely fast units."""
    if unit_speedup is None:
        return 1 / (1 - share) if share < 1 else float("inf")
    return 1 / ((1 - share) + share / unit_speedup)


def measure_profile(images, log, objectives=("gan", "wgan-gp"), iterations: dict | None = None,
                    unit_speedup: float | None = None, size: tuple | None = None,
                    fp32_matmul_gflops: float | None = None) -> dict:
    """Profile each objective on the harness's fp32 path, and on its bf16 path (autocast +
    channels_last; for wgan-gp also with the penalty under autocast) where this CPU has bf16
    units (on one without, bf16 is emulated and tens of times slower: not worth profiling).
    `unit_speedup`: this core's bf16 / fp32 matmul rate, for the Amdahl ceilings. `size`:
    (filters, depth, batch), the quick study's by default (cpu_speed.ARCH, BATCH).
    `fp32_matmul_gflops`: this core's fp32 matmul rate, against which the convolutions' own
    rate (their FLOPs over their profiled time) is put: the fp32 path's headroom."""
    from .cpu_speed import ARCH, BATCH
    filters, depth, batch = size or (*ARCH, BATCH)
    from .plan import bench_arch
    from .runners import HarnessRunner
    from .timing import count_flops
    iterations = iterations or {"gan": 10, "wgan-gp": 3}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        arch = bench_arch(filters, depth)
        bf16 = native_bf16_cpu()
        out = {"arch": f"DCGAN depth {depth}, {filters} filters, batch {batch}", "threads": 1,
               "native_bf16": bf16, "unit_speedup": unit_speedup, "fp32_matmul_gflops": fp32_matmul_gflops,
               "objectives": {}}
        for obj in objectives:
            paths = {"harness fp32": dict(precision="fp32")}
            if bf16:
                paths["harness auto"] = dict(precision="auto")
                if obj == "wgan-gp":
                    paths["harness auto, penalty autocast"] = dict(precision="auto", penalty="autocast")
            rows = {}
            for name, how in paths.items():
                runner = HarnessRunner(arch, obj, batch, torch.device("cpu"), images, precision=how["precision"])
                if how.get("penalty") == "autocast":
                    runner.session.step.penalty_dtype = runner.session.amp_dtype
                runner.run(2)   # warm-up: oneDNN primitives, allocator
                rows[name] = profile_runner(runner, iterations.get(obj, 3))
                p = rows[name]
                p["gflop_per_it"] = count_flops(runner) / 1e9
                # the fast ops' own rate: their FLOPs over their share of the unprofiled iteration's
                # CPU time (the profiler's per-op times carry its overhead and, on a loaded machine,
                # the waits for a core; their shares are what is taken from it)
                f = fast_share(p, True)
                p["fast_ops_gflop_per_s"] = p["gflop_per_it"] * p["its_per_s_unprofiled"] / f if f else None
                log(f"profile {obj} {name}: {p['its_per_s_unprofiled']:.2f} it/s unprofiled; " + ", ".join(
                    f"{k} {100 * v['share']:.0f} %" for k, v in list(p["categories"].items())[:5]))
            fp32 = rows["harness fp32"]
            shares = {"all": fast_share(fp32, True), "outside the penalty": fast_share(fp32, False)}
            out["objectives"][obj] = {
                "paths": rows, "fast_share": shares,
                "ceiling": {k: {"s2": ceiling(v, 2), "s4": ceiling(v, 4), "limit": ceiling(v, None),
                                "this_core": ceiling(v, unit_speedup) if unit_speedup else None}
                            for k, v in shares.items()}}
        return out
    finally:
        torch.set_num_threads(threads)


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def profile_markdown(r: dict) -> list[str]:
    """The profile's tables: categories per objective and path, the penalty's regions by op
    category, the top ops, and the Amdahl ceilings of the bf16 path."""
    lines = ["", f"## Where the time goes: {r['arch']}, {r['threads']} thread (torch.profiler)", "",
             "Each profiler event's self CPU time in one category (harness/bench/profile.py's docstring "
             "gives the mapping: the penalty's and the optimizer's regions by call tree, the rest by op name; "
             "'Python and untracked' is the profiled wall time no op covers). Milliseconds per generator "
             "iteration while profiled; the unprofiled rate of the same runner (by its thread's CPU time) is given "
             "for scale. On a loaded machine the profiler's per-op times also count waits for a core, spread "
             "over the ops at random: the shares hold, the milliseconds are high."]
    if not r["native_bf16"]:
        lines += ["", "This CPU has no bf16 units (torch's query: no AVX512-BF16, no AMX): `precision: auto` "
                      "runs fp32 here and only the fp32 path is profiled; bf16 would be emulated."]
    for obj, o in r["objectives"].items():
        lines += _objective_markdown(obj, o, r)
    return lines + _ceiling_markdown(r)


def _objective_markdown(obj: str, o: dict, r: dict) -> list[str]:
    """One objective's tables: categories per path, the penalty's regions, the top ops."""
    lines: list[str] = []
    names = list(o["paths"])
    lines += ["", f"### {obj}", "",
              "| category | " + " | ".join(f"{n}: ms/it | share" for n in names) + " |",
              "|---|" + "---|---|" * len(names)]
    cats = list(dict.fromkeys(k for n in names for k in o["paths"][n]["categories"]))
    for c in cats:
        cells = []
        for n in names:
            v = o["paths"][n]["categories"].get(c)
            cells += [f"{v['ms_per_it']:.1f}", _pct(v["share"])] if v else ["-", "-"]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines.append("| **profiled wall** | " + " | ".join(
        f"**{o['paths'][n]['ms_per_it_profiled']:.1f}** | unprofiled {o['paths'][n]['its_per_s_unprofiled']:.2f} it/s"
        for n in names) + " |")
    for n in names:
        p = o["paths"][n]
        if p.get("fast_ops_gflop_per_s"):
            peak = r.get("fp32_matmul_gflops")
            lines.append("")
            lines.append(f"{n}: {p['gflop_per_it']:.2f} GFLOP per iteration (flop_counter: convolutions and "
                         f"matmuls), which those ops run at {p['fast_ops_gflop_per_s']:.0f} GFLOP/s (their share "
                         "of the unprofiled iteration's CPU time)"
                         + (f", {100 * p['fast_ops_gflop_per_s'] / peak:.0f} % of this core's fp32 "
                            f"{MATMUL_N}^2 matmul ({peak:.0f} GFLOP/s)" if peak and n == "harness fp32" else "")
                         + ".")
    fp32 = o["paths"]["harness fp32"]
    pen = {reg: fp32["by_region"][reg] for reg in PENALTY_REGIONS if reg in fp32["by_region"]}
    if pen:
        lines += ["", "The penalty's regions (fp32 path) by op category, ms per iteration:", "",
                  "| region | total | " + " | ".join(["convolution", "layer norm (group_norm)", "activations",
                                                      "elementwise and reductions", "autograd engine",
                                                      "rest"]) + " |", "|---|---|---|---|---|---|---|---|"]
        for reg, d in pen.items():
            main = [d.get(k, 0.0) for k in ("convolution", "layer norm (group_norm)", "activations",
                                            "elementwise and reductions", "autograd engine")]
            lines.append(f"| {reg} | {sum(d.values()):.1f} | " + " | ".join(f"{x:.1f}" for x in main)
                         + f" | {sum(d.values()) - sum(main):.1f} |")
    lines += ["", f"Top ops by self time ({names[0]}):", "", "| op | category | ms/it | share | calls/it |",
              "|---|---|---|---|---|"]
    for t in o["paths"][names[0]]["top_ops"]:
        lines.append(f"| `{t['op']}` | {t['category']} | {t['ms_per_it']:.2f} | {_pct(t['share'])} | "
                     f"{t['calls_per_it']:.0f} |")
    return lines


def _ceiling_markdown(r: dict) -> list[str]:
    """The bf16 path's Amdahl ceilings and the fp32 path's own headroom."""
    lines: list[str] = []
    lines += ["", "### The ceiling of the bf16 path (Amdahl's law over the fp32 profile)", "",
              "Only convolutions and matrix products have bf16 kernels that run faster than fp32; everything "
              "else (norms, activations, elementwise, the optimizer, Python) keeps its fp32 time or gets "
              "slower (autocast's casts). With a share f of the fp32 iteration in those ops running s times "
              "faster, the iteration speeds up at most 1 / ((1 - f) + f / s), and 1 / (1 - f) with infinitely "
              "fast units; 2x needs f >= 50 % even then, and f >= (1 - 1/2) / (1 - 1/s) at a finite s. "
              "s = 2 is what AVX512-BF16's dot products give over fp32 FMAs per instruction (twice the "
              "multiply-adds); s = 4 for comparison"
              + (f"; this core's own bf16 / fp32 1024^2 matmul ratio is {r['unit_speedup']:.3g}"
                 + (" (emulated bf16)" if r["unit_speedup"] < 1 else "") if r["unit_speedup"] else "") + ".", "",
              "| objective | ops in bf16 | share f of the fp32 iteration | ceiling, s = 2 | s = 4 | s infinite "
              "| f needed for 2x at s = 4 |" + (" this core's s |" if r["unit_speedup"] else ""),
              "|---|---|---|---|---|---|---|" + ("---|" if r["unit_speedup"] else "")]
    for obj, o in r["objectives"].items():
        for k, f in o["fast_share"].items():
            if obj != "wgan-gp" and k != "all":
                continue
            what = ("convolutions and matmuls" if k == "all" else
                    "convolutions and matmuls outside the penalty (penalty in fp32)")
            cells = [f"{ceiling(f, s):.2f}x" for s in (2, 4, None)]
            here = [f"{ceiling(f, r['unit_speedup']):.2f}x"] if r["unit_speedup"] else []
            lines.append(f"| {obj} | {what} | {_pct(f)} | " + " | ".join(cells) + f" | {_pct(needed(2, 4))} | "
                         + " | ".join(here) + (" |" if here else ""))
    peak = r.get("fp32_matmul_gflops")
    if peak:
        lines += ["", "The fp32 path's own headroom: if its convolutions and matmuls ran at this core's full fp32 "
                      "matmul rate instead of their rate r, and everything else were free, the iteration "
                      "would speed up 1 / (f r / peak); with everything else as it is, 1 / ((1 - f) + f r / peak).", "",
                  "| objective | f | r, GFLOP/s | r / fp32 matmul | ceiling, the rest as it is | ceiling, the rest free |",
                  "|---|---|---|---|---|---|"]
        for obj, o in r["objectives"].items():
            p = o["paths"]["harness fp32"]
            if not p.get("fast_ops_gflop_per_s"):
                continue
            f, eff = o["fast_share"]["all"], p["fast_ops_gflop_per_s"] / peak
            lines.append(f"| {obj} | {_pct(f)} | {p['fast_ops_gflop_per_s']:.0f} | {_pct(eff)} | "
                         f"{1 / ((1 - f) + f * eff):.2f}x | {1 / (f * eff):.2f}x |")
    return lines


def needed(target: float, unit_speedup: float) -> float:
    """The share f that Amdahl's law needs for `target` at `unit_speedup` (>1 for a finite s)."""
    return (1 - 1 / target) / (1 - 1 / unit_speedup)
