"""tdgc's own objects in S3 (archives, reports, write probes): the bucket's owner checked and the
encryption asked for on every call."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from tdgc.aws.connection import Connection, caller_account
from tdgc.aws.errors import error_text, http_status
from tdgc.aws.pacing import unpaced
from tdgc.errors import UsageError


@dataclass(frozen=True)
class S3Protection:
    """How tdgc writes and reads its own S3 objects (archives, reports, write probes), on every call.

    Archives hold whole task definitions, secrets in `environment` included. `owner` goes out as
    ExpectedBucketOwner, so that a bucket of that name owned by any other account (deleted and re-created by
    someone else, or a name mistyped) refuses the call (403) instead of receiving the object. `kms_key` asks
    for SSE-KMS under that key, else SSE-S3: sent with each write rather than left to the bucket's default
    encryption, which the bucket's owner may change at any time.
    """

    owner: str  # the account that must own the bucket
    kms_key: str | None = None  # a key ARN, key id or alias; None: SSE-S3 (AES256)

    @property
    def reads(self) -> dict[str, str]:
        """Arguments of HeadBucket, GetObject, HeadObject."""
        return {"ExpectedBucketOwner": self.owner}

    @property
    def writes(self) -> dict[str, str]:
        """Arguments of PutObject (and upload_fileobj's ExtraArgs)."""
        if self.kms_key:
            return {**self.reads, "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key}
        return {**self.reads, "ServerSideEncryption": "AES256"}


@dataclass(frozen=True)
class S3Access:
    """The caller's S3 (its own credentials, not a member account's), as tdgc's own objects are kept there."""

    connection: Connection
    protection: S3Protection

    def client(self) -> Any:
        """One client for every call (boto3's clients are thread-safe): making one costs more CPU than a
        GetObject, and a merge reads a report per target, a restore an archive per revision."""
        return self._client

    @functools.cached_property
    def _client(self) -> Any:
        return self.connection.client("s3", unpaced())


def s3_access(caller: Connection, owner: str | None, kms_key: str | None) -> S3Access:
    """S3 for tdgc's own objects: in buckets `owner` owns, or else the caller's own account (one
    GetCallerIdentity; entry points that know the account pass it as `owner`)."""
    return S3Access(caller, S3Protection(owner or caller_account(caller), kms_key))


def check_bucket(s3: Any, bucket: str, label: str, protection: S3Protection) -> None:
    """Fail before any change if the bucket cannot be used (missing, or not ours); `label` names the option."""
    try:
        s3.head_bucket(Bucket=bucket, **protection.reads)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        why = error_text(exc)
        if http_status(exc) == 403:  # S3 says no more for a bucket another account owns than for a denied one
            why += f"; denied, or not owned by account {protection.owner}"
        raise UsageError(f"{label}: cannot use the bucket ({why})") from None


# What a write probe holds: the same bytes from every run, so that runs probing at once each read back what
# they wrote whichever landed last. Never change it lightly: runs of two versions at once would each read the
# other's and stop.
PROBE_BODY = b"tdgc write probe: each run overwrites this object to prove it may write here; safe to delete\n"
PROBE_NAME = ".tdgc-probe"


def probe_prefix(s3: Any, bucket: str, prefix: str, label: str, protection: S3Protection) -> None:
    """Fail before any change unless an object can be written under `prefix` and read back.

    A fixed key overwritten by each run (PREFIX/.tdgc-probe), never a key of its own deleted afterwards:
    deleting would need s3:DeleteObject, which a role that writes archives is better without. HeadBucket
    first, so that a missing bucket, or one another account owns, says so. The probe is written as the real
    objects will be (the same owner and encryption), so that a KMS key that cannot be used fails here.
    """
    check_bucket(s3, bucket, label, protection)
    key = f"{prefix.strip('/')}/{PROBE_NAME}".lstrip("/")
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=PROBE_BODY, **protection.writes)
        body = s3.get_object(Bucket=bucket, Key=key, **protection.reads)["Body"].read()
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise UsageError(f"{label}: cannot write there ({error_text(exc)})") from None
    if body != PROBE_BODY:
        raise UsageError(f"{label}: s3://{bucket}/{key} does not read back as written")
