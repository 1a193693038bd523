"""The command line: `tdgc plan`, `tdgc apply`, `tdgc demo`. Thin: parse, build a policy, call run()."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import botocore.exceptions
import click

from tdgc import __version__, signals
from tdgc.aws.connection import Connection, account_id, caller, caller_account, connect, parse_roles
from tdgc.aws.connection import session as aws_session
from tdgc.aws.errors import error_text
from tdgc.aws.pacing import Pacer, unpaced
from tdgc.aws.s3 import S3Access, s3_access
from tdgc.aws.s3url import is_s3
from tdgc.collect.archive import open_archive
from tdgc.collect.run import RunOptions, run
from tdgc.durations import Duration, parse_duration
from tdgc.errors import EXIT_ACTIONS_FAILED, EXIT_OK, EXIT_USAGE, GuardError, TdgcError, UsageError
from tdgc.logs import LOG_FORMATS, configure
from tdgc.model import Action, Decision, Outcome
from tdgc.policy import DEFAULT_RATES, REFERENCE_SOURCES, Overrides, Policy, load_policy
from tdgc.report import destination
from tdgc.report.model import REPORT_VERSION, Report, Writer
from tdgc.report.writers import FORMATS, TableWriter, make_writer


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
        click.option("--all-regions", is_flag=True, help="Every region enabled in each account."),
        click.option("--role-arn", "role_arns", multiple=True, metavar="ARN",
                     help="Assume this role and run in its account (repeatable)."),
        click.option("--role-file", metavar="FILE",
                     help="Roles to assume, one a line: [ACCOUNT_ID] ROLE_ARN [EXTERNAL_ID]."),
        click.option("--external-id", metavar="ID", help="External id for assuming the roles."),
        click.option("--profile", metavar="NAME", help="AWS profile."),
        click.option("--endpoint-url", metavar="URL", help="ECS endpoint (AWS_ENDPOINT_URL is honoured too)."),
        click.option("--output", "output", type=click.Choice(FORMATS),
                     help="Report format; default: table on a terminal, json otherwise."),
        click.option("--report", "report_path", metavar="PATH|DIR|s3://BUCKET/PREFIX/",
                     help="Also write the report there (a directory or prefix gets a timestamped name)."),
        click.option("--archive-bucket-owner", metavar="ACCOUNT",
                     help="The account that must own the S3 buckets of --archive and --report (default: the "
                          "caller's); another account's bucket of that name is refused."),
        click.option("--archive-kms-key", metavar="KEY",
                     help="Encrypt the archive and report in S3 with this KMS key (ARN, key id or alias/NAME); "
                          "default: SSE-S3. Overrides [safety] archive_kms_key."),
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
                     help="Calls per second tdgc may use, by ECS throttling category (read, modify, delete, ...)."),
        click.option("--skip-reference", "skip_references", multiple=True, metavar="SOURCE",
                     help=f"Do not look for references in SOURCE: {', '.join(REFERENCE_SOURCES)}, or all."),
        click.option("--terraform-state", "terraform_state", multiple=True, metavar="FILE|DIR|s3://BUCKET/KEY|PREFIX/",
                     help="Keep every revision this Terraform / OpenTofu state names (read only, never locked)."),
        click.option("--time-budget", type=_DurationType(), metavar="DURATION",
                     help="Stop early enough to end cleanly within this time (e.g. 14m); the next run goes on."),
        click.option("--accept-incomplete-references", is_flag=True,
                     help="Apply even where a reference source could not be read (at your own risk)."),
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
    tdgc restore FILE...   register archived revisions again
    tdgc register FILE     register a task definition, or reuse the revision with the same content
    tdgc usage             what the register store knows: revisions, last use, use count
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
@click.option(
    "--archive",
    metavar="DIR|s3://BUCKET/PREFIX",
    help="Write each revision's full description here before deleting it.",
)
@click.option(
    "--max-actions",
    type=click.IntRange(min=1),
    metavar="N",
    help="Act on at most N revisions; the rest is deferred to the next run.",
)
@click.option(
    "--plan",
    "plan_file",
    metavar="FILE",
    help="A `tdgc plan --output json` report: refuse (exit 3) unless the plan now is the same.",
)
def apply(**kw: Any) -> int:
    """Deregister and delete what the policy releases."""
    return _execute(kw, apply=True)


@cli.command()
@click.argument("archives", nargs=-1, required=True, metavar="ARCHIVED.json|s3://BUCKET/KEY...")
@click.option(
    "--region",
    "regions",
    multiple=True,
    metavar="REGION",
    help="Register here (default: the region each archive came from).",
)
@click.option("--profile", metavar="NAME", help="AWS profile.")
@click.option("--endpoint-url", metavar="URL", help="ECS endpoint (AWS_ENDPOINT_URL is honoured too).")
@click.option("--log-format", type=click.Choice(LOG_FORMATS), default="console", show_default=True)
@click.option(
    "--into-another-account",
    is_flag=True,
    help="Restore archives of another account into the credentials' account (refused otherwise).",
)
def restore(archives: tuple[str, ...], regions: tuple[str, ...], profile: str | None, endpoint_url: str | None,
            log_format: str, into_another_account: bool) -> int:  # fmt: skip
    """Register archived revisions again (each as a new revision) and print the new ARNs.

    Every archive is checked (as RegisterTaskDefinition takes it), and so are its account and region, before
    the first is registered. A failure after that stops there: exit 1, the line names what was not attempted.
    """
    from tdgc.collect import restore as restoring

    configure(log_format, level=logging.WARNING)
    if len(regions) > 1:
        raise UsageError("restore registers into one region: give --region once")
    s3 = None
    if any(is_s3(a) for a in archives):
        s3 = connect(profile, regions or ("us-east-1",), endpoint_url)[0].client("s3", unpaced())
    loaded = [restoring.load(source, s3) for source in archives]  # all checked before any is registered
    targets = restoring.connections(loaded, regions, profile, endpoint_url)
    caller = None
    if any(a.account for a in loaded):
        caller = caller_account(targets[0])
        restoring.check_accounts(loaded, caller, into_another_account=into_another_account)
    pacer = Pacer(dict(DEFAULT_RATES))
    for done, (archived, target) in enumerate(zip(loaded, targets, strict=True)):
        try:
            arn = restoring.register(archived, target, pacer)
        except UsageError as exc:
            if not done:  # nothing registered yet: bad usage, nothing changed
                raise
            rest = ", ".join(a.source for a in loaded[done + 1 :])
            click.echo(f"tdgc: {exc}; {done} restored before it (above)" + (f"; not attempted: {rest}" if rest else ""),
                       err=True)  # fmt: skip
            return EXIT_ACTIONS_FAILED
        click.echo(arn)
        click.echo(f"restored {archived.source} as {arn}{restoring.note(archived, target, caller)}", err=True)
    return EXIT_OK


def _store_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--store", default="tags", show_default=True, metavar="tags|dynamodb://TABLE",
        help="Where content hashes are found again: tags on the revisions, or a DynamoDB table.",
    )(f)  # fmt: skip


def _connection_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--region", metavar="REGION", help="Region (default: the profile's or AWS_REGION)."),
        click.option("--profile", metavar="NAME", help="AWS profile."),
        click.option("--endpoint-url", metavar="URL", help="AWS endpoint (AWS_ENDPOINT_URL is honoured too)."),
        click.option("--log-format", type=click.Choice(LOG_FORMATS), default="console", show_default=True),
    ]):  # fmt: skip
        f = option(f)
    return f


@cli.command()
@click.argument("taskdef", metavar="TASKDEF.json")
@_store_option
@_connection_options
def register(taskdef: str, store: str, region: str | None, profile: str | None, endpoint_url: str | None,
             log_format: str) -> int:  # fmt: skip
    """Print the ARN of an ACTIVE revision with this content, registering one only if none exists.

    TASKDEF.json holds RegisterTaskDefinition's arguments (as `aws ecs register-task-definition
    --cli-input-json` takes them), or a DescribeTaskDefinition answer.
    """
    from tdgc.collect import restore as reading
    from tdgc.reuse.backends import open_store
    from tdgc.reuse.register import How, register_or_reuse

    configure(log_format, level=logging.WARNING)
    args = reading.load(taskdef, request=True).arguments  # checked as RegisterTaskDefinition takes it
    target = connect(profile, (region,) if region else (), endpoint_url)[0]
    try:
        found = register_or_reuse(target.ecs(Pacer(dict(DEFAULT_RATES))), args, open_store(store, target))
    except botocore.exceptions.ClientError as exc:
        if exc.operation_name != "RegisterTaskDefinition":  # the store's: something may have been registered
            raise
        raise UsageError(f"{taskdef}: register failed: {error_text(exc)}") from None  # ECS refused it: none was
    click.echo(found.arn)
    name = f"{found.family}:{found.revision}"
    said = {How.FOUND: f"reused {name}: same content ({found.hash[:19]}…)",
            How.JOINED: f"reused {name}: registered a moment ago by another caller",
            How.REGISTERED: f"registered {name}: new content ({found.hash[:19]}…)",
            How.REPLACED: f"registered {name}: the stored revision was deregistered or deleted since, or is "
                                "not this content"}  # fmt: skip
    click.echo(said[found.how], err=True)
    return EXIT_OK


@cli.command()
@_store_option
@click.option("--output", type=click.Choice(("table", "json")), default="table", show_default=True)
@_connection_options
def usage(store: str, output: str, region: str | None, profile: str | None, endpoint_url: str | None,
          log_format: str) -> int:  # fmt: skip
    """What the register store knows: each content's revision, first registration, last use and uses."""
    from tdgc.reuse.backends import open_store
    from tdgc.reuse.store import record_dict

    configure(log_format, level=logging.WARNING)
    target = connect(profile, (region,) if region else (), endpoint_url)[0]
    try:
        known = list(open_store(store, target, create=False).records())
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise UsageError(f"--store {store}: cannot read it ({error_text(exc)})") from None
    records = sorted(known, key=lambda r: (r.family, r.revision))
    if output == "json":
        click.echo(json.dumps([record_dict(r) for r in records], indent=1))
        return EXIT_OK
    click.echo(f"{'REVISION':<40} {'LAST USED':<20} {'USES':>8}  HASH")
    for r in records:
        last = r.last_used.strftime("%Y-%m-%d %H:%M") if r.last_used else "unknown"
        click.echo(f"{_fit_name(f'{r.family}:{r.revision}', 40):<40} {last:<20} {r.use_count:>8,}  {r.hash[:19]}…")
    click.echo(f"{len(records):,} contents in {store}", err=True)
    return EXIT_OK


def _fit_name(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@cli.command()
@click.option("--output", type=click.Choice(FORMATS), help="Report format (default: table).")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the simulated account.")
@click.option("--full", is_flag=True, help="The whole table, as plan prints it (default: the largest actions).")
@click.option(
    "--serve",
    is_flag=True,
    help="Serve the simulated account over HTTP until Ctrl-C, to try plan, apply and restore on it by hand; "
    "prints the environment to use.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=5000,  # moto's server's own
    show_default=True,
    metavar="N",
    help="The port --serve listens on, on 127.0.0.1 (0: any free one).",
)
def demo(output: str | None, seed: int, full: bool, serve: bool, port: int) -> int:
    """Plan against a built-in simulated account: no AWS account, no network.

    \b
    tdgc demo                 the summary, the largest actions, notes and a legend
    tdgc demo --serve         the same account over HTTP, for tdgc plan, apply and restore
    """
    from tdgc.local.demo import run_demo, serve_demo

    configure("console", level=logging.WARNING)
    if serve:
        if output or full:
            raise UsageError("--serve prints no report: --output and --full go without it")
        return serve_demo(seed, port, sys.stdout, sys.stderr)
    if click.get_current_context().get_parameter_source("port") is not click.core.ParameterSource.DEFAULT:
        raise UsageError("--port goes with --serve")
    return run_demo(output or "table", seed, sys.stdout, sys.stderr, full=full)


def _execute(kw: dict[str, Any], *, apply: bool) -> int:
    configure(kw["log_format"], level=logging.INFO if kw["verbose"] or kw["log_format"] == "json" else logging.WARNING)
    policy = _policy(kw)
    fmt = kw["output"] or ("table" if sys.stdout.isatty() else "json")
    roles = parse_roles(kw["role_arns"], kw["role_file"], kw["external_id"])
    if kw["external_id"] and not roles:
        raise UsageError("--external-id needs --role-arn or --role-file")
    owner = kw["archive_bucket_owner"]
    options = RunOptions(
        policy=policy, apply=apply, regions=tuple(kw["regions"]), all_regions=kw["all_regions"],
        roles=tuple(roles), profile=kw["profile"], endpoint_url=kw["endpoint_url"], archive=kw.get("archive"),
        time_budget=kw["time_budget"].seconds_from(datetime.now(UTC)) if kw["time_budget"] else None,
        bucket_owner=account_id(owner, "--archive-bucket-owner") if owner is not None else None,
    )  # fmt: skip
    options = _settle_bucket_owner(options, kw["report_path"])
    if apply and (kw["plan_file"] or not kw["yes"]):
        _check_destinations(kw["report_path"], options)  # not after a person has said yes
        approved = _review(options, reviewed=_load_plan(kw["plan_file"]) if kw["plan_file"] else None,
                           ask=not kw["yes"])  # fmt: skip
        if approved is None:
            return EXIT_OK
        options = replace(options, approved=approved)
    with _writers(fmt, kw["report_path"], options, "apply" if apply else "plan") as writers:
        result = run(options, writers, progress=_progress())
    _progress_done()
    if result.interrupted:
        click.echo(f"tdgc: interrupted ({result.interrupted}); what was done is in the report, and the next run "
                   "picks up where this one stopped", err=True)  # fmt: skip
        return result.exit_code
    for target in result.refused:
        click.echo(f"tdgc: {target}: apply refused: references could not be read (see the report)", err=True)
    for failure in result.failed:
        click.echo(f"tdgc: {failure}", err=True)
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
    policy = load_policy(path or kw["config"], Overrides(
        **overrides, protect_tags=tuple(kw["protect_tags"]), families=tuple(kw["families"]),
        exclude_families=tuple(kw["exclude_families"]), rates=tuple(kw["rates"]),
        skip_references=tuple(kw["skip_references"]), terraform_state=tuple(kw["terraform_state"]),
        accept_incomplete_references=kw["accept_incomplete_references"], max_actions=kw.get("max_actions"),
        archive_kms_key=kw["archive_kms_key"],
    ))  # fmt: skip
    for warning in policy.warnings:
        click.echo(f"tdgc: warning: {warning}", err=True)
    return policy


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


def _review(options: RunOptions, *, reviewed: dict[str, Action] | None, ask: bool) -> dict[str, Action] | None:
    """Plan first; check it against a reviewed plan file and/or ask a person. The actions to apply, or None."""
    if ask and not _interactive():
        raise UsageError("apply changes the account: pass --yes, or run it on a terminal to confirm")
    planned = _ActionCollector()
    writers: list[Writer] = [TableWriter(sys.stderr), planned] if ask else [planned]
    s = run(replace(options, apply=False), writers, progress=_progress()).summary
    _progress_done()
    if reviewed is not None and planned.actions != reviewed:
        raise GuardError(_difference(reviewed, planned.actions))
    if not (s.deregister or s.delete):
        click.echo("Nothing to do.", err=True)
        return None
    if ask and not click.confirm(f"\nDeregister {s.deregister:,} and delete {s.delete:,} revisions?", err=True):
        click.echo("Nothing was changed.", err=True)
        return None
    return planned.actions


def _load_plan(path: str) -> dict[str, Action]:
    """The actions of a `tdgc plan --output json` report."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        if doc.get("version") != REPORT_VERSION or doc.get("mode") != "plan":
            raise ValueError(f"not a version {REPORT_VERSION} plan report")
        return {d["arn"]: Action(d["action"]) for d in doc["decisions"] if d["action"] != Action.KEEP.value}
    except FileNotFoundError:
        raise UsageError(f"--plan {path}: no such file") from None
    except RecursionError:
        raise UsageError(f"--plan {path}: not a plan from `tdgc plan --output json` (nested too deeply)") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"--plan {path}: not a plan from `tdgc plan --output json` ({exc})") from None


def _difference(reviewed: dict[str, Action], planned: dict[str, Action]) -> str:
    added = sorted(set(planned.items()) - set(reviewed.items()))
    gone = sorted(set(reviewed.items()) - set(planned.items()))
    first = f"; first: {added[0][1].value} {added[0][0]}" if added else f"; first gone: {gone[0][1].value} {gone[0][0]}"
    return (f"the plan differs from the reviewed one: {len(added)} action(s) new, {len(gone)} no longer planned"
            f"{first}. Nothing was changed; plan again and review.")  # fmt: skip


@contextlib.contextmanager
def _writers(fmt: str, report: str | None, options: RunOptions, mode: str) -> Iterator[Sequence[Writer]]:
    with contextlib.ExitStack() as stack:
        writers = [make_writer(fmt, sys.stdout)]
        if report:
            location = destination.resolve(report, destination.report_name(mode, datetime.now(UTC), fmt))
            s3 = _s3(options) if is_s3(location) else None
            destination.check(location, s3)
            file: IO[str] = stack.enter_context(destination.open_report(location, s3))
            writers.append(make_writer(fmt, file))
        yield writers


def _caller(options: RunOptions) -> Connection:
    return caller(aws_session(options.profile), options.endpoint_url, options.regions[0] if options.regions else None)


def _settle_bucket_owner(options: RunOptions, report: str | None) -> RunOptions:
    """The account that must own the S3 destinations, settled once for the whole command: the checks before a
    person is asked, the plan and the run share it. One GetCallerIdentity, and none at all without an S3
    destination or with --archive-bucket-owner given."""
    archive = options.archive if options.apply else None
    if not any(spec and is_s3(spec) for spec in (report, archive)):
        return options
    # The regions and the endpoint first, as the run checks them (no call): bad input is exit 2 before any call.
    connect(options.profile, options.regions, options.endpoint_url, all_regions=options.all_regions)
    if options.bucket_owner is not None:
        return options
    return replace(options, bucket_owner=caller_account(_caller(options)))


def _s3(options: RunOptions) -> S3Access:
    """The caller's S3, as tdgc's own objects are kept there (the owner settled, so no call is made here)."""
    return s3_access(_caller(options), options.bucket_owner, options.policy.safety.archive_kms_key)


def _check_destinations(report: str | None, options: RunOptions) -> None:
    """Before a person is asked: the report and the archive can be written (the run checks them again)."""
    if report:
        location = destination.resolve(report, destination.report_name("apply", datetime.now(UTC)))
        destination.check(location, _s3(options) if is_s3(location) else None)
    if options.archive:
        open_archive(options.archive, _s3(options) if is_s3(options.archive) else None).check()


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


_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def _one_line(text: str) -> str:
    """An error is one line whatever input it quotes: control characters (a newline, a carriage return) as
    escapes."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: every error is one line on stderr and an exit status of docs/design.md §5."""
    try:
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="tdgc", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else "tdgc: see tdgc --help")
        code = EXIT_OK
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:  # click turns Ctrl-C into Abort
        name, code = signals.stopped_by(exc)
        click.echo(f"tdgc: interrupted ({name}); the next run picks up where this one stopped", err=True)
    except click.ClickException as exc:
        hint = f" (see: {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) else ""  # type: ignore[attr-defined]
        click.echo(f"tdgc: {_one_line(exc.format_message())}{hint}", err=True)
        code = EXIT_USAGE
    except TdgcError as exc:
        click.echo(f"tdgc: {_one_line(str(exc))}", err=True)
        code = exc.exit_code
    except Exception as exc:  # a bug: one line, the traceback only when asked for
        if os.environ.get("TDGC_DEBUG"):
            raise
        click.echo(f"tdgc: internal error: {type(exc).__name__}: {_one_line(str(exc))} (TDGC_DEBUG=1 shows the "
                   "traceback)", err=True)  # fmt: skip
        code = EXIT_ACTIONS_FAILED
    sys.exit(code if isinstance(code, int) else EXIT_OK)
