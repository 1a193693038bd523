"""Errors that end a run with a documented exit status (docs/design.md §5)."""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """The exit statuses of docs/design.md §5 (an interruption exits 128 + its signal's number)."""

    OK = 0
    ACTIONS_FAILED = 1  # some actions failed, a target stopped, or the report was lost after changes
    USAGE = 2  # bad input of any kind, or AWS refused every target: nothing was changed
    GUARD = 3  # a safety guard refused to go on: nothing (more) was changed


EXIT_OK = ExitStatus.OK
EXIT_ACTIONS_FAILED = ExitStatus.ACTIONS_FAILED
EXIT_USAGE = ExitStatus.USAGE
EXIT_GUARD = ExitStatus.GUARD


class TdgcError(Exception):
    """An error the CLI reports as one line on stderr, exiting with `exit_code`."""

    exit_code = EXIT_USAGE


class UsageError(TdgcError):
    """Bad flags, policy, credentials or region: nothing was mutated."""


class PolicyError(UsageError):
    """A policy file or flag value that cannot be used; names file, key and line where known."""

    def __init__(self, message: str, *, source: str = "", key: str = "", line: int | None = None) -> None:
        where = source
        if line is not None:
            where = f"{where}:{line}" if where else f"line {line}"
        prefix = ", ".join(part for part in (where, f"key {key!r}" if key else "") if part)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.source = source
        self.key = key
        self.line = line


class GuardError(TdgcError):
    """A safety guard refused to go on; nothing (more) was mutated."""

    exit_code = EXIT_GUARD


class ReportError(TdgcError):
    """The report could not be written once the run was under way: the run may have changed the account,
    so not exit 2 ("nothing was changed") but 1, an action that failed."""

    exit_code = EXIT_ACTIONS_FAILED
