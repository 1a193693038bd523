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
        *,
        parent: Budget | None = None,
    ) -> None:
        self.remaining = limit  # a share's is its parent's (see share())
        self.deadline = deadline
        self.reserve = reserve
        self._clock = clock
        self._lock = threading.Lock()  # the lanes draw on it at once
        self._parent = parent
        self.stopped: str | None = None  # why the run stopped, when it did (nothing more starts)

    def share(self, seconds: float | None) -> Budget:
        """A target's share: its own deadline (`seconds` from now, within this budget's) and its own stop, the
        actions drawn from this budget's count. A lane that fails stops its own target, not the others."""
        deadline = self.deadline - self.reserve if self.deadline is not None else None
        if seconds is not None:
            mine = self._clock() + seconds
            deadline = min(deadline, mine) if deadline is not None else mine
        return Budget(None, deadline, 0.0, self._clock, parent=self)

    def out_of_time(self) -> bool:
        if self._parent is not None and (self._parent.stopped or self._parent.out_of_time()):
            return True
        return self.deadline is not None and self._clock() >= self.deadline - self.reserve

    def halfway(self) -> float | None:
        """The moment halfway from now to the last moment a mutation may start; None without a deadline."""
        if self.deadline is None:
            return None
        now = self._clock()
        return now + max(0.0, self.deadline - self.reserve - now) / 2

    def stop(self, why: str) -> None:
        self.stopped = why

    def take(self, wanted: int) -> int:
        if self.stopped or self.out_of_time():
            return 0
        if self._parent is not None:
            return self._parent.take(wanted)
        with self._lock:
            if self.remaining is None:
                return wanted
            granted = min(wanted, self.remaining)
            self.remaining -= granted
            return granted

    def give_back(self, count: int) -> None:
        if self._parent is not None:
            self._parent.give_back(count)
            return
        with self._lock:
            if self.remaining is not None:
                self.remaining += count

    def deferred(self, decision: Decision) -> Outcome:
        why = self.stopped or (self._parent.stopped if self._parent else None)
        why = why or ("time budget reached" if self.out_of_time() else "max_actions reached")
        return Outcome(decision.revision.arn, decision.action, Result.SKIPPED, f"deferred: {why}")
