"""One driver per sweep shard at a time: a lease recorded in the sweep's MLflow experiment.

Why: two `--resume`s of one sweep started together both ran every trial (8 active child
runs for 4 trials). Why in MLflow: the store is the one thing every driver of a sweep
shares, a team's tracking server as much as a local sqlite file, so a lock file would not
do. Why experiment tags: MLflow has no compare-and-swap, so no shared key is overwritten;
each driver writes its own tag `harness.lease.<I>of<N>.<token>` (a JSON record: host, pid,
start time, last renewal), which the runs' searches and the report never see.

Protocol (safe over any store that reads back what was written before, as sqlite and a
server over one database do): write your claim, then read every claim of the shard. If no
other live claim is there, you hold the lease: of two drivers the one that reads last sees
the other's claim, so both cannot see none. Otherwise withdraw your claim; if the other is
held, refuse (UsageError, exit 2) naming it; if it is only a claim (a driver starting at
the same moment), wait a random moment and try again, a few times.

Expiry: the holder renews its record every RENEW_S seconds from a thread; a record not
renewed for TIMEOUT_S seconds (default 300, HARNESS_LEASE_TIMEOUT_S) is dead and the next
driver removes it, so a crashed driver never locks a sweep for longer than that. On the
same machine a record whose process is gone (pid not running, or running with another
start time) is dead at once, so a `kill -9`ed sweep can be resumed straight away. A
holder that finds its record removed, or another held, has lost the lease (it was presumed
dead: a machine asleep, a store unreachable for minutes) and stops its sweep.
"""
from __future__ import annotations

import json
import os
import random
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass

from ...errors import UsageError
from .. import store

PREFIX = "harness.lease."
TIMEOUT_S = 300.0      # a record not renewed for this long is dead
RENEW_S = 30.0         # how often the holder renews it
TRIES = 6              # acquisition rounds while another driver is starting at the same moment


def timeout_s() -> float:
    return float(os.environ.get("HARNESS_LEASE_TIMEOUT_S") or TIMEOUT_S)


def renew_s() -> float:
    return float(os.environ.get("HARNESS_LEASE_RENEW_S") or min(RENEW_S, timeout_s() / 4))


def shard_key(shard: str) -> str:
    return shard.replace("/", "of")


def pid_namespace() -> str | None:
    """Which pid numbering this process sees: two containers may share a host name, not this."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def process_start(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot, /proc/PID/stat field 22): tells a
    recycled pid from the process that recorded it. None where /proc is absent."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def fmt_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


@dataclass
class Record:
    host: str
    pid: int
    pidns: str | None
    proc_start: int | None
    started: float         # epoch seconds: when this driver took the lease
    renewed: float         # epoch seconds: its latest renewal
    timeout_s: float
    renew_s: float
    held: bool = False     # False while only a claim, True once acquired
    key: str = ""

    def expired(self, now: float) -> bool:
        return now > self.renewed + self.timeout_s

    def dead_here(self) -> bool:
        """On this machine (same host and pid namespace), its process is gone."""
        if self.host != socket.gethostname() or self.pidns != pid_namespace():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass                      # it runs, as another user
        start = process_start(self.pid)
        return start is not None and self.proc_start is not None and start != self.proc_start

    def describe(self, now: float) -> str:
        ago = max(now - self.renewed, 0.0)
        return (f"pid {self.pid} on host {self.host}, running it since {fmt_time(self.started)} "
                f"(lease renewed {ago:.0f} s ago, every {self.renew_s:g} s while it runs; if it stops "
                f"being renewed the lease expires at {fmt_time(self.renewed + self.timeout_s)}, "
                f"{self.timeout_s:g} s after its last renewal, and the sweep can be taken over then. "
                f"To tell whether it died: `ps -p {self.pid}` on {self.host}")

    def value(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if k != "key"})


class Lease:
    """This driver's lease on (sweep, shard); `acquire()` or refuse, `release()` when done."""

    def __init__(self, client, exp_id: str, sweep: str, shard: str):
        self.client, self.exp_id, self.sweep, self.shard = store.retrying(client), exp_id, sweep, shard
        self.prefix = f"{PREFIX}{shard_key(shard)}."
        self.key = self.prefix + uuid.uuid4().hex[:16]
        now = time.time()
        self.record = Record(socket.gethostname(), os.getpid(), pid_namespace(), process_start(os.getpid()),
                             now, now, timeout_s(), renew_s(), key=self.key)
        self.lost = False
        self.on_lost = None            # called (from the renewal thread) when the lease is lost
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- reading and writing records -------------------------------------------------

    def records(self) -> list[Record]:
        tags = self.client.get_experiment(self.exp_id).tags
        found = []
        for key, value in tags.items():
            if key.startswith(self.prefix):
                try:
                    found.append(Record(**{**json.loads(value), "key": key}))
                except (ValueError, TypeError):   # not one of ours: ignored
                    continue
        return found

    def _write(self, held: bool) -> None:
        self.record.renewed, self.record.held = time.time(), held
        self.client.set_experiment_tag(self.exp_id, self.key, self.record.value())

    def _delete(self, key: str) -> None:
        try:
            self.client.delete_experiment_tag(self.exp_id, key)
        except Exception:  # noqa: BLE001 - already removed by another driver: fine
            pass

    # ---- acquire, renew, release -------------------------------------------------------

    def acquire(self) -> Lease:
        """Hold the lease, or raise UsageError naming the driver that holds it."""
        label = f"sweep {self.sweep!r} (shard {self.shard})"
        others: list[Record] = []
        for attempt in range(TRIES):
            self._write(held=False)
            now = time.time()
            others = []
            for rec in self.records():
                if rec.key == self.key:
                    continue
                if rec.expired(now) or rec.dead_here():
                    self._delete(rec.key)          # a crashed driver's record
                    print(f"[{self.sweep}] took over the lease of a driver that is gone "
                          f"(pid {rec.pid} on {rec.host}, last renewed {fmt_time(rec.renewed)})", file=sys.stderr)
                    continue
                others.append(rec)
            if not others:
                self.record.started = time.time()
                self._write(held=True)
                self._thread = threading.Thread(target=self._renew_loop, name="sweep-lease", daemon=True)
                self._thread.start()
                return self
            self._delete(self.key)
            held = [r for r in others if r.held]
            if held:
                raise UsageError(f"{label} is already being run by {held[0].describe(time.time())}")
            time.sleep(random.uniform(0.2, 1.0) * (attempt + 1))
        raise UsageError(f"{label} is being started by another driver at the same time: "
                         f"{others[0].describe(time.time())}")

    def renew(self) -> bool:
        """Renew the record; False (and `lost`) if it was removed or another driver holds the lease."""
        records = self.records()
        mine = any(r.key == self.key for r in records)
        rival = [r for r in records if r.key != self.key and r.held]
        if not mine or rival:
            self.lost = True
            return False
        self._write(held=True)
        return True

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.record.renew_s):
            try:
                if not self.renew():
                    print(f"[{self.sweep}] lost the lease on shard {self.shard}: another driver took the sweep "
                          "over (this one was presumed dead); stopping", file=sys.stderr)
                    if self.on_lost:
                        self.on_lost()
                    return
            except Exception as err:  # noqa: BLE001 - the store unreachable: try again at the next renewal
                print(f"[{self.sweep}] could not renew the sweep's lease: {err}", file=sys.stderr)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not self.lost:
            self._delete(self.key)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
