"""The profile's attribution (harness/bench/profile.py): the op-name mapping, the penalty's
regions found by the call tree and autograd's sequence numbers, Amdahl's ceilings, and the
levers (levers.py) applied to a real runner."""
from __future__ import annotations

import pytest
import torch

from harness.bench import profile
from harness.bench.levers import levers_for, levers_markdown
from harness.bench.plan import bench_arch
from harness.bench.runners import HarnessRunner, resident_images


@pytest.mark.parametrize("name, category", [
    ("aten::convolution_backward", "convolution"), ("aten::mkldnn_convolution", "convolution"),
    ("aten::_convolution", "convolution"), ("aten::conv_transpose2d", "convolution"),
    ("aten::addmm", "matmul (linear layers)"), ("aten::native_batch_norm_backward", "batch norm"),
    ("aten::native_group_norm_backward", "layer norm (group_norm)"), ("aten::tanh", "activations"),
    ("aten::tanh_backward", "activations"), ("aten::leaky_relu_backward", "activations"),
    ("aten::t", "views and bookkeeping"), ("aten::transpose", "views and bookkeeping"),
    ("aten::to", "copies and casts (dtype, layout)"), ("aten::normal_", "random numbers and batch draw"),
    ("aten::norm", "elementwise and reductions"), ("aten::native_layer_norm", "layer norm (group_norm)"),
    ("aten::add_", "elementwise and reductions"), ("aten::_fused_adam_", "optimizer"),
    ("aten::_foreach_mul_", "optimizer"), ("aten::item", "host synchronisation"),
    ("aten::empty_strided", "allocation"), ("aten::new_op_nobody_knows", "other"),
    ("MulBackward0", "autograd engine"), ("autograd::engine::evaluate_function: MulBackward0", "autograd engine"),
    ("Optimizer.step#Adam.step", profile.PYTHON)])
def test_op_names_map_to_their_category(name, category):
    """Exact names and '*' prefixes: `aten::t` is a view, not the prefix of tanh or to."""
    assert profile.op_category(name) == category


def test_amdahl_ceilings():
    assert profile.ceiling(0.5, None) == pytest.approx(2.0)
    assert profile.ceiling(0.8, 2) == pytest.approx(1 / (0.2 + 0.4))
    assert profile.ceiling(0.0, 4) == pytest.approx(1.0)
    assert profile.needed(2, 4) == pytest.approx(2 / 3)
    assert profile.ceiling(profile.needed(2, 4), 4) == pytest.approx(2.0)


class Event:
    """What attribute() reads of a profiler FunctionEvent."""

    def __init__(self, name, self_us, parent=None, seq=-1):
        self.name, self.self_cpu_time_total, self.cpu_parent, self.sequence_nr = name, self_us, parent, seq
        self.children = []
        if parent is not None:
            parent.children.append(self)

    @property
    def cpu_time_total(self):
        return self.self_cpu_time_total + sum(c.cpu_time_total for c in self.children)


def synthetic_iteration() -> list:
    """A D step with a penalty, as the profiler's call tree has it: D's forward (a conv with
    autograd sequence number 1), the penalty (its D forward, seq 5, and its input gradient, whose
    backward-with-graph records convolution_backward as seq 7), D's loss.backward (the nodes of
    seqs 1, 5 and 7: the last two the penalty's), and the optimizer."""
    ev = []
    add = lambda *a, **k: ev.append(Event(*a, **k)) or ev[-1]   # noqa: E731
    conv = add("aten::conv2d", 10, seq=1)
    add("aten::mkldnn_convolution", 100, conv)
    pen = add("harness.penalty", 3)
    add("aten::conv2d", 50, pen, seq=5)
    grad = add("autograd::engine::evaluate_function: ConvolutionBackward0", 2, pen, seq=5)
    add("aten::convolution_backward", 70, grad, seq=7)
    for seq, us in ((1, 200), (5, 40), (7, 300)):
        node = add("autograd::engine::evaluate_function: ConvolutionBackward0", 1, seq=seq)
        add("aten::convolution_backward", us, node)
    opt = add("Optimizer.step#Adam.step", 5)
    add("aten::_fused_adam_", 20, opt)
    add("aten::empty", 4)
    return ev


def test_attribution_follows_the_call_tree_and_the_sequence_numbers():
    ev = synthetic_iteration()
    covered = sum(e.cpu_time_total for e in ev if e.cpu_parent is None)
    a = profile.attribute(ev, wall_us=covered + 30)
    cats = a["categories"]
    assert cats["penalty: D forward on its points"] == 3 + 50
    assert cats["penalty: input gradient (with graph)"] == 2 + 70
    assert cats["penalty: double backward"] == (1 + 40) + (1 + 300)     # seqs 5 and 7
    assert cats["convolution"] == 10 + 100 + 200 and cats["autograd engine"] == 1
    assert cats["optimizer"] == 25 and cats["allocation"] == 4 and cats[profile.PYTHON] == 30
    assert sum(cats.values()) == covered + 30
    assert a["by_region"]["penalty: double backward"]["convolution"] == 340
    assert a["ops"]["aten::convolution_backward"] == (70 + 200 + 40 + 300, 4)


def _fake_profile() -> dict:
    a = profile.attribute(synthetic_iteration(), wall_us=1000)
    total = sum(a["categories"].values())
    return {"iterations": 1, "its_per_s_unprofiled": 1.0, "ms_per_it_profiled": 1.0,
            "categories": {k: {"ms_per_it": v / 1e3, "share": v / total} for k, v in a["categories"].items()},
            "by_region": {r: {k: v / 1e3 for k, v in d.items()} for r, d in a["by_region"].items()},
            "top_ops": [{"op": "aten::convolution_backward", "category": "convolution", "ms_per_it": 0.6,
                         "share": 0.6, "calls_per_it": 4}]}


def test_the_fast_share_counts_convolutions_inside_the_penalty_only_when_asked():
    p = _fake_profile()
    total = sum(c["ms_per_it"] for c in p["categories"].values())
    assert profile.fast_share(p, penalty=False) == pytest.approx(0.310 / total)
    assert profile.fast_share(p, penalty=True) == pytest.approx((0.310 + 0.050 + 0.070 + 0.340) / total)


def test_the_markdown_has_every_table():
    p = _fake_profile()
    r = {"arch": "tiny", "threads": 1, "native_bf16": False, "unit_speedup": 0.01,
         "objectives": {"wgan-gp": {"paths": {"harness fp32": p},
                                    "fast_share": {"all": profile.fast_share(p), "outside the penalty":
                                                   profile.fast_share(p, penalty=False)}}}}
    md = "\n".join(profile.profile_markdown(r))
    assert "| penalty: double backward |" in md and "Top ops by self time" in md
    assert "ceiling, s = 2" in md and "(emulated bf16)" in md and "no bf16 units" in md


def _runner(objective: str) -> HarnessRunner:
    images = resident_images(torch.device("cpu"))
    r = HarnessRunner(bench_arch(4, 4), objective, 4, torch.device("cpu"), images, precision="fp32")
    r.run(1)
    return r


@pytest.mark.slow   # a real profile: seconds of the profiler's own parsing
def test_a_wgan_gp_profile_finds_the_penalty_and_accounts_for_the_wall_time():
    p = profile.profile_runner(_runner("wgan-gp"), iterations=1)
    cats = p["categories"]
    for region in profile.PENALTY_REGIONS:     # each region seen, with convolutions inside it
        assert cats[region]["ms_per_it"] > 0, region
        assert p["by_region"][region].get("convolution", 0) > 0, region
    assert cats["convolution"]["ms_per_it"] > 0 and cats["optimizer"]["ms_per_it"] > 0
    # every microsecond in one category: the shares sum to 1, the times to the profiled wall
    assert sum(c["share"] for c in cats.values()) == pytest.approx(1.0)
    assert sum(c["ms_per_it"] for c in cats.values()) == pytest.approx(p["ms_per_it_profiled"], rel=0.05)
    assert 0 < profile.fast_share(p, penalty=False) < profile.fast_share(p, penalty=True) < 1
    assert p["top_ops"][0]["ms_per_it"] >= p["top_ops"][-1]["ms_per_it"]
    assert cats.get("other", {"share": 0})["share"] < 0.02     # the mapping names nearly every op


@pytest.mark.slow
def test_a_gan_profile_has_no_penalty_region():
    p = profile.profile_runner(_runner("gan"), iterations=1)
    assert not set(profile.PENALTY_REGIONS) & set(p["categories"])
    assert profile.fast_share(p, penalty=False) == pytest.approx(profile.fast_share(p, penalty=True))


@pytest.mark.slow   # builds three runners
def test_each_lever_changes_what_it_names():
    from harness.bench.levers import Lever
    levers = levers_for("wgan-gp", channels_last_already=False)
    assert {"channels_last", "flush denormals", "oneDNN off", "foreach Adam (not fused)",
            "losses read every 25 steps"} <= set(levers)
    assert "channels_last" not in levers_for("gan", channels_last_already=True)
    r = _runner("gan")
    Lever(r, levers["channels_last"][0])
    assert r.session.data.channels_last and next(r.session.step.D.parameters()).dim() == 4 and \
        next(p for p in r.session.step.D.parameters() if p.dim() == 4).is_contiguous(memory_format=torch.channels_last)
    r = _runner("gan")
    Lever(r, levers["foreach Adam (not fused)"][0])
    assert r.session.step.opt_d.defaults["foreach"] and not r.session.step.opt_d.defaults["fused"]
    r = _runner("gan")
    lever = Lever(r, levers["losses read every 25 steps"][0])
    assert r.session.losses.every == 25
    lever.run(1)     # runs inside its context
    md = "\n".join(levers_markdown({"rounds": 1, "objectives": {"gan": {"baseline_precision": "fp32", "levers": {
        "baseline": {"its_per_s": 1.0, "over_baseline": [1.0], "median_over_baseline": 1.0}}}}}))
    assert "| gan | fp32 | baseline | 1.00 | 1.00 | 1.00-1.00 |" in md


@pytest.mark.slow   # bf16 emulated where the CPU has no bf16 units: slow even at this size
def test_on_a_bf16_cpu_the_profile_adds_the_bf16_paths(monkeypatch):
    """Where torch reports bf16 units, precision auto is bf16 + channels_last and wgan-gp is also
    profiled with the penalty under autocast (simulated here: the query answers yes)."""
    import harness.bench.profile as prof_module
    import harness.device as device
    monkeypatch.setattr(device, "native_bf16_cpu", lambda: True)
    monkeypatch.setattr(prof_module, "native_bf16_cpu", lambda: True)
    r = profile.measure_profile(resident_images(torch.device("cpu")), lambda m: None, objectives=("wgan-gp",),
                                iterations={"wgan-gp": 1}, unit_speedup=2.0, size=(4, 4, 4))
    paths = r["objectives"]["wgan-gp"]["paths"]
    assert list(paths) == ["harness fp32", "harness auto", "harness auto, penalty autocast"]
    # the casts autocast adds show up in the bf16 paths' copies
    assert all(p["categories"]["copies and casts (dtype, layout)"]["ms_per_it"] > 0 for p in paths.values())
    c = r["objectives"]["wgan-gp"]["ceiling"]
    assert 1 < c["outside the penalty"]["this_core"] < c["all"]["this_core"] <= 2
