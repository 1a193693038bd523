"""One target's pages reported in the order they were decided, once their mutations are done."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait

from tdgc.model import Decision, Outcome

PAGES_AHEAD = 8  # pages decided but not yet reported, at most: the scan's lead over the lanes
LANE_DEPTH = 2  # pages queued in one lane, at most: mutations wait little after their decision

Page = tuple[list[Decision], list[Outcome], list[Future[list[Outcome]]]]


class InOrderReporter:
    """The pages decided whose mutations are queued or under way, handed to `sink` in order once done.

    The scan pushes each page and is held back while the lanes are too far behind (more than PAGES_AHEAD
    pages pending, or a lane with more than LANE_DEPTH queued), so that memory stays flat.
    """

    def __init__(
        self,
        sink: Callable[[Sequence[Decision], Sequence[Outcome]], None],
        lane_depth: Callable[[], int],
    ) -> None:
        self._sink = sink
        self._lane_depth = lane_depth  # pages queued in the busiest lane
        self._pending: deque[Page] = deque()

    def push(self, decisions: list[Decision], outcomes: list[Outcome], futures: list[Future[list[Outcome]]]) -> None:
        """A page decided; the pages done by now are reported, waiting first if the lanes are too far behind."""
        self._pending.append((decisions, outcomes, futures))
        self.report_done()

    def report_done(self, drain: bool = False) -> None:
        """Report the pages whose mutations are done, in order; `drain`: every page, waiting for each."""
        while self._pending:
            decisions, outcomes, futures = self._pending[0]
            if not all(f.done() for f in futures):
                behind = len(self._pending) > PAGES_AHEAD or self._lane_depth() > LANE_DEPTH
                if not (drain or behind):
                    return
                wait(futures)
            self._pending.popleft()
            # Draining after a failure, a lane that failed has no outcomes to give; otherwise its error goes on.
            done = [f for f in futures if not (drain and f.exception() is not None)]
            self._sink(decisions, outcomes + [o for f in done for o in f.result()])
