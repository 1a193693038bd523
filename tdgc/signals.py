"""SIGTERM handled as SIGINT is: containers, ECS tasks, Kubernetes and Airflow's timeouts all stop work with it.

`install()` makes SIGTERM raise `Interrupted` in the main thread, as Ctrl-C raises KeyboardInterrupt (which it
subclasses), so every path that finishes cleanly on Ctrl-C (no new mutation, calls in flight finish, the
report written with what was done) does so on SIGTERM too; the exit status is 128 + the signal's number.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


class Interrupted(KeyboardInterrupt):
    """A signal asked tdgc to stop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def install() -> None:
    """SIGTERM raises Interrupted in the main thread (only the main thread may handle signals)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise)


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def stopped_by(exc: BaseException) -> tuple[str, int]:
    """(the signal's name, the exit status) of an interruption: SIGINT for a plain KeyboardInterrupt."""
    found: BaseException | None = exc
    while found is not None and not isinstance(found, KeyboardInterrupt):  # click wraps Ctrl-C in Abort
        found = found.__cause__ or found.__context__
    name = signal.Signals(found.signum if isinstance(found, Interrupted) else signal.SIGINT).name
    return name, exit_status(name)


def exit_status(name: str) -> int:
    """128 + the signal's number, as a shell reports a process a signal ended: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + signal.Signals[name]
