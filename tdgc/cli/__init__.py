"""The command line: one module a command (`run` holds plan and apply), the options in `options`, the
confirmation in `review`, the terminal in `terminal`. Thin: parse, build the typed arguments, call the library.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence

import click

from tdgc import __version__, signals
from tdgc.cli.demo import demo
from tdgc.cli.init import init
from tdgc.cli.register import register
from tdgc.cli.restore import restore
from tdgc.cli.run import apply, plan
from tdgc.cli.terminal import Terminal
from tdgc.cli.usage import usage
from tdgc.errors import EXIT_ACTIONS_FAILED, EXIT_OK, EXIT_USAGE, TdgcError

EXAMPLES = """\b
Start with:
  tdgc demo                        a plan against a built-in simulated account
  tdgc init                        a starter policy.toml
  tdgc plan policy.toml            what the policy would do in your account, and why
  tdgc apply policy.toml --archive s3://my-bucket/tdgc/

`tdgc COMMAND --help` tells more. Exit status (docs/design.md §5): 0 done; 1 some actions failed;
2 bad input, nothing changed; 3 a safety guard refused; 130 or 143 interrupted.
"""


class _InOrder(click.Group):
    """Commands listed in the order they are used, not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(
    cls=_InOrder,
    epilog=EXAMPLES,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="tdgc")
def cli() -> None:
    """tdgc: a garbage collector for Amazon ECS task-definition revisions.

    It keeps what a policy keeps and what is in use, and deregisters and deletes the rest.
    """


for _command in (init, plan, apply, restore, register, usage, demo):
    cli.add_command(_command)

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def _one_line(text: str) -> str:
    """An error is one line whatever input it quotes: control characters (a newline, a carriage return) as
    escapes."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def main(argv: Sequence[str] | None = None, *, terminal: Terminal | None = None) -> None:
    """Entry point: every error is one line on stderr and an exit status of docs/design.md §5. `terminal` is
    where it reads and writes (default: the process's own streams)."""
    term = terminal or Terminal.real()
    try:
        args = list(argv) if argv is not None else None
        code = cli.main(args=args, prog_name="tdgc", standalone_mode=False, obj=term)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:
        term.out(exc.ctx.get_help() if exc.ctx else "tdgc: see tdgc --help")
        code = EXIT_OK
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:  # click turns Ctrl-C into Abort
        name, code = signals.stopped_by(exc)
        term.err(f"tdgc: interrupted ({name}); the next run picks up where this one stopped")
    except click.ClickException as exc:
        hint = f" (see: {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) else ""  # type: ignore[attr-defined]
        term.err(f"tdgc: {_one_line(exc.format_message())}{hint}")
        code = EXIT_USAGE
    except TdgcError as exc:
        term.err(f"tdgc: {_one_line(str(exc))}")
        code = exc.exit_code
    except Exception as exc:  # a bug: one line, the traceback only when asked for
        if os.environ.get("TDGC_DEBUG"):
            raise
        term.err(
            f"tdgc: internal error: {type(exc).__name__}: {_one_line(str(exc))} (TDGC_DEBUG=1 shows the traceback)"
        )
        code = EXIT_ACTIONS_FAILED
    sys.exit(code if isinstance(code, int) else EXIT_OK)
