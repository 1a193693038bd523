"""`tdgc restore`: register archived revisions again, each as a new revision."""

from __future__ import annotations

import logging
from typing import Any

import click

from tdgc.aws.connection import account_id, caller_account, connect
from tdgc.aws.pacing import Pacer
from tdgc.aws.s3 import s3_access
from tdgc.aws.s3url import is_s3
from tdgc.cli.options import BUCKET_OWNER, connect_arguments, connection_options
from tdgc.cli.terminal import Terminal
from tdgc.errors import EXIT_ACTIONS_FAILED, EXIT_OK, UsageError
from tdgc.logs import configure
from tdgc.policy import DEFAULT_RATES

EXAMPLE = """\b
Examples:
  tdgc restore ./archive/123456789012/us-east-1/web/41.json
  tdgc restore s3://my-bucket/tdgc/123456789012/us-east-1/web/41.json --region eu-west-1
"""


@click.command(epilog=EXAMPLE, short_help="Register archived revisions again.")
@click.argument("archives", nargs=-1, required=True, metavar="ARCHIVED.json|s3://BUCKET/KEY...")
@connection_options("Register here (default: the region each archive came from).")
@click.option(
    "--into-another-account",
    is_flag=True,
    help="Restore archives of another account into the credentials' account (refused otherwise).",
)
@BUCKET_OWNER
@click.pass_obj
def restore(
    terminal: Terminal,
    /,
    archives: tuple[str, ...],
    into_another_account: bool,
    archive_bucket_owner: str | None,
    **values: Any,
) -> int:
    """Register archived revisions again (each as a new revision) and print the new ARNs.

    ARCHIVED.json is what `tdgc apply --archive` wrote before deleting a revision. Every archive is checked
    (as RegisterTaskDefinition takes it), and so are its account and region, before the first is registered.
    A failure after that stops there: exit 1, the line names what was not attempted.
    """
    from tdgc.collect import restore as restoring

    given = connect_arguments(values)
    configure(given.log_format, level=logging.WARNING)
    region = given.one_region("restore")
    regions = (region,) if region else ()
    owner = account_id(archive_bucket_owner, "--archive-bucket-owner") if archive_bucket_owner is not None else None
    s3 = None
    if any(is_s3(a) for a in archives):
        # Read as archives are written: from a bucket the expected account owns (ExpectedBucketOwner), never
        # from one of that name another account holds.
        s3 = s3_access(connect(given.profile, regions or ("us-east-1",), given.endpoint_url)[0], owner, None)
    loaded = [restoring.load(source, s3) for source in archives]  # all checked before any is registered
    targets = restoring.connections(loaded, regions, given.profile, given.endpoint_url)
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
            not_attempted = f"; not attempted: {rest}" if rest else ""
            terminal.err(f"tdgc: {exc}; {done} restored before it (above){not_attempted}")
            return EXIT_ACTIONS_FAILED
        terminal.out(arn)
        terminal.err(f"restored {archived.source} as {arn}{restoring.note(archived, target, caller)}")
    return EXIT_OK
