"""Where and how a trial computes: the device, the autocast dtype, the memory layout, and
how often losses are read back. Decided here once, from `train.*` settings and the machine."""
from __future__ import annotations

import contextlib
import os

import torch

# What a GPU holds besides the trials: shared by the sweep's GPU packing (study/sweep/packing.py)
# and a trial's memory check (memory.py), so both live in this layer.
CUDA_CONTEXT_BYTES = 600 * 2**20   # per process: a typical figure for recent CUDA, not measured here
USABLE_SHARE = 0.9                 # leave headroom for the allocator's fragmentation


def gpu_memory_bytes() -> int | None:
    """Memory of one GPU: HARNESS_GPU_MEMORY_GB (a cluster's workers), else this machine's GPU 0."""
    if os.environ.get("HARNESS_GPU_MEMORY_GB"):
        return int(float(os.environ["HARNESS_GPU_MEMORY_GB"]) * 2**30)
    return torch.cuda.get_device_properties(0).total_memory if torch.cuda.is_available() else None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def native_bf16_cpu() -> bool:
    """Whether this CPU has bf16 arithmetic units (AVX512-BF16 or AMX), by torch's own query."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_precision(name: str, device: torch.device, image: bool = True) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32. auto: bf16 on CUDA; on a CPU, bf16 for
    image trials where the CPU computes bf16 natively (1.40x for gan, 1.22x for wgan-gp with
    channels_last on an AVX512-BF16 EPYC core: `harness bench` measures it), fp32 elsewhere
    (the 2D MLPs are too small to gain; emulated bf16 is slower than fp32)."""
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16
        return torch.bfloat16 if image and native_bf16_cpu() else None
    return torch.bfloat16 if name == "bf16" else None


def use_channels_last(device: torch.device, image: bool, amp_dtype: torch.dtype | None) -> bool:
    """NHWC for image trials on CUDA (tensor cores) and with bf16 on a CPU (oneDNN's fast path)."""
    return image and (device.type == "cuda" or amp_dtype is not None)


def resolve_check_every(value: int, device: torch.device) -> int:
    """Loss read-back period: every step on CPU (free), every 25 on CUDA (a sync costs a step)."""
    return value or (1 if device.type == "cpu" else 25)


@contextlib.contextmanager
def torch_threads(n: int):
    """torch's intra-op thread count set to n for the block, and given back after it
    (a one-thread measurement must not leave its process on one thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
