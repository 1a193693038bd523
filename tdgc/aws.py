"""AWS sessions and clients: credentials and region checked up front, retries and pacing set once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import botocore.exceptions
from botocore.config import Config

from tdgc import __version__
from tdgc.errors import UsageError
from tdgc.pacing import Pacer

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
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


@dataclass(frozen=True)
class Connection:
    """Where to talk to AWS: one session, one region."""

    session: boto3.Session
    region: str
    endpoint_url: str | None = None

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


def connect(profile: str | None, regions: tuple[str, ...], endpoint_url: str | None) -> list[Connection]:
    """One Connection per region, or a UsageError saying what is missing. Makes no network call."""
    try:
        session = boto3.Session(profile_name=profile)
    except botocore.exceptions.ProfileNotFound:
        raise UsageError(f"AWS profile {profile!r} not found in the AWS config files") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise UsageError(f"AWS configuration: {exc}") from None
    try:
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as exc:
        raise UsageError(f"AWS credentials: {exc}") from None
    if credentials is None:
        raise UsageError(
            "no AWS credentials found: set AWS_PROFILE (or --profile), AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or run where an IAM role is available"
        )
    chosen = regions or ((session.region_name,) if session.region_name else ())
    if not chosen:
        raise UsageError("no AWS region: pass --region, or set AWS_REGION / AWS_DEFAULT_REGION")
    known = _known_regions(session)
    for region in chosen:
        if not _REGION.match(region) or (endpoint_url is None and known and region not in known):
            raise UsageError(f"unknown AWS region {region!r} (for example: us-east-1, eu-west-1)")
    return [Connection(session, region, endpoint_url) for region in dict.fromkeys(chosen)]


def _known_regions(session: boto3.Session) -> set[str]:
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ecs", partition_name=partition))
    return regions


def error_text(exc: BaseException) -> str:
    """One line for an AWS error: its code and message."""
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".rstrip(": ")
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
