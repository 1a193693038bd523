"""The progress display: click's bar on a terminal's stderr, the scan's families then the actions, cleared at
the end; nothing at all anywhere else."""

from __future__ import annotations

import io

from tdgc.cli.progress import CLEAR, SHOW_CURSOR, ProgressView, progress_for
from tdgc.cli.terminal import Terminal
from tdgc.collect.run import RunProgress
from tests.helpers import FakeClock


class TtyIO(io.StringIO):
    """A stream that says it is a terminal, as a person's stderr does."""

    def isatty(self) -> bool:
        return True


def snapshot(target: str = "a", **values: int | bool | None) -> RunProgress:
    base: dict[str, int | bool | None] = {
        "families_seen": 0,
        "families_listed": 4,
        "revisions_seen": 0,
        "planned": 0,
        "acted": 0,
        "deregistered": 0,
        "deleted": 0,
        "applying": True,
    }
    return RunProgress(target, **{**base, **values})  # type: ignore[arg-type]


def test_scanning_then_acting_with_each_buckets_rate_then_cleared() -> None:
    err, clock = TtyIO(), FakeClock()
    view = ProgressView(Terminal(stderr=err, stderr_isatty=True), clock=clock)
    view(snapshot(families_seen=1, revisions_seen=120, planned=10))
    assert "scanning families" in err.getvalue() and "1/4" in err.getvalue() and "120 revisions" in err.getvalue()
    view(snapshot(families_seen=4, revisions_seen=480, planned=30))
    clock.sleep(10)
    view(snapshot(families_seen=4, revisions_seen=480, planned=30, acted=12, deregistered=5, deleted=7))
    shown = err.getvalue().rsplit("\r", 1)[-1]
    assert "acting" in shown and "12/30" in shown
    assert "deregistered 5 (0.50/s)" in shown and "deleted 7 (0.70/s)" in shown
    view.close()
    assert err.getvalue().endswith(CLEAR + SHOW_CURSOR)


def test_targets_in_parallel_add_up() -> None:
    err = TtyIO()
    view = ProgressView(Terminal(stderr=err, stderr_isatty=True), clock=FakeClock())
    view(snapshot("a", families_seen=2, families_listed=3))
    view(snapshot("b", families_seen=1, families_listed=5))
    assert "3/8" in err.getvalue().rsplit("\r", 1)[-1]


def test_a_plan_never_shows_an_acting_bar() -> None:
    err = TtyIO()
    view = ProgressView(Terminal(stderr=err, stderr_isatty=True), clock=FakeClock())
    view(snapshot(families_seen=4, planned=30, applying=False))
    assert "acting" not in err.getvalue() and "4/4" in err.getvalue()


def test_machine_formats_and_streams_that_are_no_terminal_get_nothing() -> None:
    assert progress_for(Terminal(stderr=TtyIO(), stderr_isatty=True), "json") is None
    assert progress_for(Terminal(stderr=TtyIO(), stderr_isatty=False), "table") is None
    assert progress_for(Terminal(stderr=io.StringIO(), stderr_isatty=True), "table") is None  # says so, is not
    assert progress_for(Terminal(stderr=TtyIO(), stderr_isatty=True), "table") is not None
