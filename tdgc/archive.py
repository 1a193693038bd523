"""Archives: a revision's full description, written and checked before it is deleted.

A deleted revision's content is gone for good; the archive is what `tdgc restore` registers again.
One JSON document per revision: DIR/ACCOUNT/REGION/FAMILY/REVISION.json, or the same under
s3://BUCKET/PREFIX/ (the account and region keep many targets' archives apart).
The document is DescribeTaskDefinition's answer (`taskDefinition` and `tags`) plus a `tdgc` header.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import botocore.exceptions

from tdgc import TOOL, __version__
from tdgc.aws import Connection, check_bucket, error_text
from tdgc.errors import UsageError
from tdgc.model import parse_arn
from tdgc.pacing import Pacer
from tdgc.s3url import is_s3, s3_location

FORMAT = 1


class Archive(Protocol):
    def check(self) -> None:
        """Fail before any mutation if the archive cannot be written."""

    def write(self, arn: str, description: Mapping[str, Any], region: str) -> str:
        """Write the document, check it is there, and return where it is."""


def document(arn: str, description: Mapping[str, Any], region: str) -> bytes:
    body = {
        "tdgc": {"format": FORMAT, "tool": TOOL, "version": __version__, "region": region, "arn": arn,
                 "archived_at": datetime.now(UTC).isoformat()},
        **description,
    }  # fmt: skip
    return (json.dumps(body, indent=2, sort_keys=True, default=_json_default) + "\n").encode()


def relative_key(arn: str) -> str:
    family, revision = parse_arn(arn)
    parts = arn.split(":")
    region, account = (parts[3], parts[4]) if len(parts) > 5 else ("unknown-region", "unknown-account")
    return f"{account}/{region}/{family}/{revision}.json"


class DirectoryArchive:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root):
                pass
        except OSError as exc:
            raise UsageError(f"--archive {self.root}: cannot write there ({exc.strerror})") from None

    def write(self, arn: str, description: Mapping[str, Any], region: str) -> str:
        """Atomically and durably: temp file, fsync, rename, fsync the folder; then read back."""
        path = self.root / relative_key(arn)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = document(arn, description, region)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        if path.read_bytes() != body:
            raise OSError(f"{path} does not read back as written")
        return str(path)


class S3Archive:
    def __init__(self, url: str, target: Connection) -> None:
        bucket, prefix = s3_location(url, "--archive")
        self.url, self.bucket, self.prefix = url, bucket, prefix.strip("/")
        self._s3 = target.client("s3", Pacer({}))

    def _key(self, arn: str) -> str:
        return f"{self.prefix}/{relative_key(arn)}" if self.prefix else relative_key(arn)

    def check(self) -> None:
        check_bucket(self._s3, self.bucket, f"--archive {self.url}")

    def write(self, arn: str, description: Mapping[str, Any], region: str) -> str:
        body = document(arn, description, region)
        key = self._key(arn)
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
            head = self._s3.head_object(Bucket=self.bucket, Key=key)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise OSError(f"s3://{self.bucket}/{key}: {error_text(exc)}") from None
        if head.get("ContentLength") != len(body):
            raise OSError(f"s3://{self.bucket}/{key} is not there as written")
        return f"s3://{self.bucket}/{key}"


def open_archive(spec: str, target: Connection) -> Archive:
    if is_s3(spec):
        return S3Archive(spec, target)
    return DirectoryArchive(spec)


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot archive a {type(value).__name__}")
