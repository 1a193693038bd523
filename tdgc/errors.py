"""Errors that end a run with a documented exit status (docs/design.md §5)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ACTIONS_FAILED = 1
EXIT_USAGE = 2
EXIT_GUARD = 3


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
