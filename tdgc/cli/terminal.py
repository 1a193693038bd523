"""The terminal a command runs in: its three streams and which of them are a terminal (httpie's `Environment`).

Every command reads and writes through one of these rather than through `sys`, so that a test can give it a
terminal (a person answering the question) without patching anything; the default is the real process's.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import IO

import click

_YES = ("y", "yes")
_NO = ("n", "no")


def _stdin() -> IO[str]:
    return sys.stdin


def _stdout() -> IO[str]:
    return sys.stdout


def _stderr() -> IO[str]:
    return sys.stderr


@dataclass(frozen=True)
class Terminal:
    """The streams, as they are when it is made (pytest's capture, say), and whether each is a terminal."""

    stdin: IO[str] = field(default_factory=_stdin)
    stdout: IO[str] = field(default_factory=_stdout)
    stderr: IO[str] = field(default_factory=_stderr)
    stdin_isatty: bool = False
    stdout_isatty: bool = False
    stderr_isatty: bool = False

    @classmethod
    def real(cls) -> Terminal:
        """The process's own streams, each asked whether it is a terminal."""
        return cls(
            sys.stdin,
            sys.stdout,
            sys.stderr,
            stdin_isatty=_isatty(sys.stdin),
            stdout_isatty=_isatty(sys.stdout),
            stderr_isatty=_isatty(sys.stderr),
        )

    @property
    def interactive(self) -> bool:
        """A person can be asked: the question goes to stderr (stdout may be a report) and the answer comes in."""
        return self.stdin_isatty and self.stderr_isatty

    def out(self, text: str) -> None:
        click.echo(text, file=self.stdout)

    def err(self, text: str) -> None:
        click.echo(text, file=self.stderr)

    def confirm(self, question: str) -> bool:
        """Ask on stderr, read the answer from stdin; no unless yes (as click.confirm: Ctrl-D aborts)."""
        while True:
            self.stderr.write(f"{question} [y/N]: ")
            self.stderr.flush()
            line = self.stdin.readline()
            if not line:
                self.stderr.write("\n")
                raise click.Abort()
            answer = line.strip().lower()
            if answer in _YES or answer in _NO or not answer:
                return answer in _YES
            self.err("Error: invalid input")


def _isatty(stream: IO[str] | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # a closed or stand-in stream
        return False
