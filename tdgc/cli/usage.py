"""`tdgc usage`: what the register store knows, content by content."""

from __future__ import annotations

import json
import logging
from typing import Any

import botocore.exceptions
import click

from tdgc.aws.connection import connect
from tdgc.aws.errors import error_text
from tdgc.cli.options import connect_arguments, connection_options, store_option
from tdgc.cli.terminal import Terminal
from tdgc.errors import EXIT_OK, UsageError
from tdgc.logs import configure

EXAMPLE = """\b
Examples:
  tdgc usage
  tdgc usage --store dynamodb://tdgc-register --output json
"""


@click.command(epilog=EXAMPLE, short_help="What the register store knows: revisions, last use, uses.")
@store_option
@click.option(
    "--output",
    type=click.Choice(("table", "json")),
    default="table",
    show_default=True,
    help="A table for people, or a JSON list of the records.",
)
@connection_options()
@click.pass_obj
def usage(terminal: Terminal, /, store: str, output: str, **values: Any) -> int:
    """What the register store knows: each content's revision, first registration, last use and uses."""
    from tdgc.reuse.backends import open_store
    from tdgc.reuse.store import record_dict

    given = connect_arguments(values)
    configure(given.log_format, level=logging.WARNING)
    region = given.one_region("usage")
    target = connect(given.profile, (region,) if region else (), given.endpoint_url)[0]
    try:
        known = list(open_store(store, target, create=False).records())
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise UsageError(f"--store {store}: cannot read it ({error_text(exc)})") from None
    records = sorted(known, key=lambda r: (r.family, r.revision))
    if output == "json":
        terminal.out(json.dumps([record_dict(r) for r in records], indent=1))
        return EXIT_OK
    terminal.out(f"{'REVISION':<40} {'LAST USED':<20} {'USES':>8}  HASH")
    for r in records:
        last = r.last_used.strftime("%Y-%m-%d %H:%M") if r.last_used else "unknown"
        name = _fit(f"{r.family}:{r.revision}", 40)
        terminal.out(f"{name:<40} {last:<20} {r.use_count:>8,}  {r.hash[:19]}…")
    terminal.err(f"{len(records):,} contents in {store}")
    return EXIT_OK


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
