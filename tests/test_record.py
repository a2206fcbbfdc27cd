"""The one trial record: it survives the trip through Tune and the store, and flattens to one row."""
import json
import math

import pytest
import torch

from harness.record import ANSWERS, FAILED, OUTCOMES, SUMMARY, TrialRecord


def record(**kw):
    base = dict(trial_id="abc-gan-s0", arch_id="abc", objective="gan", seed=0, status="ok",
                headline="is1k_fmnistclf", metrics={"is1k_fmnistclf": 3.5, "fid1k_train_fmnistclf": 40.0},
                iterations=10, wall_time_s=2.0, train_time_s=1.5, eval_time_s=0.4, its_per_s=6.7,
                params={"trial_id": "abc-gan-s0", "objective": "gan", "seed": "0", "arch.depth_g": 4})
    return TrialRecord(**{**base, **kw})


def test_round_trip_through_plain_data_drops_only_the_samples():
    r = record(samples=torch.zeros(4, 2), history=[{"step": 10, "is1k_fmnistclf": 3.5}])
    d = json.loads(json.dumps(r.to_dict()))       # what Ray and JSON can carry
    assert "samples" not in d
    back = TrialRecord.from_dict(d)
    assert back == r and back.samples is None
    with pytest.raises(ValueError, match="unknown"):
        TrialRecord.from_dict({**d, "bogus": 1})


def test_row_is_flat_and_scored():
    row = record().to_row()
    assert row["score"] == 3.5 and row["fid1k_train_fmnistclf"] == 40.0 and row["arch.depth_g"] == 4
    assert row["seed"] == 0                            # the record's, not the param's text
    assert [k for k in SUMMARY if k not in row] == []
    assert math.isnan(record(headline=None).score) and math.isnan(record(metrics={}).score)
    with pytest.raises(ValueError, match="iterations"):
        record(metrics={"iterations": 3.0}).to_row()    # a metric may not shadow a field


def test_vocabulary():
    assert set(ANSWERS) < set(OUTCOMES) and FAILED not in ANSWERS
