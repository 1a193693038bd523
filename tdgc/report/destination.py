"""Where a report goes: stdout, a file, or an S3 object, each written through the same report writers.

An S3 report is spooled to a local temporary file and uploaded when the run ends (boto3's managed transfer
splits a large one into parts), so a report of any size costs no memory. In S3 every call names the account
that must own the bucket, and the report is encrypted as archives are (`tdgc.aws.s3.S3Protection`).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

import botocore.exceptions

from tdgc.aws.errors import error_text
from tdgc.aws.s3 import S3Access, probe_prefix
from tdgc.aws.s3url import is_s3, s3_location
from tdgc.errors import ReportError, UsageError
from tdgc.report.model import Writer
from tdgc.report.writers import make_writer

EXTENSIONS = {"json": "json", "jsonl": "jsonl", "csv": "csv", "table": "txt", "markdown": "md", "html": "html"}


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
def writers(fmt: str, out: IO[str] | None, location: str | None, s3: S3Access | None) -> Iterator[list[Writer]]:
    """The report's writers in one format: to `out` (stdout, say) and to `location` (checked, then opened:
    `open_report`), either or both; what the entry points hand a run."""
    with contextlib.ExitStack() as stack:
        found = [make_writer(fmt, out)] if out is not None else []
        if location:
            check(location, s3)
            found.append(make_writer(fmt, stack.enter_context(open_report(location, s3))))
        yield found


@contextlib.contextmanager
def open_report(location: str, s3: S3Access | None = None) -> Iterator[IO[str]]:
    """A text stream for the report; an S3 location is uploaded on a clean exit (through `s3`).

    Opening fails with a UsageError (exit 2: nothing was changed yet); a failure once the run is under way
    (a write, the upload) with a ReportError (exit 1), since the run may have changed the account by then.
    A report that cannot be uploaded is kept in a local file, which the error names.
    """
    if not is_s3(location):
        try:
            file = open(location, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise UsageError(f"report {location}: cannot write ({exc.strerror})") from None
        try:
            with file:
                yield file
        except OSError as exc:
            raise ReportError(f"report {location}: cannot write ({exc.strerror or exc})") from None
        return
    if s3 is None:
        raise UsageError(f"report {location}: S3 needs an AWS connection")
    bucket, key = s3_location(location, "--report")
    with tempfile.TemporaryFile("w+b") as spool:
        text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
        yield text
        text.flush()
        text.detach()  # the spool stays open for the upload
        spool.seek(0)
        try:
            # Through a descriptor of its own: s3transfer closes what it uploads, even when the upload fails,
            # and the spool must stay open to be kept. ExtraArgs go with every part of a large upload too.
            with os.fdopen(os.dup(spool.fileno()), "rb") as upload:
                s3.client().upload_fileobj(upload, bucket, key, ExtraArgs=s3.protection.writes)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise ReportError(f"report {location}: cannot upload ({error_text(exc)}){_kept(spool, key)}") from None


def _kept(spool: IO[bytes], key: str) -> str:
    """Where the report that could not be uploaded is kept, as "; kept in PATH" (or "" if it cannot be)."""
    try:
        fd, path = tempfile.mkstemp(prefix="tdgc-report-", suffix=Path(key).suffix)
        with os.fdopen(fd, "wb") as out:
            spool.seek(0)
            shutil.copyfileobj(spool, out)
    except OSError:
        return ""
    return f"; kept in {path}"


def check(location: str, s3: S3Access | None) -> None:
    """Fail before the run if the report cannot be written there.

    In S3, a probe object is written beside it and read back (`tdgc.aws.probe_prefix`): the bucket may exist
    and still refuse PutObject. A file is opened (created) by `open_report` before the run, which proves
    more than any probe could; here only its folder is checked, to say so plainly.
    """
    if is_s3(location):
        if s3 is None:
            raise UsageError(f"report {location}: S3 needs an AWS connection")
        bucket, key = s3_location(location, "--report")
        probe_prefix(s3.client(), bucket, key.rpartition("/")[0], f"report {location}", s3.protection)
    elif not Path(location).parent.exists():
        raise UsageError(f"report {location}: no such directory {Path(location).parent}")
