"""Driver-side Tune callbacks: one writes the MLflow child runs, the other prints the progress line.

They share one `TrialStates` (trial id -> state), which the recorder writes and the
progress line reads.

Tune fails a trial, or stops the whole sweep, when a callback raises. So no callback here
raises: the store's calls are retried with backoff (store.Retrying), and what still fails
is reported on stderr; a trial's result that could not be written is tried again at the
end of the run, its checkpoint kept until it is written, and `--resume` reruns it from
that checkpoint if the store never took it.
"""
from __future__ import annotations

import contextlib
import functools
import sys
import time
from pathlib import Path

from ray import tune

from ...record import FAILED, OUTCOMES, TrialRecord, file_stem
from ...trial import Trial
from ..store import RUNNING, SWEEP_CLOCK_S, ChildRuns, log_params
from .worker import checkpoint_uri

RETRYING = "retrying"
CHECKPOINT_TAGS = ("checkpoint", "checkpoint_iteration")   # a child run's pointer to its latest checkpoint


def trial_id_of(rtrial) -> str:
    return rtrial.config["trial"]["trial_id"]


def trial_dirname_of(rtrial) -> str:
    """The trial id as a folder name: a method's '+' and ':' (gan+pack:4) become '_'."""
    return file_stem(trial_id_of(rtrial))


def error_text(rtrial) -> str:
    """The exception a Tune trial raised, as one line.

    Tune writes error.pkl / error.txt to the trial's driver staging folder first and syncs
    them to its storage path later, so the staging copies are read first."""
    import cloudpickle
    readers = (
        lambda: cloudpickle.loads(Path(rtrial.pickled_error_file).read_bytes()),
        rtrial.get_pickled_error,
        lambda: Path(rtrial.error_file).read_text(),
        rtrial.get_error,
    )
    for read in readers:
        try:
            err = read()
        except Exception:  # noqa: BLE001 - not written (yet) there: try the next place
            continue
        if isinstance(err, BaseException):
            cause = getattr(err, "cause", None) or err
            return f"{type(cause).__name__}: {cause}".strip()[:4000]
        if err and str(err).strip():
            return str(err).strip().splitlines()[-1][:4000]
    return "unknown error (Tune recorded none)"


class TrialStates(dict):
    """trial id -> running | retrying | an outcome (record.OUTCOMES); with each trial's method,
    when it started and how long each recorded trial took, for the progress line's estimate;
    `prior`: method -> wall times of the sweep's trials recorded before this run (earlier runs
    of a resumed sweep, other shards), so a resumed shard has an estimate from its start."""

    def __init__(self, kinds: dict[str, str] | None = None, prior: dict[str, list[float]] | None = None,
                 iterations: int | None = None):
        super().__init__()
        self.kinds = dict(kinds or {})            # trial id -> its method, for every trial of the run
        self.prior = {k: list(v) for k, v in (prior or {}).items() if v}
        self.iterations = iterations              # each trial's generator iterations (the budget)
        self.started: dict[str, float] = {}       # trial id -> time.monotonic() of its (latest) start
        self.took: dict[str, float] = {}          # trial id -> seconds, trials that returned a record
        self.at: dict[str, int] = {}              # trial id -> the latest iteration it reported
        self.attempt_from: dict[str, int] = {}    # trial id -> the iteration its current attempt began at
        self.lost: list[float] = []               # seconds of each attempt lost to a failure (a dead node, an error)
        self.slots = 1                            # the most trials seen running at once

    def begin_attempt(self, tid: str, now: float) -> None:
        self[tid] = RUNNING
        self.started[tid] = now
        self.attempt_from[tid] = self.at.get(tid, 0)
        self.slots = max(self.slots, self.count(RUNNING, RETRYING))

    def lose_attempt(self, tid: str, now: float) -> None:
        """A running attempt failed (Tune retries it from its checkpoint): its time is lost."""
        if tid in self.started:
            self.lost.append(max(now - self.started.pop(tid), 0.0))

    def reached(self, tid: str, iteration: int, resumed: bool = False) -> None:
        """The trial reported `iteration`; `resumed`: its attempt continues from a checkpoint there."""
        if resumed:
            self.attempt_from[tid] = iteration
            self.at[tid] = iteration
        else:
            self.at[tid] = max(self.at.get(tid, 0), iteration)

    def running_left(self, tid: str, cost: float | None, now: float) -> float | None:
        """Seconds left of a running trial: its method's cost times the share of iterations
        left where the trial reported where it is (after a resume from a checkpoint, the time
        already spent says nothing of what is left); else its own pace in this attempt; else
        the cost less the time it has run."""
        elapsed = now - self.started.get(tid, now)
        at, total = self.at.get(tid), self.iterations
        if total and at is not None:
            if cost is not None:
                return cost * max(total - at, 0) / total
            done = at - self.attempt_from.get(tid, 0)
            if done > 0:
                return elapsed / done * max(total - at, 0)
        return max(cost - elapsed, 0.0) if cost is not None else None

    def own_pace(self, now: float) -> float | None:
        """A whole trial's seconds at the pace of the running attempts so far (before any trial
        has finished), or None."""
        paces = [(now - self.started[t]) / (self.at[t] - self.attempt_from.get(t, 0)) * self.iterations
                 for t in self.started if self.get(t) == RUNNING and self.iterations
                 and self.at.get(t, 0) > self.attempt_from.get(t, 0)]
        return sum(paces) / len(paces) if paces else None

    def count(self, *states) -> int:
        return sum(s in states for s in self.values())

    def seconds_left(self, now: float) -> float | None:
        """Work left over the slots the run has used (fewer when fewer trials remain): each
        trial not yet done costs the mean wall time of its method's trials recorded in this run,
        else in `prior`, else of every trial's, else (before any record) the running attempts'
        own pace; a running trial only the share it has left (`running_left`). A GAN trial and
        a WGAN-GP trial can differ tenfold, so the sweep-wide mean would mislead while the cheap
        trials finish first; this run's own times win over the prior, which another machine may
        have measured. None while nothing is known."""
        by_kind: dict[str, list[float]] = {}
        for tid, seconds in self.took.items():
            by_kind.setdefault(self.kinds.get(tid, ""), []).append(seconds)
        pool = list(self.took.values()) or [t for times in self.prior.values() for t in times]
        overall = sum(pool) / len(pool) if pool else self.own_pace(now)
        work, waiting = 0.0, 0
        for tid in self.kinds or self:
            state = self.get(tid)
            if state in OUTCOMES:
                continue
            waiting += 1
            runs = by_kind.get(self.kinds.get(tid, "")) or self.prior.get(self.kinds.get(tid, ""))
            cost = sum(runs) / len(runs) if runs else overall
            left = self.running_left(tid, cost, now) if state in (RUNNING, RETRYING) else cost
            if left is None:
                return None
            work += left
        return work / max(min(self.slots, waiting), 1)


def guarded(what: str):
    """A Recorder callback that reports an exception (after the store's own retries) instead of
    raising it into Tune, which would fail the trial or stop the sweep for a store hiccup."""
    def wrap(method):
        @functools.wraps(method)
        def call(self, iteration, trials, trial, *args, **kwargs):
            try:
                return method(self, iteration, trials, trial, *args, **kwargs)
            except Exception as err:  # noqa: BLE001 - a callback that raises fails the trial in Tune
                print(f"[{trial_id_of(trial)}] could not record {what} in MLflow: {type(err).__name__}: {err}",
                      file=sys.stderr)
        return call
    return wrap


class Recorder(tune.Callback):
    """Starts a child run when Tune starts a trial, streams its metric points, ends it with its record.

    `stopping()` says the sweep was told to stop (SIGINT / SIGTERM): a trial that errs or ends
    without a record then is not recorded failed (the signal may have reached its worker
    too); the driver ends its run KILLED and --resume runs it again."""

    def __init__(self, trials: dict[str, Trial], runs: ChildRuns, states: TrialStates, keep_checkpoints: bool = False,
                 stopping=lambda: False):
        self.trials, self.runs, self.states = trials, runs, states
        self.keep_checkpoints, self.stopping = keep_checkpoints, stopping
        self.finals: dict[str, tuple[TrialRecord, bytes | None]] = {}
        self.checkpoints: dict[str, object] = {}     # trial id -> its latest Tune checkpoint
        self.unrecorded: dict[str, tuple] = {}       # trial id -> (record, png, Tune trial) MLflow did not take yet

    @guarded("its start")
    def on_trial_start(self, iteration, trials, trial, **info):
        tid = trial_id_of(trial)
        self.states.begin_attempt(tid, time.monotonic())
        self.runs.start(tid, self.trials[tid].params())

    @guarded("its metric points")
    def on_trial_result(self, iteration, trials, trial, result, **info):
        h = result.get("harness") or {}
        tid = trial_id_of(trial)
        if "record" in h:
            self.finals[tid] = (TrialRecord.from_dict(h["record"]), h.get("samples_png"))
        if h.get("points"):
            self.states.reached(tid, max(int(step) for step, _ in h["points"]))
            self.runs.log(tid, h["points"])
        if "resumed_from" in h:
            self.states.reached(tid, int(h["resumed_from"]), resumed=True)
            self.runs.tag(tid, {"resumed_from": h["resumed_from"]})
        if h.get("params") and tid in self.runs.open:   # the worker's applied.device / precision
            log_params(self.runs.client, self.runs.open[tid], h["params"])

    @guarded("its checkpoint's place")
    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        """Where the trial's latest state is, on its child run: --resume continues from it."""
        tid = trial_id_of(trial)
        self.checkpoints[tid] = checkpoint
        where, iteration = checkpoint_uri(checkpoint), checkpoint.get_metadata().get("iteration", "")
        self.runs.tag(tid, dict(zip(CHECKPOINT_TAGS, (where, iteration))))

    @guarded("its end")
    def on_trial_complete(self, iteration, trials, trial, **info):
        tid = trial_id_of(trial)
        final = self.finals.pop(tid, None)
        if final is None:
            if self.stopping():
                return
            self.states[tid] = FAILED
            self.runs.error(tid, "the trial ended without reporting a result", final=True)
        else:
            self.states[tid] = final[0].status
            self.states.took[tid] = time.monotonic() - self.states.started.get(tid, time.monotonic())
            self.unrecorded[tid] = (*final, trial)
            self.record(tid)

    def record(self, tid: str) -> bool:
        """Write a finished trial's record (kept in `unrecorded` until MLflow took it), then delete
        its checkpoints: the record first, the checkpoint files after it, so if MLflow fails while
        the record is written the run still points at a checkpoint that exists and --resume
        continues there."""
        record, png, trial = self.unrecorded[tid]
        try:
            if tid not in self.runs.open:     # its start never reached the store
                self.runs.start(tid, self.trials[tid].params())
            dropped = self.runs.finish(record, png, drop_tags=() if self.keep_checkpoints else CHECKPOINT_TAGS)
        except Exception as err:  # noqa: BLE001 - a callback that raises fails the trial in Tune
            print(f"[{tid}] could not record its result in MLflow ({type(err).__name__}: {err}); its checkpoint "
                  "is kept and the record tried again at the end of this run", file=sys.stderr)
            return False
        del self.unrecorded[tid]
        if not self.keep_checkpoints and dropped:
            self.remove_checkpoints(trial)
        return True

    def on_experiment_end(self, trials, **info):
        """The records MLflow refused during the run, tried once more."""
        for tid in list(self.unrecorded):
            self.record(tid)
        if self.unrecorded:
            print(f"{len(self.unrecorded)} trials' results could not be recorded in MLflow: "
                  f"{', '.join(self.unrecorded)}; `--resume` runs them again from their checkpoints", file=sys.stderr)

    def remove_checkpoints(self, trial) -> None:
        """A recorded trial's checkpoints (this run's and the earlier run's it resumed from)
        are of no further use: delete them. Best effort: a checkpoint that cannot be deleted
        is left, never a reason to fail the trial."""
        tid = trial_id_of(trial)
        own = self.checkpoints.pop(tid, None)
        uris = [checkpoint_uri(own)] if own is not None else []
        uris += [p for p in [trial.config["trial"].get("resume_from")] if p]
        try:
            for uri in uris:
                cp = tune.Checkpoint(uri)
                with contextlib.suppress(OSError):
                    cp.filesystem.delete_dir(cp.path)
        except Exception as err:  # noqa: BLE001 - a callback that raises fails the trial in Tune
            print(f"[{tid}] could not remove its checkpoints {uris}: {err}", file=sys.stderr)

    @guarded("its error")
    def on_trial_recover(self, iteration, trials, trial, **info):
        tid = trial_id_of(trial)
        self.states[tid] = RETRYING
        self.states.lose_attempt(tid, time.monotonic())
        if not self.stopping():
            self.runs.error(tid, error_text(trial), final=False)

    @guarded("its error")
    def on_trial_error(self, iteration, trials, trial, **info):
        tid = trial_id_of(trial)
        if self.stopping():
            return
        self.states[tid] = FAILED
        self.runs.error(tid, error_text(trial), final=True)


class SweepClock(tune.Callback):
    """Logs the sweep run's wall time so far through `log(seconds)` (onto its parent run) at
    Tune's first step and then every `every` seconds, so a sweep killed outright (kill -9, a
    machine taken back) still leaves its time in the store, short by at most `every`. A write
    that fails is reported, never a reason to stop the sweep."""

    def __init__(self, log, started: float, every: float = SWEEP_CLOCK_S):
        self.log, self.started, self.every = log, started, every
        self.last: float | None = None

    def on_step_end(self, iteration, trials, **info):
        now = time.monotonic()
        if self.last is None or now - self.last >= self.every:
            self.last = now
            try:
                self.log(now - self.started)
            except Exception as err:  # noqa: BLE001 - a callback that raises stops Tune
                print(f"could not log the sweep's wall time: {err}", file=sys.stderr)


def fmt_duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"


class ProgressLine(tune.Callback):
    """A line on stderr when the counts change (at most every 2 s) or every 30 s."""

    def __init__(self, states: TrialStates, label: str, total: int):
        self.states, self.label, self.total = states, label, total
        self.start = time.monotonic()
        self.last_counts, self.last_time = None, 0.0

    def line(self) -> str:
        s = self.states
        done, failed, running = s.count(*OUTCOMES), s.count(FAILED), s.count(RUNNING, RETRYING)
        now = time.monotonic()
        elapsed, left = now - self.start, self.states.seconds_left(now)
        eta = f"~{fmt_duration(left)} left" if left is not None else "time left unknown"
        outcomes = ", ".join(f"{k} {s.count(k)}" for k in OUTCOMES if k != FAILED and s.count(k))
        lost = (f", {len(s.lost)} attempt{'s' * (len(s.lost) > 1)} lost ({fmt_duration(sum(s.lost))}, retried from "
                "checkpoints)" if s.lost else "")
        return (f"[{self.label}] {done}/{self.total} done ({outcomes or 'none yet'}), {failed} failed, "
                f"{running} running, {self.total - done - running} pending{lost} | {fmt_duration(elapsed)} elapsed, "
                f"{eta}")

    def on_step_end(self, iteration, trials, **info):
        now, text = time.monotonic(), self.line()
        counts = text.split("|")[0]
        if (counts != self.last_counts and now - self.last_time >= 2) or now - self.last_time >= 30:
            print(text, file=sys.stderr, flush=True)
            self.last_counts, self.last_time = counts, now

    def on_experiment_end(self, trials, **info):
        print(self.line(), file=sys.stderr, flush=True)
