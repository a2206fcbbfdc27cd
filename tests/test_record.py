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


def test_the_mlflow_mapping_is_generated_from_the_fields_and_reads_back_typed():
    from harness.record import TAG_FIELDS
    rec = TrialRecord("t1", "a7", "gan", 3, status="diverged", headline="modes_covered", error="non-finite loss",
                      metrics={"modes_covered": 6.0}, iterations=1200, wall_time_s=9.5, train_time_s=8.0,
                      eval_time_s=1.0, its_per_s=150.0, resumed_from=600, params={"budget.iterations": 2000})
    tags, metrics = rec.to_mlflow()
    assert set(TAG_FIELDS) == {"trial_id", "arch_id", "objective", "seed", "status", "headline", "error",
                               "iterations", "resumed_from"}
    assert all(isinstance(v, str) for v in tags.values()) and metrics["wall_time_s"] == 9.5
    # MLflow keeps tags and params as text: what comes back is typed again
    back = TrialRecord.from_mlflow(tags, metrics, {k: str(v) for k, v in rec.params.items()})
    assert back.seed == 3 and back.iterations == 1200 and back.resumed_from == 600 and back.score == 6.0
    assert back.to_dict() == {**rec.to_dict(), "params": {"budget.iterations": "2000"}}
    fresh = TrialRecord("t2", "a7", "gan", 0)            # None fields are left out and come back None
    tags, metrics = fresh.to_mlflow()
    assert "headline" not in tags and "resumed_from" not in tags
    assert TrialRecord.from_mlflow(tags, metrics, {}).to_dict() == fresh.to_dict()
