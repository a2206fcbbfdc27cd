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


def _generators(session) -> dict[str, torch.Generator]:
    gens = {"data": session.data.generator, "z": session.gen}
    if session.data.cpu_generator is not None:
        gens["mixture"] = session.data.cpu_generator
    if getattr(session.step, "label_generator", None) is not None:   # conditional: G's labels
        gens["labels"] = session.step.label_generator
    return gens


def capture(session, record, points: list, evaluation_s: float) -> dict:
    """The state after iteration `session.done`. `points`: every (step, metrics) reported so
    far, replayed on resume so that a fresh tracking run holds the whole history."""
    step = session.step
    rng = {"torch": torch.get_rng_state(), **{k: g.get_state() for k, g in _generators(session).items()}}
    if session.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(session.device)
    return {
        "format": FORMAT, "trial_id": session.trial.id, "iteration": session.done,
        "G": step.G.state_dict(), "D": step.D.state_dict(),
        "opt_g": step.opt_g.state_dict(), "opt_d": step.opt_d.state_dict(),
        "schedulers": [s.state_dict() for s in session.schedulers],
        "rng": rng,
        "loss_sums": session.losses.sums.detach().cpu(), "loss_count": session.losses.count,
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
    step = session.step
    step.G.load_state_dict(state["G"])
    step.D.load_state_dict(state["D"])
    step.opt_g.load_state_dict(state["opt_g"])
    step.opt_d.load_state_dict(state["opt_d"])
    for sched, s in zip(session.schedulers, state["schedulers"], strict=True):
        sched.load_state_dict(s)
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and session.device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], session.device)
    for name, gen in _generators(session).items():
        gen.set_state(rng[name])
    session.losses.sums.copy_(state["loss_sums"].to(session.device))
    session.losses.count = int(state["loss_count"])
    session.done = record.iterations = record.resumed_from = int(state["iteration"])
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
