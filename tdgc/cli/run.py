"""`tdgc plan` and `tdgc apply`: one policy, one run (tdgc.collect.run), one report; apply confirms first."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import click

from tdgc.aws.connection import Connection, account_id, caller, caller_account, connect, parse_roles
from tdgc.aws.connection import session as aws_session
from tdgc.aws.s3 import S3Access, s3_access
from tdgc.aws.s3url import is_s3
from tdgc.cli.options import RunArguments, apply_options, run_arguments, run_options
from tdgc.cli.progress import progress_for
from tdgc.cli.review import load_plan, review
from tdgc.cli.terminal import Terminal
from tdgc.collect.archive import open_archive
from tdgc.collect.run import RunOptions, run
from tdgc.durations import parse_duration
from tdgc.errors import EXIT_OK, UsageError
from tdgc.logs import configure
from tdgc.policy import Overrides, Policy, load_policy
from tdgc.report import destination

PLAN_EXAMPLE = """\b
Example:
  tdgc plan policy.toml --region eu-west-1 --output table
  tdgc plan --keep-last 10 --delete-after never --output json > plan.json
"""

APPLY_EXAMPLE = """\b
Examples:
  tdgc apply policy.toml --archive s3://my-bucket/tdgc/       (shows the plan, then asks)
  tdgc apply policy.toml --yes --archive ./archive --time-budget 14min
  tdgc apply policy.toml --yes --plan plan.json               (only if the plan is still the one reviewed)
"""


@click.command(epilog=PLAN_EXAMPLE, short_help="Show what the policy would do, and why; changes nothing.")
@run_options
@click.pass_obj
def plan(terminal: Terminal, /, **values: Any) -> int:
    """Show every decision the policy makes, and why. Never changes anything.

    POLICY is a TOML policy file; the options override it. The report goes to stdout: a table on a terminal,
    JSON otherwise (--output). `tdgc apply` with the same policy and options carries the plan out.
    """
    return execute(terminal, run_arguments(values), apply=False)


@click.command(epilog=APPLY_EXAMPLE, short_help="Deregister and delete what the policy releases.")
@run_options
@apply_options
@click.pass_obj
def apply(terminal: Terminal, /, **values: Any) -> int:
    """Deregister and delete what the policy releases.

    It plans first and, on a terminal, shows the plan and asks before changing anything; where no one can
    answer (no terminal: cron, CI) it needs --yes, and refuses to run without it. With --plan FILE it applies
    only if the plan is still the one in FILE. A revision deleted without --archive cannot be brought back;
    with --archive, `tdgc restore` registers it again. --dry-run makes it `tdgc plan`.
    """
    args = run_arguments(values)
    if args.dry_run and args.plan_file:
        raise UsageError("--dry-run plans and --plan checks what is applied: give one")
    return execute(terminal, args, apply=not args.dry_run)


def execute(terminal: Terminal, args: RunArguments, *, apply: bool) -> int:
    verbose = args.verbose or args.connect.log_format == "json"
    configure(args.connect.log_format, level=logging.INFO if verbose else logging.WARNING)
    options = run_options_of(args, policy_of(args, terminal), apply=apply)
    fmt = args.output or ("table" if terminal.stdout_isatty else "json")
    if apply and (args.plan_file or not args.yes):
        check_destinations(args.report_path, options)  # not after a person has said yes
        reviewed = load_plan(args.plan_file) if args.plan_file else None
        approved = review(options, terminal, reviewed=reviewed, ask=not args.yes)
        if approved is None:
            return EXIT_OK
        options = replace(options, approved=approved)
    mode = "apply" if apply else "plan"
    location = _location(args.report_path, mode, fmt)
    s3 = _s3(options) if location and is_s3(location) else None
    with destination.writers(fmt, terminal.stdout, location, s3) as writers:
        result = run(options, writers, progress=progress_for(terminal, fmt))
    if result.interrupted:
        terminal.err(
            f"tdgc: interrupted ({result.interrupted}) after {result.summary.deregistered:,} deregistered and "
            f"{result.summary.deleted:,} deleted; what was done is in the report, and the next run picks up where "
            "this one stopped"
        )
        return result.exit_code
    for target in result.refused:
        terminal.err(f"tdgc: {target}: apply refused: references could not be read (see the report)")
    for failure in result.failed:
        terminal.err(f"tdgc: {failure}")
    return result.exit_code


def run_options_of(args: RunArguments, policy: Policy, *, apply: bool) -> RunOptions:
    """The run's options, every argument checked (no AWS call, but one GetCallerIdentity for an S3 owner)."""
    roles = parse_roles(args.role_arns, args.role_file, args.external_id)
    if args.external_id and not roles:
        raise UsageError("--external-id needs --role-arn or --role-file")
    owner = args.archive_bucket_owner
    options = RunOptions(
        policy=policy,
        apply=apply,
        regions=args.connect.regions,
        all_regions=args.all_regions,
        roles=tuple(roles),
        profile=args.connect.profile,
        endpoint_url=args.connect.endpoint_url,
        archive=args.archive,
        time_budget=args.time_budget.seconds_from(datetime.now(UTC)) if args.time_budget else None,
        bucket_owner=account_id(owner, "--archive-bucket-owner") if owner is not None else None,
        parallel=args.parallel,
    )
    return settle_bucket_owner(options, args.report_path)


def policy_of(args: RunArguments, terminal: Terminal) -> Policy:
    path = args.policy_file
    if path and args.config and path != args.config:
        raise UsageError(f"two policy files given ({path} and --config {args.config}): give one")
    overrides: dict[str, Any] = {}
    if args.keep_last is not None:
        overrides["keep_last"] = args.keep_last
    if args.deregister_after is not None:
        overrides["deregister_after"] = args.deregister_after
    if args.delete_after is not None:
        text = args.delete_after.strip()
        try:
            overrides["delete_after"] = None if text.lower() in ("never", "false") else parse_duration(text)
        except ValueError as exc:
            raise UsageError(f"--delete-after: {exc}") from None
    given = Overrides(
        **overrides,
        protect_tags=args.protect_tags,
        families=args.families,
        exclude_families=args.exclude_families,
        rates=args.rates,
        skip_references=args.skip_references,
        terraform_state=args.terraform_state,
        accept_incomplete_references=args.accept_incomplete_references,
        max_actions=args.max_actions,
        archive_kms_key=args.archive_kms_key,
    )
    policy = load_policy(path or args.config, given)
    for warning in policy.warnings:
        terminal.err(f"tdgc: warning: {warning}")
    return policy


def settle_bucket_owner(options: RunOptions, report: str | None) -> RunOptions:
    """The account that must own the S3 destinations, settled once for the whole command: the checks before a
    person is asked, the plan and the run share it. One GetCallerIdentity, and none at all without an S3
    destination or with --archive-bucket-owner given; the run reuses its answer rather than asking again."""
    archive = options.archive if options.apply else None
    if not any(spec and is_s3(spec) for spec in (report, archive)):
        return options
    # The regions and the endpoint first, as the run checks them (no call): bad input is exit 2 before any call.
    connect(options.profile, options.regions, options.endpoint_url, all_regions=options.all_regions)
    if options.bucket_owner is not None:
        return options
    account = caller_account(_caller(options))
    return replace(options, bucket_owner=account, caller_account=account)


def check_destinations(report: str | None, options: RunOptions) -> None:
    """Before a person is asked: the report and the archive can be written (the run checks them again)."""
    location = _location(report, "apply")
    if location:
        destination.check(location, _s3(options) if is_s3(location) else None)
    if options.archive:
        open_archive(options.archive, _s3(options) if is_s3(options.archive) else None).check()


def _location(report: str | None, mode: str, fmt: str = "json") -> str | None:
    return destination.resolve(report, destination.report_name(mode, datetime.now(UTC), fmt)) if report else None


def _caller(options: RunOptions) -> Connection:
    return caller(aws_session(options.profile), options.endpoint_url, options.regions[0] if options.regions else None)


def _s3(options: RunOptions) -> S3Access:
    """The caller's S3, as tdgc's own objects are kept there (the owner settled, so no call is made here)."""
    return s3_access(_caller(options), options.bucket_owner, options.policy.safety.archive_kms_key)
