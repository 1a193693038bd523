"""The options, each defined once, and the typed arguments they fill.

Two groups: the connection (`--region`, `--profile`, `--endpoint-url`, `--log-format`), which every command
that talks to AWS takes, and the run's (policy, targets, report, safety), which `plan` and `apply` share. Click
hands a command its values by name; `arguments` turns them into a frozen dataclass once, so no code after it
reads them by a string key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import click

from tdgc.collect.run import MAX_PARALLEL
from tdgc.durations import Duration, parse_duration
from tdgc.errors import UsageError
from tdgc.logs import LOG_FORMATS
from tdgc.policy import REFERENCE_SOURCES
from tdgc.report.writers import FORMATS

F = TypeVar("F", bound=Callable[..., Any])
A = TypeVar("A")


class DurationType(click.ParamType):  # type: ignore[type-arg]
    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Duration:
        if isinstance(value, Duration):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@dataclasses.dataclass(frozen=True)
class Connect:
    """Where to talk to AWS, and how to log: the connection group's values."""

    regions: tuple[str, ...]
    profile: str | None
    endpoint_url: str | None
    log_format: str

    def one_region(self, command: str) -> str | None:
        """The one region of a command that works in one, if given (default: the profile's or AWS_REGION)."""
        if len(self.regions) > 1:
            raise UsageError(f"{command} works in one region: give --region once")
        return self.regions[0] if self.regions else None


@dataclasses.dataclass(frozen=True)
class RunArguments:
    """What `plan` and `apply` were asked, as click parsed it (types checked, nothing looked up yet)."""

    connect: Connect
    policy_file: str | None
    config: str | None
    all_regions: bool
    role_arns: tuple[str, ...]
    role_file: str | None
    external_id: str | None
    output: str | None
    report_path: str | None
    archive_bucket_owner: str | None
    archive_kms_key: str | None
    verbose: bool
    families: tuple[str, ...]
    exclude_families: tuple[str, ...]
    keep_last: int | None
    deregister_after: Duration | None
    delete_after: str | None
    protect_tags: tuple[str, ...]
    rates: tuple[str, ...]
    skip_references: tuple[str, ...]
    terraform_state: tuple[str, ...]
    time_budget: Duration | None
    accept_incomplete_references: bool
    dry_run: bool
    parallel: int
    # apply's own: plan has none of them
    yes: bool = False
    archive: str | None = None
    max_actions: int | None = None
    plan_file: str | None = None


def arguments(cls: type[A], values: dict[str, Any]) -> A:
    """`cls` (a dataclass) from click's values: each of its fields taken out of `values` by name."""
    names = [f.name for f in dataclasses.fields(cls) if f.name in values]  # type: ignore[arg-type]
    return cls(**{name: values.pop(name) for name in names})


def connect_arguments(values: dict[str, Any]) -> Connect:
    """The connection group's arguments, the command's only `**values`; anything else there is a bug."""
    found = arguments(Connect, values)
    if values:
        raise TypeError(f"values no argument takes: {sorted(values)}")
    return found


def run_arguments(values: dict[str, Any]) -> RunArguments:
    """plan's and apply's arguments; a value no field takes, or a field no value fills, is a TypeError (a bug)."""
    connect = arguments(Connect, values)
    return RunArguments(connect, **values)


def _apply_all(f: F, options: list[Callable[[F], F]]) -> F:
    for option in reversed(options):
        f = option(f)
    return f


ONE_REGION_HELP = "The region to work in (default: the profile's or AWS_REGION)."


def connection_options(region_help: str = ONE_REGION_HELP) -> Callable[[F], F]:
    """--region, --profile, --endpoint-url and --log-format: the same on every command that talks to AWS."""
    return lambda f: _apply_all(
        f,
        [
            click.option("--region", "regions", multiple=True, metavar="REGION", help=region_help),
            click.option(
                "--profile", metavar="NAME", help="The AWS profile (default: AWS_PROFILE, else the default one)."
            ),
            click.option(
                "--endpoint-url",
                metavar="URL",
                help="Send every AWS call to this endpoint, e.g. a simulator (AWS_ENDPOINT_URL is honoured too).",
            ),
            click.option(
                "--log-format",
                type=click.Choice(LOG_FORMATS),
                default="console",
                show_default=True,
                help="Logs on stderr: console, for people, or json, one object a line for a log collector.",
            ),
        ],
    )


TARGETS_REGION_HELP = (
    "A region to work in (repeatable; default: the profile's or AWS_REGION). Each is a target of its own."
)


def run_options(f: F) -> F:
    """The options `plan` and `apply` share: the policy and its overrides, the targets, the report."""
    return _apply_all(
        f,
        [
            click.argument("policy_file", required=False, metavar="[POLICY]"),
            click.option("--config", metavar="FILE", help="The policy file (TOML); the same as POLICY."),
            connection_options(TARGETS_REGION_HELP),
            *_target_options(),
            *_report_options(),
            *_policy_options(),
            *_run_limits(),
            click.option(
                "--dry-run",
                is_flag=True,
                help="Only plan: change nothing (on apply, the same as `tdgc plan`; on plan, what it does anyway).",
            ),
        ],
    )


def _target_options() -> list[Callable[[F], F]]:
    return [
        click.option("--all-regions", is_flag=True, help="Every region enabled in each account, instead of --region."),
        click.option(
            "--role-arn",
            "role_arns",
            multiple=True,
            metavar="ARN",
            help="Assume this role and work in its account (repeatable: one target per role and region).",
        ),
        click.option(
            "--role-file",
            metavar="FILE",
            help="Roles to assume, one a line: [ACCOUNT_ID] ROLE_ARN [EXTERNAL_ID] (# starts a comment).",
        ),
        click.option("--external-id", metavar="ID", help="The external id for assuming the roles that name none."),
    ]


# One option, on apply and plan (for --archive and --report) and on restore (for the archives it reads).
BUCKET_OWNER: Callable[[Any], Any] = click.option(
    "--archive-bucket-owner",
    metavar="ACCOUNT",
    help="The account that must own the S3 buckets of --archive and --report, or of the archives restore reads "
    "(default: the caller's); another account's bucket of that name is refused.",
)


def _report_options() -> list[Callable[[F], F]]:
    return [
        click.option(
            "--output",
            type=click.Choice(FORMATS),
            help="The report's format on stdout (and in --report); default: table on a terminal, json otherwise.",
        ),
        click.option(
            "--report",
            "report_path",
            metavar="PATH|DIR|s3://BUCKET/PREFIX/",
            help="Also write the report there (a directory or prefix gets a timestamped name).",
        ),
        BUCKET_OWNER,
        click.option(
            "--archive-kms-key",
            metavar="KEY",
            help="Encrypt the archive and report in S3 with this KMS key (ARN, key id or alias/NAME); default: "
            "SSE-S3. Overrides [safety] archive_kms_key.",
        ),
        click.option(
            "-v", "--verbose", is_flag=True, help="Log every action (console logs show only warnings otherwise)."
        ),
    ]


def _policy_options() -> list[Callable[[F], F]]:
    return [
        click.option("--family", "families", multiple=True, metavar="GLOB", help="Only these families (repeatable)."),
        click.option(
            "--exclude-family",
            "exclude_families",
            multiple=True,
            metavar="GLOB",
            help="Never touch these families (repeatable).",
        ),
        click.option(
            "--keep-last",
            type=click.IntRange(min=0),
            metavar="N",
            help="Keep the newest N ACTIVE revisions of each family.",
        ),
        click.option(
            "--deregister-after",
            type=DurationType(),
            metavar="DURATION",
            help="Deregister an older ACTIVE revision only once registered this long ago (e.g. 90d).",
        ),
        click.option(
            "--delete-after",
            metavar="DURATION|never",
            help="Delete an INACTIVE revision once deregistered this long ago (e.g. 30d), or never.",
        ),
        click.option(
            "--protect-tag",
            "protect_tags",
            multiple=True,
            metavar="KEY[=VALUE]",
            help="Keep revisions with this tag (any value if none given; repeatable).",
        ),
    ]


def _run_limits() -> list[Callable[[F], F]]:
    return [
        click.option(
            "--rate",
            "rates",
            multiple=True,
            metavar="CATEGORY=PER_SECOND",
            help="Calls per second tdgc may use, by ECS throttling category (read, modify, delete, ...; repeatable).",
        ),
        click.option(
            "--skip-reference",
            "skip_references",
            multiple=True,
            metavar="SOURCE",
            help=f"Do not look for references in SOURCE: {', '.join(REFERENCE_SOURCES)}, or all (repeatable).",
        ),
        click.option(
            "--terraform-state",
            multiple=True,
            metavar="FILE|DIR|s3://BUCKET/KEY|PREFIX/",
            help="Keep every revision this Terraform / OpenTofu state names (read only, never locked; repeatable).",
        ),
        click.option(
            "--time-budget",
            type=DurationType(),
            metavar="DURATION",
            help="Stop early enough to end cleanly within this time (e.g. 14min); the next run goes on.",
        ),
        click.option(
            "--accept-incomplete-references",
            is_flag=True,
            help="Apply even where a reference source could not be read (at your own risk).",
        ),
        click.option(
            "--parallel",
            type=click.IntRange(1, MAX_PARALLEL),
            default=1,
            show_default=True,
            metavar="N",
            help="Targets (accounts times regions) at once, each paced by its own account's and region's limits "
            "(e.g. --parallel 8 with --role-file).",
        ),
    ]


def apply_options(f: F) -> F:
    """apply's own options, on top of `run_options`."""
    return _apply_all(
        f,
        [
            click.option(
                "--yes", is_flag=True, help="Do not ask: needed where no one can answer (no terminal: cron, CI)."
            ),
            click.option(
                "--archive",
                metavar="DIR|s3://BUCKET/PREFIX",
                help="Write each revision's full description here before deleting it (`tdgc restore` reads it).",
            ),
            click.option(
                "--max-actions",
                type=click.IntRange(min=1),
                metavar="N",
                help="Act on at most N revisions; the rest is deferred to the next run.",
            ),
            click.option(
                "--plan",
                "plan_file",
                metavar="FILE",
                help="A `tdgc plan --output json` report: refuse (exit 3) unless the plan now is the same.",
            ),
        ],
    )


def store_option(f: F) -> F:
    return click.option(
        "--store",
        default="tags",
        show_default=True,
        metavar="tags|dynamodb://TABLE",
        help="Where content hashes are found again: tags on the revisions, or a DynamoDB table.",
    )(f)
