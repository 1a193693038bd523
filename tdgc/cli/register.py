"""`tdgc register`: the ARN of an ACTIVE revision with this content, registering one only if none exists."""

from __future__ import annotations

import logging
from typing import Any

import botocore.exceptions
import click

from tdgc.aws.connection import connect
from tdgc.aws.errors import error_text
from tdgc.aws.pacing import Pacer
from tdgc.cli.options import connect_arguments, connection_options, store_option
from tdgc.cli.terminal import Terminal
from tdgc.errors import EXIT_OK, UsageError
from tdgc.logs import configure
from tdgc.policy import DEFAULT_RATES

EXAMPLE = """\b
Examples:
  ARN=$(tdgc register taskdef.json)                           (in a deploy script)
  tdgc register taskdef.json --store dynamodb://tdgc-register --region eu-west-1
"""


@click.command(epilog=EXAMPLE, short_help="Register a task definition, or reuse one with the same content.")
@click.argument("taskdef", metavar="TASKDEF.json")
@store_option
@connection_options()
@click.pass_obj
def register(terminal: Terminal, /, taskdef: str, store: str, **values: Any) -> int:
    """Print the ARN of an ACTIVE revision with this content, registering one only if none exists.

    TASKDEF.json holds RegisterTaskDefinition's arguments (as `aws ecs register-task-definition
    --cli-input-json` takes them), or a DescribeTaskDefinition answer. The ARN goes to stdout, what was done
    to stderr.
    """
    from tdgc.collect import restore as reading
    from tdgc.reuse.backends import open_store
    from tdgc.reuse.register import How, register_or_reuse

    given = connect_arguments(values)
    configure(given.log_format, level=logging.WARNING)
    region = given.one_region("register")
    args = reading.load(taskdef, request=True).arguments  # checked as RegisterTaskDefinition takes it
    target = connect(given.profile, (region,) if region else (), given.endpoint_url)[0]
    try:
        found = register_or_reuse(target.ecs(Pacer(dict(DEFAULT_RATES))), args, open_store(store, target))
    except botocore.exceptions.ClientError as exc:
        if exc.operation_name != "RegisterTaskDefinition":  # the store's: something may have been registered
            raise
        raise UsageError(f"{taskdef}: register failed: {error_text(exc)}") from None  # ECS refused it: none was
    terminal.out(found.arn)
    name = f"{found.family}:{found.revision}"
    said = {
        How.FOUND: f"reused {name}: same content ({found.hash[:19]}…)",
        How.JOINED: f"reused {name}: registered a moment ago by another caller",
        How.REGISTERED: f"registered {name}: new content ({found.hash[:19]}…)",
        How.REPLACED: f"registered {name}: the stored revision was deregistered or deleted since, or is not this "
        "content",
    }
    terminal.err(said[found.how])
    return EXIT_OK
