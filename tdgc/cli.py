"""The command line: `tdgc plan`, `tdgc apply`, `tdgc demo`. Thin: parse, build a policy, call run()."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import IO, Any

import click

from tdgc import __version__
from tdgc.durations import Duration, parse_duration
from tdgc.errors import EXIT_ACTIONS_FAILED, EXIT_OK, EXIT_USAGE, TdgcError, UsageError
from tdgc.logs import LOG_FORMATS, configure
from tdgc.model import Action, Decision, Outcome
from tdgc.policy import Overrides, Policy, load_policy
from tdgc.report import FORMATS, Report, TableWriter, Writer, make_writer
from tdgc.run import RunOptions, run


class _DurationType(click.ParamType):  # type: ignore[type-arg]
    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Duration:
        if isinstance(value, Duration):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _common(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.argument("policy_file", required=False, metavar="[POLICY]"),
        click.option("--config", "config", metavar="FILE", help="Policy file (TOML); same as POLICY."),
        click.option("--region", "regions", multiple=True, metavar="REGION", help="Region (repeatable)."),
        click.option("--profile", metavar="NAME", help="AWS profile."),
        click.option("--endpoint-url", metavar="URL", help="ECS endpoint (AWS_ENDPOINT_URL is honoured too)."),
        click.option("--output", "output", type=click.Choice(FORMATS),
                     help="Report format; default: table on a terminal, json otherwise."),
        click.option("--report", "report_path", metavar="PATH", help="Also write the report to PATH."),
        click.option("--log-format", type=click.Choice(LOG_FORMATS), default="console", show_default=True),
        click.option("-v", "--verbose", is_flag=True, help="Log every action (console logs show warnings only)."),
        click.option("--family", "families", multiple=True, metavar="GLOB", help="Only these families."),
        click.option("--exclude-family", "exclude_families", multiple=True, metavar="GLOB",
                     help="Never touch these families."),
        click.option("--keep-last", type=click.IntRange(min=0), metavar="N",
                     help="Keep the newest N ACTIVE revisions of each family."),
        click.option("--deregister-after", type=_DurationType(), metavar="DURATION",
                     help="Deregister an older ACTIVE revision only once registered this long ago."),
        click.option("--delete-after", metavar="DURATION|never",
                     help="Delete an INACTIVE revision once deregistered this long ago."),
        click.option("--protect-tag", "protect_tags", multiple=True, metavar="KEY[=VALUE]",
                     help="Keep revisions with this tag (any value if none given)."),
        click.option("--rate", "rates", multiple=True, metavar="CATEGORY=PER_SECOND",
                     help="Calls per second tdgc may use: read, modify, delete."),
    ]  # fmt: skip
    for option in reversed(options):
        f = option(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tdgc")
def cli() -> None:
    """tdgc: a garbage collector for Amazon ECS task-definition revisions.

    \b
    tdgc plan   [POLICY]   show what the policy would do, and why (changes nothing)
    tdgc apply  [POLICY]   do it: deregister and delete what the policy releases
    tdgc demo              plan against a built-in simulated account
    """


@cli.command()
@_common
def plan(**kw: Any) -> int:
    """Show every decision the policy makes, and why. Never changes anything."""
    return _execute(kw, apply=False)


@cli.command()
@_common
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--archive", metavar="DIR", help="Write each revision's full description here before deleting it.")
def apply(**kw: Any) -> int:
    """Deregister and delete what the policy releases."""
    return _execute(kw, apply=True)


@cli.command()
@click.option("--output", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the simulated account.")
def demo(output: str, seed: int) -> int:
    """Plan against a built-in simulated account: no AWS account, no network."""
    from tdgc.demo import run_demo

    configure("console", level=logging.WARNING)
    return run_demo(output, seed, sys.stdout, sys.stderr)


def _execute(kw: dict[str, Any], *, apply: bool) -> int:
    configure(kw["log_format"], level=logging.INFO if kw["verbose"] or kw["log_format"] == "json" else logging.WARNING)
    policy = _policy(kw)
    fmt = kw["output"] or ("table" if sys.stdout.isatty() else "json")
    options = RunOptions(
        policy=policy, apply=apply, regions=tuple(kw["regions"]), profile=kw["profile"],
        endpoint_url=kw["endpoint_url"], archive=kw.get("archive"),
    )  # fmt: skip
    if apply and not kw["yes"]:
        approved = _confirm(options)
        if approved is None:
            return EXIT_OK
        options = replace(options, approved=approved)
    with _writers(fmt, kw["report_path"]) as writers:
        result = run(options, writers, progress=_progress())
    _progress_done()
    return result.exit_code


def _policy(kw: dict[str, Any]) -> Policy:
    path = kw["policy_file"]
    if path and kw["config"] and path != kw["config"]:
        raise UsageError(f"two policy files given ({path} and --config {kw['config']}): give one")
    overrides: dict[str, Any] = {}
    if kw["keep_last"] is not None:
        overrides["keep_last"] = kw["keep_last"]
    if kw["deregister_after"] is not None:
        overrides["deregister_after"] = kw["deregister_after"]
    if kw["delete_after"] is not None:
        text = kw["delete_after"].strip()
        try:
            overrides["delete_after"] = None if text.lower() in ("never", "false") else parse_duration(text)
        except ValueError as exc:
            raise UsageError(f"--delete-after: {exc}") from None
    return load_policy(path or kw["config"], Overrides(
        **overrides, protect_tags=tuple(kw["protect_tags"]), families=tuple(kw["families"]),
        exclude_families=tuple(kw["exclude_families"]), rates=tuple(kw["rates"]),
    ))  # fmt: skip


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


class _ActionCollector(Writer):
    """Remembers the actions of a plan, so that apply does no more than what a person confirmed."""

    def __init__(self) -> None:
        self.actions: dict[str, Action] = {}

    def add(self, decisions: Sequence[Decision], outcomes: Sequence[Outcome]) -> None:
        self.actions.update((d.revision.arn, d.action) for d in decisions if d.action is not Action.KEEP)

    def finish(self, report: Report) -> None:
        pass


def _confirm(options: RunOptions) -> dict[str, Action] | None:
    """Show the plan on the terminal, ask, and return the actions confirmed (None: declined)."""
    if not _interactive():
        raise UsageError("apply changes the account: pass --yes, or run it on a terminal to confirm")
    confirmed = _ActionCollector()
    preview = replace(options, apply=False)
    s = run(preview, [TableWriter(sys.stderr), confirmed], progress=_progress()).summary
    _progress_done()
    if not (s.deregister or s.delete):
        click.echo("Nothing to do.", err=True)
        return None
    if not click.confirm(f"\nDeregister {s.deregister:,} and delete {s.delete:,} revisions?", err=True):
        click.echo("Nothing was changed.", err=True)
        return None
    return confirmed.actions


@contextlib.contextmanager
def _writers(fmt: str, report_path: str | None) -> Iterator[Sequence[Writer]]:
    with contextlib.ExitStack() as stack:
        writers = [make_writer(fmt, sys.stdout)]
        if report_path:
            try:
                file: IO[str] = stack.enter_context(open(report_path, "w", encoding="utf-8", newline=""))
            except OSError as exc:
                raise UsageError(f"--report {report_path}: cannot write ({exc.strerror})") from None
            writers.append(make_writer(fmt, file))
        yield writers


def _progress() -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(families: int, revisions: int) -> None:
        sys.stderr.write(f"\r\033[Kscanning: {families:,} families, {revisions:,} revisions")
        sys.stderr.flush()

    return show


def _progress_done() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: every error is one line on stderr and an exit status of DESIGN §5."""
    try:
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="tdgc", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else "tdgc: see tdgc --help")
        code = EXIT_OK
    except click.exceptions.Abort:
        click.echo("tdgc: aborted", err=True)
        code = EXIT_USAGE
    except click.ClickException as exc:
        hint = f" (see: {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) else ""  # type: ignore[attr-defined]
        click.echo(f"tdgc: {exc.format_message()}{hint}", err=True)
        code = EXIT_USAGE
    except TdgcError as exc:
        click.echo(f"tdgc: {exc}", err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        click.echo("tdgc: interrupted", err=True)
        code = 130
    except Exception as exc:  # a bug: one line, the traceback only when asked for
        if os.environ.get("TDGC_DEBUG"):
            raise
        click.echo(f"tdgc: internal error: {type(exc).__name__}: {exc} (TDGC_DEBUG=1 shows the traceback)", err=True)
        code = EXIT_ACTIONS_FAILED
    sys.exit(code if isinstance(code, int) else EXIT_OK)
