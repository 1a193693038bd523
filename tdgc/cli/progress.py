"""Progress on stderr, on a terminal only: click's progress bar, first over the families the scan lists, then
over the actions planned, with each ECS bucket's rate. Cleared before the report is printed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TextIO, cast

import click

from tdgc.cli.terminal import Terminal
from tdgc.collect.run import RunProgress

CLEAR = "\r\033[K"
SHOW_CURSOR = "\033[?25h"  # click hides it while a bar is drawn


class ProgressView:
    """What every target's run says of itself, as one bar (targets in parallel add up)."""

    def __init__(self, terminal: Terminal, clock: Callable[[], float] = time.monotonic) -> None:
        self._terminal, self._clock = terminal, clock
        self._started = clock()
        self._lock = threading.Lock()  # targets in parallel report from their own threads
        self._latest: dict[str, RunProgress] = {}
        self._bar: Any = None
        self._label = ""

    def __call__(self, progress: RunProgress) -> None:
        with self._lock:
            self._latest[progress.target] = progress
            self._render()

    def close(self) -> None:
        """Clear the bar, so that what follows (the report, a question) starts on a line of its own."""
        with self._lock:
            if self._bar is not None:
                self._terminal.stderr.write(CLEAR + SHOW_CURSOR)
                self._terminal.stderr.flush()
                self._bar = None

    def _render(self) -> None:
        runs = list(self._latest.values())
        listed = [r.families_listed for r in runs]
        seen = sum(r.families_seen for r in runs)
        scanning = None in listed or seen < sum(n for n in listed if n is not None)
        if scanning or not any(r.applying for r in runs):
            total = sum(n for n in listed if n is not None) if None not in listed else 0
            revisions = sum(r.revisions_seen for r in runs)
            self._show("scanning families", seen, total, f"{revisions:,} revisions")
            return
        planned, acted = sum(r.planned for r in runs), sum(r.acted for r in runs)
        self._show("acting", acted, planned, self._rates(runs))

    def _rates(self, runs: list[RunProgress]) -> str:
        elapsed = max(self._clock() - self._started, 1e-9)
        deregistered, deleted = sum(r.deregistered for r in runs), sum(r.deleted for r in runs)
        return (
            f"deregistered {deregistered:,} ({deregistered / elapsed:.2f}/s), "
            f"deleted {deleted:,} ({deleted / elapsed:.2f}/s)"
        )

    def _show(self, label: str, position: int, length: int, info: str) -> None:
        if self._bar is None or self._label != label:
            self._terminal.stderr.write(CLEAR)
            self._bar = click.progressbar(
                None,
                length=max(length, 1),
                label=label,
                file=cast("TextIO", self._terminal.stderr),
                show_pos=True,
                show_eta=True,
                item_show_func=_shown,
                width=20,
            )
            self._label = label
        bar = self._bar
        bar.length = max(length, position, 1)  # what is planned grows as the scan goes on
        bar.update(position - bar.pos, info)


def _shown(item: str | None) -> str | None:
    return item


PEOPLE = ("table", "markdown")  # the formats a person reads as they come: the others stay silent


def progress_for(terminal: Terminal, fmt: str) -> ProgressView | None:
    """A progress display, where stderr is a terminal and the report is for people (machine formats stay silent,
    and so does any run whose stderr is not a terminal)."""
    return ProgressView(terminal) if terminal.stderr_isatty and _drawable(terminal) and fmt in PEOPLE else None


def _drawable(terminal: Terminal) -> bool:
    """Whether the stream itself is a terminal: click's bar prints only its label anywhere else."""
    try:
        return bool(terminal.stderr.isatty())
    except (AttributeError, ValueError):
        return False
