"""S3 locations (`s3://BUCKET/KEY`, `s3://BUCKET/PREFIX/`): the one parser every option that takes one uses."""

from __future__ import annotations

import re

from tdgc.errors import UsageError

# Lenient on purpose: buckets made before 2018 in us-east-1 may hold capitals and underscores.
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{2,254}")


def is_s3(text: str) -> bool:
    """Whether a location means S3. Anything starting `s3:` does, so a mistyped `s3:/bucket` is refused by
    `s3_location` rather than taken for a local folder."""
    return text[:3].lower() == "s3:"


def s3_location(text: str, label: str, *, key_required: bool = False) -> tuple[str, str]:
    """(bucket, key) of `s3://BUCKET/KEY`: the one parser of S3 locations. The key may be a prefix, or empty
    unless `key_required`. `label` is how the error names where the text came from."""
    bucket, _, key = text[5:].partition("/") if text.startswith("s3://") else ("", "", "")
    if not bucket or (key_required and not key) or not _BUCKET.fullmatch(bucket):
        shape = "s3://BUCKET/KEY" if key_required else "s3://BUCKET/PREFIX"
        raise UsageError(f"{label}: expected {shape}, not {text!r}")
    return bucket, key
