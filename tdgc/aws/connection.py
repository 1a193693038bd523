"""AWS sessions and clients: credentials and region checked up front, retries and pacing set once."""

from __future__ import annotations

import functools
import os
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore.credentials
import botocore.exceptions
import botocore.session
from botocore.config import Config

from tdgc import __version__
from tdgc.aws.errors import error_text
from tdgc.aws.pacing import Pacer, unpaced
from tdgc.errors import UsageError

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

# botocore's standard retry mode: exponential backoff with jitter on throttles, 5xx and dropped
# connections. tdgc's Pacer keeps the call rate under the buckets; this handles what others spend.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 8},
    user_agent_extra=f"tdgc/{__version__}",
    connect_timeout=10,
    read_timeout=30,
)
# The first call to each target: few retries and a short connect timeout, so that an endpoint that cannot be
# reached says so in seconds (the standard mode's 8 attempts take most of a minute).
PROBE_CONFIG = CLIENT_CONFIG.merge(
    Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=5, read_timeout=15)
)
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_ACCOUNT = re.compile(r"[0-9]{12}")  # ASCII: \d would take other scripts' digits, which no account id has
# What CloudTrail shows in member accounts as the caller: tdgc and its version.
SESSION_NAME = f"tdgc-{__version__}"
ALL_REGIONS = "*"  # a Connection's region until the account's enabled regions are read


@dataclass(frozen=True)
class Role:
    """A role to assume in a member account."""

    arn: str
    external_id: str | None = None

    @property
    def account(self) -> str:
        found = _ROLE_ARN.match(self.arn)
        return found.group(1) if found else ""


@dataclass(frozen=True)
class Connection:
    """Where to talk to AWS: one session (the caller's, or a role assumed in a member account), one region."""

    session: boto3.Session
    region: str
    endpoint_url: str | None = None
    role: Role | None = None
    caller: boto3.Session | None = None  # with a role: the session that assumed it

    @property
    def account(self) -> str | None:
        return self.role.account if self.role else None

    @property
    def label(self) -> str:
        """How reports and logs name this target: `REGION`, or `ACCOUNT REGION` when a role is assumed."""
        region = "all regions" if self.region == ALL_REGIONS else self.region
        return f"{self.role.account} {region}" if self.role else region

    def as_caller(self) -> Connection:
        """The caller's own connection (no assumed role) in its own region: see `caller`."""
        return caller(self.caller or self.session, self.endpoint_url, self.region)

    def in_region(self, region: str) -> Connection:
        return Connection(self.session, region, self.endpoint_url, self.role, self.caller)

    def ecs(self, pacer: Pacer) -> ECSClient:
        client: ECSClient = self.client("ecs", pacer)
        return client

    def client(self, service: str, pacer: Pacer) -> Any:
        """A client for `service` in this region, with tdgc's retry mode and pacing."""
        client = self.session.client(
            service,  # type: ignore[call-overload]
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            config=CLIENT_CONFIG,
        )
        pacer.attach(client)
        return client


def caller(session: boto3.Session, endpoint_url: str | None, region: str | None = None) -> Connection:
    """The caller's own connection, where its buckets and usage table are, whichever regions it collects in: in
    its session's region (the Lambda's, the profile's), else `region`, else us-east-1."""
    fallback = region if region and region != ALL_REGIONS else "us-east-1"
    return Connection(session, session.region_name or fallback, endpoint_url)


def session(profile: str | None) -> boto3.Session:
    """The caller's session, with credentials, or a UsageError saying what is missing. No network call."""
    for name, value in os.environ.items():  # botocore reads these itself, and trips over a bad one later
        if name == "AWS_ENDPOINT_URL" or name.startswith("AWS_ENDPOINT_URL_"):
            check_endpoint(value, name)
    try:
        found = boto3.Session(profile_name=profile)
    except botocore.exceptions.ProfileNotFound:
        raise UsageError(f"AWS profile {profile!r} not found in the AWS config files") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise UsageError(f"AWS configuration: {exc}") from None
    try:
        credentials = found.get_credentials()
    except botocore.exceptions.BotoCoreError as exc:
        raise UsageError(f"AWS credentials: {exc}") from None
    if credentials is None:
        raise UsageError(
            "no AWS credentials found: set AWS_PROFILE (or --profile), AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or run where an IAM role is available"
        )
    return found


def connect(
    profile: str | None,
    regions: Sequence[str],
    endpoint_url: str | None,
    *,
    roles: Sequence[Role] = (),
    all_regions: bool = False,
) -> list[Connection]:
    """The run's targets: each account (the caller's, or each role's) in each region. No network call.

    With `all_regions`, each account gets one Connection in ALL_REGIONS, which the run expands to the
    regions enabled in that account (opt-in regions differ between accounts).
    """
    if endpoint_url is not None:
        check_endpoint(endpoint_url, "--endpoint-url")
    base = session(profile)
    if all_regions and regions:
        raise UsageError("give --region or --all-regions, not both")
    chosen: Sequence[str] = (ALL_REGIONS,) if all_regions else regions
    chosen = chosen or ((base.region_name,) if base.region_name else ())
    if not chosen:
        raise UsageError("no AWS region: pass --region, or set AWS_REGION / AWS_DEFAULT_REGION")
    known = _known_regions(base)
    for region in chosen:
        if region == ALL_REGIONS:
            continue
        if not _REGION.match(region) or (endpoint_url is None and known and region not in known):
            raise UsageError(f"unknown AWS region {region!r} (for example: us-east-1, eu-west-1)")
    sessions: list[tuple[boto3.Session, Role | None]] = [
        (assume(base, role, endpoint_url, chosen[0]), role) for role in roles
    ] or [(base, None)]
    return [
        Connection(s, region, endpoint_url, role, base if role else None)
        for s, role in sessions
        for region in dict.fromkeys(chosen)
    ]


def assume(base: boto3.Session, role: Role, endpoint_url: str | None, region: str) -> boto3.Session:
    """A session in a member account, through `role`. Lazy: the role is assumed on the first call, and again
    before its credentials expire (a long run outlives them), by botocore's own refreshing credentials."""
    extra: dict[str, Any] = {"RoleSessionName": SESSION_NAME}
    if role.external_id:
        extra["ExternalId"] = role.external_id
    sts_region = None if region == ALL_REGIONS else region  # the regional STS endpoint, where one is known
    fetcher = botocore.credentials.AssumeRoleCredentialFetcher(
        client_creator=functools.partial(
            base._session.create_client, region_name=sts_region, endpoint_url=endpoint_url, config=CLIENT_CONFIG
        ),
        source_credentials=base.get_credentials(),
        role_arn=role.arn,
        extra_args=extra,
    )
    core = botocore.session.Session()
    core._credentials = botocore.credentials.DeferredRefreshableCredentials(  # type: ignore[attr-defined]
        method="assume-role", refresh_using=fetcher.fetch_credentials
    )
    assumed = boto3.Session(botocore_session=core)
    # The caller's loader, with the service models it has parsed already: each account's clients would parse
    # them again (a tenth of a second of CPU a service), and many accounts at once would wait on that.
    core.register_component("data_loader", base._session.get_component("data_loader"))
    return assumed


def load_models(session: boto3.Session, services: Sequence[str], region: str) -> None:
    """Parse `services`' models (API, endpoint rules, paginators) into the loader every member session shares
    (`assume`), once, before targets run in parallel: its cache is not locked, so N threads creating their first
    clients at once would each parse every model again (seconds of CPU for 32 targets). No network call; what
    it cannot load, each target loads for itself, as it would without this."""
    for service in dict.fromkeys(services):
        try:
            client = session.client(service, region_name=region)  # type: ignore[call-overload]
            client.can_paginate(next(iter(client.meta.method_to_api_mapping)))  # loads the paginators too
        except botocore.exceptions.BotoCoreError:
            continue


def whoami(target: Connection) -> str:
    """The account the target's credentials act in (assuming its role, if it has one): the run's first call to
    a target, made to fail fast (PROBE_CONFIG) where the endpoint cannot be reached."""
    sts = target.session.client(
        "sts",
        region_name=target.region,
        endpoint_url=target.endpoint_url,
        config=PROBE_CONFIG,
    )
    account: str = sts.get_caller_identity()["Account"]
    return account


def check_endpoint(url: str, label: str) -> None:
    """An endpoint URL is http(s)://HOST[:PORT][/PATH]; anything else is refused before any call."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{label} {url!r}: expected http://HOST[:PORT] or https://HOST[:PORT]")


def enabled_regions(target: Connection) -> list[str]:
    """The regions enabled in the target's account (opt-in regions only where opted in), sorted."""

    ec2 = target.in_region(target.session.region_name or "us-east-1").client("ec2", unpaced())
    answer = ec2.describe_regions(AllRegions=False)
    return sorted(r["RegionName"] for r in answer.get("Regions", []))


def parse_roles(arns: Sequence[str], role_file: str | None, external_id: str | None) -> list[Role]:
    """Roles from --role-arn and --role-file, checked before any AWS call.

    A role file has one target a line: `ROLE_ARN`, `ACCOUNT_ID ROLE_ARN` (the account is checked against
    the ARN) or either followed by an external id for that account; `#` starts a comment.
    """
    if external_id is not None and not _EXTERNAL_ID.match(external_id):
        raise UsageError("--external-id: 2 to 1224 letters, digits or +=,.@:/-_")
    roles = [_role(arn, external_id, "--role-arn") for arn in arns]
    if role_file:
        try:
            lines = Path(role_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or exc
            raise UsageError(f"--role-file {role_file}: cannot read ({why})") from None
        for number, line in enumerate(lines, 1):
            fields = line.split("#", 1)[0].replace(",", " ").split()
            if not fields:
                continue
            where = f"{role_file}:{number}"
            account = fields.pop(0) if fields[0].isdigit() else None
            if not fields or len(fields) > 2:
                raise UsageError(f"{where}: expected [ACCOUNT_ID] ROLE_ARN [EXTERNAL_ID]")
            role = _role(fields[0], fields[1] if len(fields) == 2 else external_id, where)
            if account is not None and account != role.account:
                raise UsageError(f"{where}: account {account} does not match the role's account {role.account}")
            roles.append(role)
        if not roles:
            raise UsageError(f"--role-file {role_file}: no roles in it")
    if len({r.arn for r in roles}) != len(roles):
        raise UsageError("the same role is given twice")
    return roles


def _role(arn: str, external_id: str | None, where: str) -> Role:
    if not _ROLE_ARN.match(arn):
        raise UsageError(f"{where}: {arn!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)")
    if external_id is not None and not _EXTERNAL_ID.match(external_id):
        raise UsageError(f"{where}: the external id must be 2 to 1224 letters, digits or +=,.@:/-_")
    return Role(arn, external_id)


def _known_regions(session: boto3.Session) -> set[str]:
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ecs", partition_name=partition))
    return regions


def account_id(text: str, label: str) -> str:
    """An AWS account id as given for `label`: 12 ASCII digits, checked before any AWS call."""
    if not _ACCOUNT.fullmatch(text):
        raise UsageError(f"{label} {text!r}: expected an AWS account id, 12 digits")
    return text


def caller_account(target: Connection) -> str:
    """The account the credentials act in (STS GetCallerIdentity: a read, allowed to every principal)."""
    try:
        return whoami(target)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        why = error_text(exc)
        raise UsageError(f"cannot tell which account the credentials are in (GetCallerIdentity: {why})") from None
