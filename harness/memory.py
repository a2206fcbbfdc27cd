"""A trial's peak memory, estimated before anything runs, and the refusal of what cannot fit.

Why: a batch size, a sample count or a pack size that a machine cannot hold used to be
found out by the machine (budget.batch_size 1e9, eval.n_samples 1e9 or `gan+pack:100000`
took the whole RAM within seconds, before the sweep had recorded anything). `check_machine`
refuses such an experiment up front, naming the field, from the estimate below; Ray itself
packs trials by CPU and GPU counts only and never looks at memory.

The estimate, in bytes, for one trial (B = budget.batch_size D inputs, M = samples per D
input: the packing size, 1 without packing; act_G, act_D = elements of every layer's output
for one G sample / one D input, counted by forward hooks on PyTorch's meta device, which
allocates nothing, so a pack of 100,000 is priced without being built):

  nets        = params(G, D) x 4 x (weight + gradient + optimizer states: Adam 2, RMSProp 1)
                (+ 2 bytes per weight under bf16: autocast's cast copies)
                (+ the unrolled lookahead's K copies of D's weights and their gradients)
  training    = TRAINING_HEADROOM x 4 x [B M x act_G x G_GRAPHS + B x act_D x (D_GRAPHS + penalty + remedy)]
                (fp32 even under bf16: conservative; every layer output of a graph kept
                for backward, counted whole, the D step's and the G step's graphs summed
                although they are not alive together; see the constants below)
  data        = the resident uint8 training set (trial.dataset_bytes)
  evaluation  = n_samples x [4 x sample x 2 (the drawn chunks and their concatenation)
                + sample (the uint8 copy) + 4 x features x FEATURE_COPIES]
                + the evaluator's fixed buffers (its network, FID/KID or W1/KDE matrices)
  base        = PROCESS_BYTES on the host (an imported torch and torch-fidelity in a Ray
                worker), device.CUDA_CONTEXT_BYTES on a GPU

On a CPU every term lives in the host's RAM. On a GPU the nets, training, data and CUDA
context are on the device; the evaluation's samples and features are gathered on the host
(evaluate.base.draw_samples), so they and the process count against the host's RAM.
tests/test_memory.py checks the estimate against a measured peak (the process's peak RSS
around one small trial) and against the exact bytes autograd saves for backward.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import torch
from torch import nn

from .config import Experiment, check_d_steps, check_work
from .data import get_dataset_spec
from .errors import ConfigError
from .remedies.base import samples_per_input
from .trial import Trial, data_shape, dataset_bytes, evaluator_name, trials_of, z_dim

GiB = 2**30
FLOAT_BYTES = 4
# Graphs kept for backward, each counted whole, summed over the D step and the G step (which
# never hold theirs at the same time: conservative):
G_GRAPHS = 1          # G's graph in the G step (the D step makes its fake batch without one)
D_GRAPHS = 3          # D on real and on fake in the D step, D on fake in the G step
PENALTY_GRAPHS = 4    # a gradient penalty: D on the interpolates, the input gradient's graph and its backward
# Autograd's gradient buffers and the norm layers' backward temporaries, which the layer outputs
# above leave out: 4-layer 512-wide MLPs (gan at batch 8,192, gan+pack:4 at 2,048) peaked at 1.0x
# and 1.13x the graphs' sum (RSS, tests/test_memory.py), so the sum is raised by this much; for
# DCGAN image nets what autograd saves was 0.45x to 0.7x of the sum (an exact count, same file).
TRAINING_HEADROOM = 1.3
OPTIMIZER_STATES = {"adam": 2, "rmsprop": 1}       # tensors of a parameter's size per parameter
# Features an evaluator keeps per generated sample, in float32 elements: torch-fidelity's
# Inception keeps its 1008 logits (IS) and 2048 pool features (FID/KID); the shipped
# classifier its 10 logits and 128 penultimate units (evaluate/classifier.py); toy2d the
# distances to the K modes (added below) and a float64 copy of each 2D point.
EVALUATOR_FEATURES = {"inception": 1008 + 2048, "fmnist-classifier": 10 + 128, "toy2d": 2 * 2}
# The extractor's list of batches, their concatenation, and numpy's float64 copy for the
# FID / KID statistics (two float32s); the real side's cached features count as one more.
FEATURE_COPIES = 5
# Fixed buffers of an evaluation: Inception's weights (95.6 MB file, loaded twice: the state
# dict and the network) with FID's two 2048 x 2048 float64 covariances and sqrtm's work arrays,
# and KID's three 1000 x 1000 float64 kernels; the small classifier's are the same matrices
# at 128 features. toy2d: the exact W1's cost matrix, the solver's flow and a copy (up to
# W1_POINTS^2 float64 each), and the KDE's distance matrices between its fit points (up to
# KDE_POINTS) and the W1_POINTS data points (3 float64 arrays alive at once).
INCEPTION_WEIGHT_BYTES = 100 * 2**20
KID_SUBSET = 1000
PROCESS_BYTES = GiB   # a process that imported torch, torch-fidelity and ray: 0.9 GB measured here (ru_maxrss)
USABLE_RAM_SHARE = 0.9   # of the machine's RAM: the OS, the driver and page cache need the rest


@dataclass
class Estimate:
    """A trial's estimated peak, by term (bytes), split into what the host and the GPU hold."""

    trial_id: str
    host: dict[str, int] = field(default_factory=dict)
    device: dict[str, int] = field(default_factory=dict)

    @property
    def host_bytes(self) -> int:
        return sum(self.host.values())

    @property
    def device_bytes(self) -> int:
        return sum(self.device.values())


def _leaf_outputs(net: nn.Module, *inputs) -> int:
    """Elements of every leaf module's output for `inputs` (on the meta device: nothing is
    allocated). Spectral norm's parametrization modules are skipped: their outputs are
    weights, not activations, and their parent layer's output is counted."""
    skip = {id(m) for module in net.modules() if hasattr(module, "parametrizations")
            for m in module.parametrizations.modules()}
    total = 0

    def hook(module, args, output):
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    handles = [m.register_forward_hook(hook) for m in net.modules()
               if id(m) not in skip and all(name == "parametrizations" for name, _ in m.named_children())]
    try:
        with torch.no_grad():
            net.eval()(*inputs)
    finally:
        for h in handles:
            h.remove()
    return total


@dataclass(frozen=True)
class NetSizes:
    params_g: int
    params_d: int
    act_g: int     # layer-output elements per generated sample
    act_d: int     # per D input (a pack of M samples under packing)


SAMPLE_BATCH = 2   # the hook pass's batch: 2, so that batch statistics (minibatch-stddev) are defined
# Sizes by what decides them: a sweep's hundreds of architectures share a few dozen G's and
# D's (the nonlinearities of the space keep every layer's width: relu and tanh nets have the
# same sizes), and each costs a second or so on the meta device.
_G_SIZES: dict[tuple, tuple[int, int]] = {}
_D_SIZES: dict[tuple, tuple[int, int]] = {}


def _width_nonlin(name: str) -> str:
    from .space import NONLINEARITIES
    return "elementwise" if name in NONLINEARITIES else name


def _sizes(trial: Trial, objective) -> NetSizes:
    """Parameters and per-sample activations of G and D as the trainer builds them (the
    conditional nets for a conditional experiment; remedies widen D's input or add to its head).
    Built on the meta device without the DCGAN init (sizes only)."""
    from .nets import build_discriminator, build_generator
    from .nets.conditional import build_conditional_discriminator, build_conditional_generator
    exp, s, a = trial.experiment, objective.settings, trial.arch
    shape, z = data_shape(exp), z_dim(exp)
    k = get_dataset_spec(exp.dataset).num_classes if exp.conditional else 0
    n = SAMPLE_BATCH
    labels = (torch.zeros(n, dtype=torch.long, device="meta"),) if k else ()
    key_g = (a.family_g, a.depth_g, a.filters_g, a.norm_g, a.constant_filters_g, _width_nonlin(a.nonlin_g), shape, z, k)
    if key_g not in _G_SIZES:
        with torch.device("meta"):
            G = (build_conditional_generator(a, shape, z, k, init="pytorch") if k
                 else build_generator(a, shape, z, init="pytorch"))
            _G_SIZES[key_g] = (sum(p.numel() for p in G.parameters()),
                               math.ceil(_leaf_outputs(G, torch.empty(n, z), *labels) / n))
    key_d = (a.family_d, a.depth_d, a.filters_d, objective.d_is_normalized(a.norm_d) and s.d_norm,
             _width_nonlin(a.nonlin_d), s.spectral_norm,
             tuple(r.label for r in objective.remedies), shape, k)
    if key_d not in _D_SIZES:
        d_shape = shape
        for remedy in objective.remedies:
            d_shape = remedy.d_shape(d_shape)
        with torch.device("meta"):
            if k:
                D = build_conditional_discriminator(a, d_shape, k, s.d_norm, spectral=s.spectral_norm, init="pytorch")
            else:
                D = build_discriminator(a, d_shape, s.d_norm, spectral=s.spectral_norm, init="pytorch")
                for remedy in objective.remedies:
                    D = remedy.wrap_discriminator(D)
            _D_SIZES[key_d] = (sum(p.numel() for p in D.parameters()),
                               math.ceil(_leaf_outputs(D, torch.empty(n, *d_shape), *labels) / n))
    (params_g, act_g), (params_d, act_d) = _G_SIZES[key_g], _D_SIZES[key_d]
    return NetSizes(params_g, params_d, act_g, act_d)


def _unrolled_steps(objective) -> int:
    return sum(int(r.arg) for r in objective.remedies if r.name == "unrolled")


def evaluation_bytes(exp: Experiment) -> dict[str, int]:
    """The host memory of one evaluation: per-sample arrays and the evaluator's fixed buffers."""
    from .evaluate import kde, toy2d
    spec = get_dataset_spec(exp.dataset)
    name, n = evaluator_name(exp), exp.eval.n_samples
    sample = math.prod(spec.shape)
    features = EVALUATOR_FEATURES.get(name, EVALUATOR_FEATURES["inception"])
    if name == "toy2d":   # float64 matrices: W1's cost and the solver's flow; the KDE's distances
        features += spec.num_classes
        w1, fit = min(n, toy2d.W1_POINTS), min(n // 2, kde.KDE_POINTS)
        fixed = 8 * (3 * w1 ** 2 + 3 * fit * max(toy2d.W1_POINTS, fit))
    else:
        dims = 2048 if name == "inception" else 128
        fixed = 8 * (4 * dims ** 2 + 3 * KID_SUBSET ** 2) + (2 * INCEPTION_WEIGHT_BYTES if name == "inception" else 0)
    return {"evaluation samples": n * (2 * FLOAT_BYTES * sample + sample + FLOAT_BYTES * features * FEATURE_COPIES),
            "evaluator buffers": fixed}


def estimate(trial: Trial, device: str = "cpu", objective=None) -> Estimate:
    """The trial's peak memory by term (module docstring); `device` is where it trains."""
    exp = trial.experiment
    objective = objective or trial.make_objective()
    s, sizes = objective.settings, _sizes(trial, objective)
    params = sizes.params_g + sizes.params_d
    per_param = FLOAT_BYTES * (2 + OPTIMIZER_STATES.get(s.optimizer, 2))
    bf16 = exp.train.precision != "fp32"   # auto is bf16 on CUDA and on CPUs with bf16 units (device.py)
    unroll = _unrolled_steps(objective)
    nets = params * per_param + (2 * params if bf16 else 0) + 2 * unroll * sizes.params_d * FLOAT_BYTES
    b, m = exp.budget.batch_size, samples_per_input(objective.remedies)
    penalty = PENALTY_GRAPHS if getattr(objective, "all_penalties", None) or getattr(s, "gp_weight", 0) else 0
    # the lookahead's and feature matching's D passes with a graph: their FLOP count in forward
    # equivalents (cost.py), halved (a forward and its backward are 3; a graph kept for a
    # double backward holds more than one forward's outputs: 2 is what an exact count needs)
    extra_d = math.ceil(sum(r.extra_g_step_d_forwards for r in objective.remedies) / 2)
    graphs = b * m * sizes.act_g * G_GRAPHS + b * sizes.act_d * (D_GRAPHS + penalty + extra_d)
    training = math.ceil(TRAINING_HEADROOM * FLOAT_BYTES * graphs)
    inputs = FLOAT_BYTES * b * m * (2 * math.prod(data_shape(exp)) + z_dim(exp))   # real and fake batches, z
    est = Estimate(trial.id)
    on_gpu = device != "cpu"
    trained = {"nets": nets, "training activations": training + inputs, "data": dataset_bytes(exp)}
    from .device import CUDA_CONTEXT_BYTES
    if on_gpu:
        est.device = {**trained, "CUDA context": CUDA_CONTEXT_BYTES}
        est.host = {"process": PROCESS_BYTES, "data": dataset_bytes(exp), **evaluation_bytes(exp)}
    else:
        est.host = {"process": PROCESS_BYTES, **trained, **evaluation_bytes(exp)}
    return est


def _field_for(term: str, trial: Trial, objective) -> str:
    """The setting to change when `term` is what does not fit."""
    exp = trial.experiment
    method = f"objectives[{exp.objectives.index(trial.objective)}]" if trial.objective in exp.objectives else "objectives"
    packs = samples_per_input(objective.remedies) > 1 or _unrolled_steps(objective) > 0
    if term in ("evaluation samples", "evaluator buffers"):
        return "eval.n_samples"
    if term == "data":
        return "data.limit"
    if term == "training activations":
        return method if packs else "budget.batch_size"
    if term == "nets":
        return method if packs else ("train.z_dim" if exp.train.z_dim else "space")
    return "resources"


def machine_ram_bytes() -> int:
    """This machine's RAM: HARNESS_RAM_GB (a cluster's workers), else the smaller of the
    physical memory (os.sysconf) and the cgroup's limit (a container's share)."""
    if os.environ.get("HARNESS_RAM_GB"):
        return int(float(os.environ["HARNESS_RAM_GB"]) * GiB)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = open(limit).read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def _gib(n: int) -> str:
    return f"{n / GiB:.3g} GiB" if n < 1000 * GiB else f"{n / GiB:,.0f} GiB"


def largest(exp: Experiment, trials: list[Trial] | None = None, device: str = "cpu") -> tuple[Estimate, Trial, object]:
    """The trial with the largest estimate where it runs (the GPU's share on a GPU, else the host)."""
    from .trial import objective_for
    best, seen, objectives = None, set(), {}
    for t in trials if trials is not None else trials_of(exp):
        if (t.arch, t.objective) in seen:   # a method's seeds need the same memory
            continue
        seen.add((t.arch, t.objective))
        if t.objective not in objectives:
            objectives[t.objective] = objective_for(exp, t.objective)
        objective = objectives[t.objective]
        est = estimate(t, device, objective)
        key = est.device_bytes if device != "cpu" else est.host_bytes
        if best is None or key > best[0]:
            best = (key, est, t, objective)
    return best[1], best[2], best[3]


def check_fits(exp: Experiment, trials: list[Trial] | None = None, ram_bytes: int | None = None,
               gpu_bytes: int | None = None) -> Estimate:
    """Refuse (ConfigError naming the field) a trial whose estimate exceeds the usable RAM, or,
    with gpu_bytes (trials train on a GPU), the usable memory of a whole GPU: the largest share
    plan.trial_gpu_shares can give a trial. Returns the largest estimate."""
    from .device import USABLE_SHARE
    ram = machine_ram_bytes() if ram_bytes is None else ram_bytes
    est, trial, objective = largest(exp, trials, "cuda" if gpu_bytes else "cpu")
    checks = [("RAM", est.host, USABLE_RAM_SHARE * ram, ram)]
    if gpu_bytes:
        checks.append(("GPU memory", est.device, USABLE_SHARE * gpu_bytes, gpu_bytes))
    for where, terms, usable, total in checks:
        need = sum(terms.values())
        if need > usable:
            term = max((t for t in terms if t not in ("process", "CUDA context")), key=terms.get)
            parts = ", ".join(f"{k} {_gib(v)}" for k, v in sorted(terms.items(), key=lambda kv: -kv[1]))
            field_name = _field_for(term, trial, objective)
            raise ConfigError(field_name, f"trial {trial.id} would need about {_gib(need)} of {where} at its peak "
                                          f"({parts}: the estimate of harness/memory.py); this machine has "
                                          f"{_gib(total)}, {_gib(usable)} of it usable. {_remedy(field_name, exp)} "
                                          "(HARNESS_RAM_GB / HARNESS_GPU_MEMORY_GB give another machine's figures)")
    return est


def _remedy(field_name: str, exp: Experiment) -> str:
    return {"budget.batch_size": f"Lower budget.batch_size ({exp.budget.batch_size}).",
            "eval.n_samples": f"Lower eval.n_samples ({exp.eval.n_samples}).",
            "data.limit": "Set data.limit to keep fewer training images in memory.",
            "train.z_dim": f"Lower train.z_dim ({exp.train.z_dim}).",
            "space": "Restrict the space to smaller architectures (space.restrict)."}.get(
        field_name, "Use a smaller pack (or fewer lookahead steps) in this method, or a smaller budget.batch_size.")


def check_machine(exp: Experiment, trials: list[Trial] | None = None) -> Estimate:
    """Before a sweep or a trial starts: the work bounds (config.check_work, again, for a
    budget a command line changed) and the memory estimate against this machine (or
    HARNESS_RAM_GB / HARNESS_GPU_MEMORY_GB). Trials use a GPU unless train.device is cpu."""
    check_work(exp)
    for t in trials or []:
        check_d_steps(exp, t.objective, f"objectives[{exp.objectives.index(t.objective)}]"
                      if t.objective in exp.objectives else "--objective")
    gpu = None
    if exp.train.device != "cpu":
        from .device import gpu_memory_bytes
        gpu = gpu_memory_bytes()
    return check_fits(exp, trials, gpu_bytes=gpu)
