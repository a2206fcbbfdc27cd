"""The sweep's plan: shards, order, and what each trial asks Ray for (no Ray needed)."""
from __future__ import annotations

import pytest

from harness.config import from_dict
from harness.errors import UsageError
from harness.space import Arch
from harness.study.sweep.packing import CUDA_CONTEXT_BYTES, estimate_trial_bytes, gpu_share
from harness.study.sweep.plan import pairs_first, parse_shard, shard_trials, trial_gpu_shares, trial_resources
from harness.trial import trials_of

SMALL = Arch(depth_g=4, depth_d=4, filters_g=32, filters_d=32)
BIG = Arch(depth_g=20, depth_d=20, filters_g=128, filters_d=128)


def test_shards_partition_trials_and_keep_architectures_together(tiny_toy2d):
    exp = from_dict({**tiny_toy2d, "seeds": [0, 1]})
    trials = trials_of(exp)
    shards = [shard_trials(trials, i, 3) for i in (1, 2, 3)]
    assert sorted(t.id for s in shards for t in s) == sorted(t.id for t in trials)
    assert [t.id for t in shard_trials(trials_of(exp), 2, 3)] == [t.id for t in shards[1]]  # deterministic
    for s in shards:   # each (arch, seed) group sits whole in one shard: pairs stay paired
        groups = {(t.arch.id, t.seed) for t in s}
        assert len(s) == len(groups) * len(exp.objectives)
    assert parse_shard(None) == (1, 1) and parse_shard("2/4") == (2, 4)
    for bad in ("0/2", "3/2", "x", "1/0"):
        with pytest.raises(UsageError, match="--shard"):
            parse_shard(bad)


def test_trials_run_group_by_group_the_costliest_of_each_first():
    same_size = {"depth_g": [4], "depth_d": [4], "filters_g": [32], "filters_d": [32]}
    exp = from_dict({"dataset": "ring8", "space": {"n": 3, "restrict": same_size}, "seeds": [0, 1],
                     "objectives": ["gan", "sngan", "wgan-gp"]})
    order = pairs_first(exp, trials_of(exp))
    assert sorted(t.id for t in order) == sorted(t.id for t in trials_of(exp))
    groups = [(t.arch.id, t.seed) for t in order]
    assert len(set(groups)) == 6 and all(groups[k] == groups[k // 3 * 3] for k in range(len(order)))   # contiguous
    assert [t.objective for t in order[::3]] == ["wgan-gp"] * 6     # 5 critic steps per iteration: first in each
    first_seen = list(dict.fromkeys(groups))
    assert first_seen == list(dict.fromkeys((t.arch.id, t.seed) for t in trials_of(exp)))   # experiment order


def test_resources_per_trial():
    exp = from_dict({"space": {"n": 2}, "resources": {"trials_per_gpu": 8, "cpus_per_trial": 2}})
    assert trial_resources(exp, {"CPU": 16, "GPU": 1}) == {"cpu": 2, "gpu": 1 / 8}
    assert trial_resources(exp, {"CPU": 16}) == {"cpu": 2}
    assert trial_resources(from_dict({"train": {"device": "cpu"}}), {"CPU": 4, "GPU": 1}) == {"cpu": 1}
    with pytest.raises(UsageError, match="resources.cpus_per_trial"):
        trial_resources(exp, {"CPU": 1})


def test_memory_estimate_grows_with_the_nets_the_batch_and_the_data():
    small = estimate_trial_bytes(SMALL, (1, 32, 32), 64)
    assert small > CUDA_CONTEXT_BYTES
    assert estimate_trial_bytes(BIG, (1, 32, 32), 64) > 2 * small
    assert estimate_trial_bytes(SMALL, (1, 32, 32), 256) > estimate_trial_bytes(SMALL, (1, 32, 32), 64)
    assert estimate_trial_bytes(SMALL, (1, 32, 32), 64, dataset_bytes=10**9) == small + 10**9
    assert gpu_share(small, 80 * 2**30, 8) == 1 / 8           # eight small trials fit an 80 GB GPU
    assert gpu_share(10 * 2**30, 4 * 2**30, 8) == 1.0         # never more than the whole GPU


def test_gpu_shares_ask_for_more_where_a_trial_would_not_fit():
    exp = from_dict({"space": {"mode": "ids", "ids": [SMALL.id, BIG.id]}, "objectives": ["gan"],
                     "resources": {"trials_per_gpu": 8}})
    trials = trials_of(exp)
    assert set(trial_gpu_shares(exp, trials, None).values()) == {1 / 8}       # no GPU memory known
    shares = trial_gpu_shares(exp, trials, 8 * 2**30)
    assert shares[trials[0].id] == 1 / 8 and shares[trials[1].id] > 1 / 8
    # the resident dataset counts: imagenet32 (3.9 GB per trial) leaves room for one trial on 8 GB
    big_data = from_dict({**exp.to_dict(), "dataset": "imagenet32", "name": "x"})
    assert set(trial_gpu_shares(big_data, trials_of(big_data), 8 * 2**30).values()) == {1.0}
