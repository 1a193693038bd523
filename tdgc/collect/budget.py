"""How much more a run may do: revisions to act on and time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tdgc.model import Decision, Outcome, Result


class Budget:
    """How much more this run may do: revisions to act on (--max-actions) and time (--time-budget).

    A mutation starts only while more than `reserve` seconds are left, so that the run ends cleanly (the
    mutations under way finish, the report is written) before its deadline.
    """

    def __init__(
        self,
        limit: int | None,
        deadline: float | None = None,
        reserve: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.remaining = limit
        self.deadline = deadline
        self.reserve = reserve
        self._clock = clock
        self._lock = threading.Lock()  # the lanes draw on it at once
        self.stopped: str | None = None  # why the run stopped, when it did (nothing more starts)

    def out_of_time(self) -> bool:
        return self.deadline is not None and self._clock() >= self.deadline - self.reserve

    def halfway(self) -> float | None:
        """The moment halfway from now to the last moment a mutation may start; None without a deadline."""
        if self.deadline is None:
            return None
        now = self._clock()
        return now + max(0.0, self.deadline - self.reserve - now) / 2

    def stop(self, why: str) -> None:
        self.stopped = why

    def resume(self) -> None:
        """Start the next target afresh: a stop ends only the target whose lane failed."""
        self.stopped = None

    def take(self, wanted: int) -> int:
        if self.stopped or self.out_of_time():
            return 0
        with self._lock:
            if self.remaining is None:
                return wanted
            granted = min(wanted, self.remaining)
            self.remaining -= granted
            return granted

    def give_back(self, count: int) -> None:
        with self._lock:
            if self.remaining is not None:
                self.remaining += count

    def deferred(self, decision: Decision) -> Outcome:
        why = self.stopped or ("time budget reached" if self.out_of_time() else "max_actions reached")
        return Outcome(decision.revision.arn, decision.action, Result.SKIPPED, f"deferred: {why}")
