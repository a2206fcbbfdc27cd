"""The MLflow store: a record survives the write and the read back; reading changes nothing."""
from __future__ import annotations

import pytest

from harness.config import from_dict
from harness.record import TrialRecord
from harness.study import store
from harness.trial import trials_of


@pytest.fixture
def sweep_store(project):
    """One parent run with two finished children (ok, diverged) and one left RUNNING (a killed sweep)."""
    exp = from_dict({"name": "st", "dataset": "ring8", "objectives": ["gan", "wgan-gp"],
                     "space": {"n": 2, "seed": 0}})
    client = store.get_client()
    exp_id = store.open_experiment(client, "st")
    pid = store.start_parent(client, exp_id, "st", "1/1", exp.to_dict(), 4, "st.yaml")
    runs = store.ChildRuns(client, exp_id, pid, "st", "1/1")
    trials = trials_of(exp)
    written = []
    for t, status in zip(trials[:2], ("ok", "diverged")):
        runs.start(t.id, t.params())
        runs.log(t.id, [(5, {"loss_d": 1.0}), (10, {"loss_d": 0.5})])
        rec = TrialRecord(t.id, t.arch.id, t.objective, t.seed, status=status, headline="modes_covered",
                          metrics={"modes_covered": 7.0, "hq_share": 0.5}, iterations=10, wall_time_s=3.0,
                          train_time_s=2.0, eval_time_s=0.5, its_per_s=5.0, params=t.params(),
                          error="non-finite loss" if status == "diverged" else None)
        runs.finish(rec, samples_png=b"\x89PNG fake")
        written.append(rec)
    runs.start(trials[2].id, trials[2].params())   # never finished
    return client, exp_id, pid, written, trials


def test_a_record_reads_back_as_written(sweep_store):
    client, exp_id, pid, written, _ = sweep_store
    back = {r.trial_id: r for r in store.read_records(client, exp_id, pid)}
    for rec in written:
        got = back[rec.trial_id]
        assert (got.status, got.headline, got.iterations, got.seed, got.error) == \
            (rec.status, rec.headline, rec.iterations, rec.seed, rec.error)
        assert got.summary() == rec.summary()
        assert got.metrics["modes_covered"] == 7.0 and got.metrics["loss_d"] == 0.5   # last point of the curve
        assert got.params["arch.depth_g"] == str(rec.params["arch.depth_g"])         # MLflow keeps text
        assert got.tracking["run_status"] == "FINISHED" and got.tracking["shard"] == "1/1"


def test_resume_keeps_answers_and_trashes_the_rest(sweep_store):
    client, exp_id, pid, written, trials = sweep_store
    kept = store.answered_trials(client, exp_id, pid)
    assert set(kept) == {r.trial_id for r in written}
    assert len(store.children(client, exp_id, pid)) == 3          # answered_trials wrote nothing
    store.discard_unanswered(client, exp_id, pid, kept)
    left = store.children(client, exp_id, pid)
    assert {r.data.tags["trial_id"] for r in left} == set(kept)
    from mlflow.entities import ViewType
    trashed = client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)
    assert [(r.data.tags["trial_id"], r.info.status) for r in trashed] == [(trials[2].id, "KILLED")]


def test_finding_a_deleted_sweep_does_not_restore_it(sweep_store):
    client, exp_id, *_ = sweep_store
    client.delete_experiment(exp_id)
    assert store.find_experiment(client, "st").lifecycle_stage == "deleted"
    assert store.find_experiment(client, "st").lifecycle_stage == "deleted"   # still: finding is read-only
    assert store.open_experiment(client, "st") == exp_id                     # opening to write restores
    assert store.find_experiment(client, "st").lifecycle_stage == "active"


def test_each_sweep_run_is_timed_and_a_resumed_parent_without_times_gives_none(sweep_store):
    client, exp_id, pid, _, _ = sweep_store
    store.end_run(client, pid, "KILLED")
    parent = client.get_run(pid)
    assert store.sweep_run_seconds(client, parent) == [pytest.approx((parent.info.end_time - parent.info.start_time) / 1000)]
    store.set_tags(client, pid, {"resumed": "later"})          # resumed by a version that did not time its runs
    assert store.sweep_run_seconds(client, client.get_run(pid)) == []
    assert store.next_sweep_run(client, pid) == 0
    for seconds in (60.0, 120.0):                               # the first run, logged as it goes
        store.log_sweep_run(client, pid, 0, seconds)
    assert store.next_sweep_run(client, pid) == 1
    store.log_sweep_run(client, pid, 1, 30.5)                   # two timed runs: the pause between them is not counted
    assert store.sweep_run_seconds(client, client.get_run(pid)) == [120.0, 30.5]


def test_a_retried_trial_carries_its_failed_attempts_time_onto_the_run_that_replaces_it(sweep_store):
    client, exp_id, pid, written, trials = sweep_store
    runs = store.ChildRuns(client, exp_id, pid, "st", "1/1")
    t = trials[3]
    first = runs.start(t.id, t.params())
    runs.started_ms[t.id] -= 90_000                  # as if the attempt had run 90 s before its node died
    runs.error(t.id, "node died", final=False)
    second = runs.start(t.id, t.params())
    tags = client.get_run(second).data.tags
    assert float(tags[store.LOST_TAG]) == pytest.approx(90.0, abs=5.0)
    assert client.get_run(first).info.lifecycle_stage == "deleted"
    rec = TrialRecord(t.id, t.arch.id, t.objective, t.seed, status="ok", headline="modes_covered",
                      metrics={"modes_covered": 8.0}, iterations=10, wall_time_s=3.0, train_time_s=2.0,
                      eval_time_s=0.5, its_per_s=5.0, params=t.params())
    runs.finish(rec)
    back = {r.trial_id: r for r in store.read_records(client, exp_id, pid)}
    assert back[t.id].tracking[store.LOST_TAG] == pytest.approx(90.0, abs=5.0) and back[t.id].tracking["attempt"] == 2
    assert store.LOST_TAG not in back[written[0].trial_id].tracking      # none lost: no column for it
