"""What one bench run measures: reference configurations, plans per device, known peak rates."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ..errors import UnknownName
from ..space import FILTERS, Arch

SHAPE = (1, 32, 32)
Z_DIM = 128
N_IMAGES = 60_000            # a Fashion-MNIST-sized resident uint8 tensor
OBJECTIVES = ("gan", "wgan-gp")
# name -> (base filters, depth) of both G and D
CONFIGS = {"f64-d8": (64, 8), "f128-d20": (128, 20)}

# Dense (no sparsity) peak TFLOP/s from NVIDIA's data sheets: bf16 tensor core, fp32 (no TF32).
PEAK_TFLOPS = {
    "H200": {"bf16": 989.4, "fp32": 66.9},
    "H100 SXM": {"bf16": 989.4, "fp32": 66.9},
    "H100 NVL": {"bf16": 835.5, "fp32": 60.0},
    "H100 PCIe": {"bf16": 756.5, "fp32": 51.2},
    "A100": {"bf16": 312.0, "fp32": 19.5},
}


def peak_for(device_name: str) -> tuple[str, dict] | tuple[None, None]:
    """The peak table entry for a CUDA device name, or (None, None) when unknown."""
    n = device_name.upper()
    if "H200" in n:
        key = "H200"
    elif "H100" in n:
        key = "H100 PCIe" if "PCIE" in n else "H100 NVL" if "NVL" in n else "H100 SXM"
    elif "A100" in n:
        key = "A100"
    else:
        return None, None
    return key, PEAK_TFLOPS[key]


@dataclass
class Plan:
    """What one bench run measures; the CPU plans shrink the networks, not the method."""
    device: str
    quick: bool
    filter_div: int = 1          # base filters are divided by this (CPU only)
    batch: int = 64
    procs: tuple = (8, 16)
    warmup: int = 10
    budget_s: float = 10.0       # seconds each timed loop aims at
    min_iters: int = 10
    max_iters: int = 2000
    eval_n: int = 10_000
    trial_iters: int = 500
    compile: bool = True
    configs: tuple = tuple(CONFIGS)
    threads_per_proc: int = 0    # torch threads in each concurrent process; 0 = torch's default
    cpu_speed: bool = False      # CPU: the quick study's architecture at real size (cpu_speed.py)

    def config_arch(self, name: str) -> Arch:
        filters, depth = CONFIGS[name]
        return bench_arch(max(1, filters // self.filter_div), depth)


def make_plan(quick: bool, device: torch.device, **overrides) -> Plan:
    if device.type == "cuda":
        plan = Plan(str(device), quick)
        if quick:
            plan = Plan(str(device), quick, procs=(2,), warmup=3, budget_s=3.0, min_iters=3, eval_n=1000,
                        trial_iters=50, compile=False)
    elif quick:
        plan = Plan(str(device), quick, filter_div=16, batch=16, procs=(2,), warmup=1, budget_s=1.5,
                    min_iters=2, eval_n=500, trial_iters=4, compile=False, threads_per_proc=1)
    else:
        plan = Plan(str(device), quick, filter_div=8, batch=32, procs=(2,), warmup=2, budget_s=8.0,
                    min_iters=3, eval_n=2000, trial_iters=20, compile=False, threads_per_proc=1, cpu_speed=True)
    for k, v in overrides.items():
        if not hasattr(plan, k):
            raise UnknownName(f"unknown bench plan field {k!r}; valid: {sorted(asdict(plan))}")
        setattr(plan, k, v)
    return plan


def bench_arch(filters: int, depth: int) -> Arch:
    """The reference architecture; filters outside the space only for the reduced CPU version."""
    arch = Arch(nonlin_g="relu", nonlin_d="lrelu", depth_g=depth, depth_d=depth, norm_g=True, norm_d=True,
                filters_g=64, filters_d=64)
    if filters not in FILTERS:   # Arch validates against the space; the CPU version is off-grid
        object.__setattr__(arch, "filters_g", filters)
        object.__setattr__(arch, "filters_d", filters)
    else:
        arch = Arch(**{**arch.to_dict(), "filters_g": filters, "filters_d": filters})
    return arch
