"""A trial's whole training state as one dict of tensors and plain values, and back.

A trial resumed from such a state ends with the same metrics as one that was never
interrupted (same seed, same thread count, same device): the state holds G, D, both
optimizers, the schedulers, every random generator the loop draws from, the loss sums
not yet read, and what the trial has recorded and reported so far. Knows nothing of Ray:
the sweep's worker decides where states are stored (harness.study.sweep.worker).

Files are written with torch.save and read with torch.load(weights_only=True): a
checkpoint holds tensors, numbers, strings, lists and dicts, never pickled code.
"""
from __future__ import annotations

import io
import time
from pathlib import Path

import torch

FORMAT = 1                  # bump when the layout below changes; older states are refused
FILENAME = "state.pt"


def capture(session, record, points: list, evaluation_s: float) -> dict:
    """The state after iteration `session.done`: the session's own (`Session.state_dict`) and
    what the trial has recorded. `points`: every (step, metrics) reported so far, replayed on
    resume so that a fresh tracking run holds the whole history."""
    return {
        "format": FORMAT, "trial_id": session.trial.id, **session.state_dict(),
        "record": {"metrics": dict(record.metrics), "history": list(record.history), "status": record.status,
                   "train_time_s": record.train_time_s, "eval_time_s": evaluation_s},
        "points": [[int(s), dict(m)] for s, m in points],
    }


def restore(session, state: dict, record, evaluation) -> list:
    """Load `state` into a freshly built session of the same trial, and its recorded part
    into `record` and `evaluation`; returns the metric points reported before it."""
    if state.get("format") != FORMAT:
        raise ValueError(f"checkpoint format {state.get('format')!r} is not {FORMAT}: written by another version")
    if state["trial_id"] != session.trial.id:
        raise ValueError(f"checkpoint of trial {state['trial_id']!r} offered to trial {session.trial.id!r}")
    session.load_state_dict(state)
    record.iterations = record.resumed_from = session.done
    saved = state["record"]
    record.metrics, record.history, record.status = dict(saved["metrics"]), list(saved["history"]), saved["status"]
    record.train_time_s, evaluation.seconds = saved["train_time_s"], saved["eval_time_s"]
    return [(int(s), m) for s, m in state["points"]]


def save(state: dict, folder: str | Path) -> Path:
    path = Path(folder) / FILENAME
    torch.save(state, path)
    return path


def load(folder: str | Path) -> dict:
    """The state in `folder` (written by `save`), on the CPU, without unpickling code."""
    return torch.load(Path(folder) / FILENAME, map_location="cpu", weights_only=True)


def size_and_seconds(session, record) -> tuple[int, float]:
    """Bytes of one checkpoint of this session and the seconds to capture and serialize it
    (the benchmark's figure; the sweep adds the copy into Tune's storage)."""
    t0 = time.perf_counter()
    buf = io.BytesIO()
    torch.save(capture(session, record, [], 0.0), buf)
    return buf.tell(), time.perf_counter() - t0


class Schedule:
    """When to checkpoint: every `every` iterations, or (every = 0) at the first iteration
    after `every_s` seconds of wall time since the last one; never when both are 0 or no one
    listens. Never at the last iteration: the finished trial's record supersedes it."""

    def __init__(self, every: int, every_s: float, total: int, enabled: bool):
        self.every, self.every_s, self.total = every, every_s, total
        self.enabled = enabled and (every > 0 or every_s > 0)
        self.last = time.monotonic()

    def due(self, it: int) -> bool:
        if not self.enabled or it >= self.total:
            return False
        if self.every:
            return it % self.every == 0
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            return True
        return False
