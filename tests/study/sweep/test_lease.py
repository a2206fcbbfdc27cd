"""One driver per sweep shard: the lease in the sweep's MLflow experiment (harness/study/sweep/lease.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from sweep_fakes import made_store, store_template  # noqa: F401 - fixtures

from harness.errors import UsageError
from harness.study import store
from harness.study.sweep import lease as lease_mod
from harness.study.sweep.lease import Lease


@pytest.fixture
def sweep_exp(made_store):
    client = store.get_client()
    return client, store.open_experiment(client, "leased")


def _records(client, exp_id):
    return {k: json.loads(v) for k, v in client.get_experiment(exp_id).tags.items() if k.startswith(lease_mod.PREFIX)}


def test_a_second_driver_is_refused_naming_the_first_and_how_to_tell_it_died(sweep_exp):
    client, exp_id = sweep_exp
    first = Lease(client, exp_id, "leased", "1/2").acquire()
    try:
        with pytest.raises(UsageError) as refused:
            Lease(client, exp_id, "leased", "1/2").acquire()
        text = str(refused.value)
        assert f"pid {os.getpid()}" in text and lease_mod.socket.gethostname() in text
        assert lease_mod.fmt_time(first.record.started) in text, "when the running one started"
        assert "expires at" in text and f"ps -p {os.getpid()}" in text
        other = Lease(client, exp_id, "leased", "2/2").acquire()     # another shard is another lease
        other.release()
        [(key, rec)] = _records(client, exp_id).items()
        assert key == first.key and rec["held"] and rec["pid"] == os.getpid()
    finally:
        first.release()
    assert _records(client, exp_id) == {}
    Lease(client, exp_id, "leased", "1/2").acquire().release()        # free again


def test_a_lease_not_renewed_within_its_timeout_expires(sweep_exp, monkeypatch, capsys):
    """A driver on another machine that died: its record stops being renewed."""
    client, exp_id = sweep_exp
    dead = Lease(client, exp_id, "leased", "1/1")
    dead.record.host = "elsewhere"
    dead.record.renewed = time.time() - dead.record.timeout_s + 60        # renewed 1 min before its timeout
    dead.record.held = True
    client.set_experiment_tag(exp_id, dead.key, dead.record.value())
    with pytest.raises(UsageError, match="elsewhere"):
        Lease(client, exp_id, "leased", "1/1").acquire()
    dead.record.renewed -= 120                                           # now a minute past it
    client.set_experiment_tag(exp_id, dead.key, dead.record.value())
    taker = Lease(client, exp_id, "leased", "1/1").acquire()
    assert "driver that is gone" in capsys.readouterr().err
    assert set(_records(client, exp_id)) == {taker.key}
    taker.release()


def test_on_the_same_machine_a_dead_drivers_lease_is_taken_over_at_once(sweep_exp):
    """kill -9: its pid is gone, so --resume need not wait for the timeout."""
    client, exp_id = sweep_exp
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = Lease(client, exp_id, "leased", "1/1")
    dead.record.pid, dead.record.proc_start, dead.record.held = proc.pid, None, True
    client.set_experiment_tag(exp_id, dead.key, dead.record.value())
    taker = Lease(client, exp_id, "leased", "1/1").acquire()
    assert set(_records(client, exp_id)) == {taker.key}
    taker.release()
    recycled = Lease(client, exp_id, "leased", "1/1")          # our own pid, but another process's start time
    recycled.record.proc_start, recycled.record.held = (recycled.record.proc_start or 0) + 1, True
    client.set_experiment_tag(exp_id, recycled.key, recycled.record.value())
    Lease(client, exp_id, "leased", "1/1").acquire().release()


def test_drivers_started_at_the_same_moment_get_one_lease(sweep_exp, monkeypatch):
    monkeypatch.setattr(lease_mod.random, "uniform", lambda a, b: a / 10)   # short back-offs
    client, exp_id = sweep_exp
    n, barrier, won, refused = 4, threading.Barrier(4), [], []

    def contend():
        mine = Lease(store.get_client(), exp_id, "leased", "1/1")
        barrier.wait()
        try:
            won.append(mine.acquire())
        except UsageError as err:
            refused.append(str(err))

    threads = [threading.Thread(target=contend) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(won) == 1 and len(refused) == n - 1, refused
    assert all("leased" in text and "pid" in text for text in refused)
    assert set(_records(client, exp_id)) == {won[0].key}
    won[0].release()


def test_a_holder_whose_record_was_removed_has_lost_the_lease(sweep_exp):
    """Presumed dead (asleep past the timeout) and taken over: it must stop, not carry on beside the new one."""
    client, exp_id = sweep_exp
    held = Lease(client, exp_id, "leased", "1/1").acquire()
    assert held.renew()
    client.delete_experiment_tag(exp_id, held.key)
    assert not held.renew() and held.lost
    held.release()


def test_the_holder_renews_its_record_while_it_runs(sweep_exp, monkeypatch):
    monkeypatch.setenv("HARNESS_LEASE_RENEW_S", "0.2")
    client, exp_id = sweep_exp
    held = Lease(client, exp_id, "leased", "1/1").acquire()
    first = _records(client, exp_id)[held.key]["renewed"]
    time.sleep(1.0)
    assert _records(client, exp_id)[held.key]["renewed"] > first
    held.release()


def _open_store(barrier, results):
    barrier.wait()
    try:
        store.get_client().search_experiments()
        results.put("ok")
    except Exception as err:  # noqa: BLE001 - reported to the test
        results.put(repr(err))


@pytest.mark.slow
def test_sweeps_opening_a_fresh_sqlite_store_together_all_get_it(project):
    """MLflow makes an sqlite store's tables by migrations; two sweeps doing it at once on a
    fresh file: one died ("duplicate column name: step"). Processes forked at a barrier reproduce
    that without the file lock get_client takes (threads do not: MLflow serialises them)."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_open_store, args=(barrier, results)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [results.get(timeout=5) for _ in procs] == ["ok"] * 3
    assert (project / "mlflow.db").is_file()


def test_a_local_sqlite_store_is_opened_under_its_file_lock(made_store):
    """Fast twin of the race above: while another process would be making the store (the lock
    held), get_client waits; then it opens the store."""
    from filelock import FileLock
    opened = threading.Event()
    with FileLock(f"{made_store}.lock"):
        t = threading.Thread(target=lambda: (store.get_client(), opened.set()))
        t.start()
        assert not opened.wait(1.0), "opened while another held the lock"
    assert opened.wait(60)
    t.join()
