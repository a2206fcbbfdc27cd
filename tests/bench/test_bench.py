"""The benchmark's machinery (a smoke test of the reduced CPU bench, no timing assertions)
and the agreement of the fast path (bf16 autocast) with the fp32 path of GANStep."""
from __future__ import annotations

import json
import math

import pytest
import torch

from harness import bench
from harness.objectives import get_objective
from harness.space import Arch
from harness.step import build_step


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@pytest.mark.slow   # spawns two processes and times every figure: a minute on 2 loaded cores
def test_quick_cpu_bench_writes_every_figure(tmp_path):
    from harness.device import native_bf16_cpu
    # The quick CPU plan, shrunk further so the test stays short: the larger config only,
    # whose depth-20 wgan-gp is the slowest figure; every figure is still produced.
    plan = dict(batch=4, filter_div=32, budget_s=0.2, min_iters=1, eval_n=100, trial_iters=2,
                configs=("f128-d20",))
    assert bench.run_bench(quick=True, out_dir=str(tmp_path), device="cpu", log=lambda m: None, **plan) == 0
    stem = bench.device_slug(torch.device("cpu")) + "-quick"
    assert stem.startswith("cpu-")
    report = json.loads((tmp_path / f"{stem}.json").read_text())
    md = (tmp_path / f"{stem}.md").read_text()
    assert "CPU, reduced configuration" in md and "| harness |" in md and "| reference |" in md

    hw = report["hardware"]
    for k in ("device_name", "cpu_count", "torch", "date", "command"):
        assert hw[k], k
    procs = report["plan"]["procs"]
    assert procs == [2]
    assert set(report["configs"]) == {"f128-d20/gan", "f128-d20/wgan-gp"}
    for key, row in report["configs"].items():
        for impl in ("harness", "reference"):
            x = row[impl]
            for fig in ("alone_its_per_s", "flops_per_iter", "alone_tflops"):
                assert _positive(x[fig]), (key, impl, fig, x[fig])
            for n in procs:
                agg = x[f"aggregate_{n}"]
                # whether the processes' timed windows overlapped depends on the machine's
                # scheduling, so it is reported (agg["overlap"]), not asserted
                assert _positive(agg["its_per_s"]) and _positive(agg["tflops"]), (key, impl, agg)
            assert x["alone_peak_share"] is None   # no peak for a CPU: TFLOP/s only
        # precision auto: bf16 autocast where the CPU has bf16 units (harness.device.resolve_precision)
        assert row["harness"]["precision"] == ("bf16-autocast" if native_bf16_cpu() else "fp32")
        assert row["reference"]["precision"] == "fp32"
        for ratio in ["ratio_alone"] + [f"ratio_aggregate_{n}" for n in procs]:
            assert _positive(row[ratio]), (key, ratio)
        # the same networks: the harness and the reference count (nearly) the same FLOPs;
        # the reference's G step also computes D's weight gradients, so it counts a little more
        assert 0.9 < row["reference"]["flops_per_iter"] / row["harness"]["flops_per_iter"] < 1.5
    # n_critic 5 + gradient penalty: a wgan-gp iteration costs several gan iterations
    assert report["configs"]["f128-d20/wgan-gp"]["harness"]["flops_per_iter"] > \
        3 * report["configs"]["f128-d20/gan"]["harness"]["flops_per_iter"]

    ev, ov = report["eval_cost"], report["trial_overhead"]
    assert "error" not in ev, ev.get("error")
    assert _positive(ev["seconds"]) and ev["n_samples"] == 100
    assert "error" not in ov, ov.get("error")
    assert ov["status"] in ("ok", "collapsed") and ov["iterations"] == 2   # 2 steps: collapse is expected
    assert _positive(ov["wall_time_s"]) and _positive(ov["train_time_s"])
    assert 0 < ov["outside_training_share"] < 1
    assert "skipped" in report["compile"]          # CUDA only


def test_aggregate_counts_only_the_common_window():
    # process a: 10 it/s from t=0 to 10; process b: 20 it/s from t=5 to 10 (then a alone)
    a = [(float(t), 10 * t) for t in range(11)]
    b = [(5.0 + t, 20 * t) for t in range(6)]
    agg = bench.aggregate_rate([a, b])
    assert agg["window_s"] == pytest.approx(5.0)
    assert agg["its_per_s"] == pytest.approx(30.0)


def test_peak_table_names():
    assert bench.peak_for("NVIDIA H100 80GB HBM3")[0] == "H100 SXM"
    assert bench.peak_for("NVIDIA H100 PCIe")[0] == "H100 PCIe"
    assert bench.peak_for("NVIDIA H200")[0] == "H200"
    assert bench.peak_for("NVIDIA A100-SXM4-80GB")[0] == "A100"
    assert bench.peak_for("NVIDIA GeForce RTX 4090") == (None, None)


# Tolerance of the fast-path agreement: after 3 D+G steps from the same weights, data
# and noise, every loss of the bf16-autocast step is within 0.02 + 2 % of the fp32 one.
# (Measured difference on CPU: about 2e-3 absolute; bf16 keeps ~3 significant digits.)
ATOL, RTOL = 0.02, 0.02


SIZES = {"quick-study": pytest.param(32, marks=pytest.mark.slow),   # bf16 is emulated without bf16 units
         "narrow": 8}


@pytest.mark.parametrize("filters", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize("objective", ["gan", "wgan-gp"])
def test_bf16_autocast_step_agrees_with_fp32(objective, filters):
    arch = Arch(depth_g=4, depth_d=4, filters_g=32, filters_d=32)
    object.__setattr__(arch, "filters_g", filters)    # 8: off the space's grid, a fast twin
    object.__setattr__(arch, "filters_d", filters)
    losses, finite = {}, {}
    for amp in (None, torch.bfloat16):
        torch.manual_seed(0)
        step = build_step(arch, get_objective(objective), (1, 32, 32), 128, torch.device("cpu"), amp_dtype=amp)
        g = torch.Generator().manual_seed(1)
        real = torch.rand(16, 1, 32, 32, generator=g) * 2 - 1
        seq = []
        for _ in range(3):
            seq.append(step.discriminator(real, torch.randn(16, 128, generator=g)).item())
            seq.append(step.generator(torch.randn(16, 128, generator=g)).item())
        losses[amp] = seq
        finite[amp] = all(map(math.isfinite, seq)) and all(
            bool(p.isfinite().all()) for m in (step.G, step.D) for p in m.parameters())
        # fp32 weights whatever the compute dtype
        assert all(p.dtype == torch.float32 for m in (step.G, step.D) for p in m.parameters())
    assert finite[None] and finite[torch.bfloat16]
    assert losses[torch.bfloat16] == pytest.approx(losses[None], abs=ATOL, rel=RTOL)
    assert losses[torch.bfloat16] != losses[None]   # the fast path really ran in bf16


def test_cpu_speed_section_measures_every_path(tmp_path):
    from harness.bench.cpu_speed import cpu_speed_markdown, measure_cpu_speed
    from harness.bench.runners import resident_images
    from harness.device import native_bf16_cpu
    r = measure_cpu_speed(resident_images(torch.device("cpu")), lambda m: None, objectives=("gan",),
                          seconds_per_block=0.2, rounds=1)
    paths = r["objectives"]["gan"]["paths"]
    assert set(paths) == {"reference", "harness fp32", "harness auto"}
    assert all(p["its_per_s"] > 0 and p["gflop_per_it"] > 1 for p in paths.values())
    # the same networks; the harness skips D's weight gradients in G's step, the reference does not
    assert 0.85 < paths["harness fp32"]["gflop_per_it"] / paths["reference"]["gflop_per_it"] <= 1.0
    expected = "bf16-autocast+channels_last" if native_bf16_cpu() else "fp32"
    assert paths["harness auto"]["precision"] == expected
    assert r["matmul_gflops"]["fp32"] > 0 and r["checkpoint"]["bytes"] > 0
    assert "share of the matmul rate" in "\n".join(cpu_speed_markdown(r))


def test_a_cpu_slug_names_its_vector_units():
    """Two 'AMD EPYC' cores of this project, one with AVX512-BF16, one with AVX2 only, differ a
    hundredfold in bf16: their bench files must not overwrite each other."""
    from harness.device import native_bf16_cpu
    slug = bench.device_slug(torch.device("cpu"))
    assert slug.startswith("cpu-") and torch.backends.cpu.get_cpu_capability().lower() in slug
    assert slug.endswith("-bf16") == native_bf16_cpu()
