"""Logging through structlog, always on stderr: readable on a terminal, JSON with --log-format json."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

LOG_FORMATS = ("console", "json")


class _Stderr:
    """Whatever sys.stderr is when a line is written, not when logging was configured."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure(fmt: str = "console", *, stream: TextIO | None = None, level: int = logging.INFO) -> None:
    out: Any = stream or _Stderr()
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        colors = bool(getattr(out, "isatty", lambda: False)())
        processors.append(
            structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=structlog.dev.plain_traceback)
        )
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
