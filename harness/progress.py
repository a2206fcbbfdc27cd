"""The console line a trial prints while it trains (python -m harness train --progress)."""
from __future__ import annotations

import sys
import time


class Progress:
    """One console line every few seconds: iterations, speed, losses, time left."""

    def __init__(self, trial_id, total, enabled, every_s=5.0):
        self.trial_id, self.total, self.enabled, self.every_s = trial_id, total, enabled, every_s
        self.start = self.last = time.perf_counter()

    def update(self, it, losses, force=False):
        now = time.perf_counter()
        if not self.enabled or (not force and now - self.last < self.every_s):
            return
        self.last = now
        rate = it / max(now - self.start, 1e-9)
        eta = (self.total - it) / rate if rate > 0 else float("inf")
        loss_txt = " ".join(f"{k} {v:+.4f}" for k, v in losses.items())
        print(f"[{self.trial_id}] it {it}/{self.total} ({100 * it / self.total:.0f}%) "
              f"{rate:.1f} it/s {loss_txt} eta {eta:.0f}s", file=sys.stderr, flush=True)
