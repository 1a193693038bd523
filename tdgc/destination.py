"""Where a report goes: stdout, a file, or an S3 object, each written through the same report writers.

An S3 report is spooled to a local temporary file and uploaded when the run ends (boto3's managed transfer
splits a large one into parts), so a report of any size costs no memory.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

import botocore.exceptions

from tdgc.aws import Connection, check_bucket, error_text
from tdgc.errors import DeliveryError, UsageError
from tdgc.pacing import Pacer
from tdgc.s3url import is_s3, s3_location

EXTENSIONS = {"json": "json", "jsonl": "jsonl", "csv": "csv", "table": "txt", "markdown": "md"}


def report_name(mode: str, generated_at: datetime, fmt: str = "json") -> str:
    """`tdgc-plan-20261123T101500Z.json`: sorts by time, and says what it is."""
    return f"tdgc-{mode}-{generated_at.strftime('%Y%m%dT%H%M%SZ')}.{EXTENSIONS.get(fmt, fmt)}"


def resolve(spec: str, name: str) -> str:
    """Where a report goes: a `s3://BUCKET/PREFIX/` or an existing directory gets `name` inside; else as given."""
    if is_s3(spec):
        bucket, key = s3_location(spec, "--report")
        if not key or key.endswith("/"):
            key += name
        return f"s3://{bucket}/{key}"
    return str(Path(spec) / name) if Path(spec).is_dir() else spec


@contextlib.contextmanager
def open_report(location: str, connection: Connection | None = None) -> Iterator[IO[str]]:
    """A text stream for the report; an S3 location is uploaded on a clean exit (`connection` gives S3)."""
    if not is_s3(location):
        try:
            with open(location, "w", encoding="utf-8", newline="") as file:
                yield file
        except OSError as exc:
            raise UsageError(f"report {location}: cannot write ({exc.strerror})") from None
        return
    if connection is None:
        raise UsageError(f"report {location}: S3 needs an AWS connection")
    bucket, key = s3_location(location, "--report")
    with tempfile.TemporaryFile("w+b") as spool:
        text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
        yield text
        text.flush()
        text.detach()  # the spool stays open for the upload
        spool.seek(0)
        try:
            connection.client("s3", Pacer({})).upload_fileobj(spool, bucket, key)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise DeliveryError(f"report {location}: cannot upload ({error_text(exc)}); the run itself "
                                "finished, and what it changed stands") from None  # fmt: skip


def check(location: str, connection: Connection | None) -> None:
    """Fail before the run if the report cannot be written there (bucket missing or not ours)."""
    if is_s3(location):
        if connection is None:
            raise UsageError(f"report {location}: S3 needs an AWS connection")
        bucket = s3_location(location, "--report")[0]
        check_bucket(connection.client("s3", Pacer({})), bucket, f"report {location}")
    elif not Path(location).parent.exists():
        raise UsageError(f"report {location}: no such directory {Path(location).parent}")
