"""Restore: register archived task-definition content again, as a new revision of its family.

Every archive is read and checked before anything is registered, so a bad file changes nothing. The same
reading serves `tdgc register`, which also takes RegisterTaskDefinition's arguments as they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions

from tdgc.aws import Connection, error_text
from tdgc.errors import UsageError
from tdgc.pacing import Pacer
from tdgc.reuse import described_fields, register_fields
from tdgc.s3url import is_s3, s3_location


@dataclass(frozen=True)
class Archived:
    source: str
    family: str
    region: str | None
    arguments: dict[str, Any]  # RegisterTaskDefinition's arguments, tags included


def load(source: str, s3: Any = None, *, request: bool = False) -> Archived:
    """Read and check one archive (a file, or s3://bucket/key with an S3 client given); see `parse`."""
    text = _read(source, s3)
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{source}: not JSON ({exc})") from None
    return parse(doc, source, request=request)


def parse(doc: Any, source: str, *, request: bool = False) -> Archived:
    """An archive (or a DescribeTaskDefinition answer: `taskDefinition` and `tags`); with `request`, also
    RegisterTaskDefinition's arguments as they are (`family`, `containerDefinitions`, ... at the top)."""
    if request and isinstance(doc, dict) and "taskDefinition" not in doc:
        doc = {"taskDefinition": doc, "tags": doc.get("tags", [])}
    if not isinstance(doc, dict) or not isinstance(doc.get("taskDefinition"), dict):
        what = "a task definition (no family, no taskDefinition)" if request else "a tdgc archive"
        raise UsageError(f"{source}: not {what}" + ("" if request else " (no taskDefinition object)"))
    td = doc["taskDefinition"]
    unknown = sorted(set(td) - register_fields() - described_fields())
    if request and unknown:  # a typo would otherwise register, and hash, as if it were absent
        raise UsageError(f"{source}: not a task-definition field: {unknown[0]}")
    family = td.get("family")
    if not isinstance(family, str) or not family:
        raise UsageError(f"{source}: taskDefinition.family is missing")
    containers = td.get("containerDefinitions")
    if not isinstance(containers, list) or not containers or not all(isinstance(c, dict) for c in containers):
        raise UsageError(f"{source}: taskDefinition.containerDefinitions must be a non-empty list of objects")
    arguments = {k: v for k, v in td.items() if k in register_fields() and k != "tags"}
    tags = doc.get("tags", [])
    if not isinstance(tags, list) or not all(
        isinstance(t, dict) and isinstance(t.get("key"), str) and isinstance(t.get("value", ""), str) for t in tags
    ):
        raise UsageError(f"{source}: tags must be a list of {{key, value}} objects")
    if tags:
        arguments["tags"] = tags
    header = doc.get("tdgc")
    region = header.get("region") if isinstance(header, dict) and isinstance(header.get("region"), str) else None
    return Archived(source, family, region, arguments)


def register(archived: Archived, target: Connection, pacer: Pacer) -> str:
    """Register the archived content; return the new revision's ARN."""
    ecs = target.ecs(pacer)
    try:
        answer = ecs.register_task_definition(**archived.arguments)
    except botocore.exceptions.ParamValidationError as exc:
        raise UsageError(f"{archived.source}: ECS would refuse it: {str(exc).splitlines()[-1].strip()}") from None
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise UsageError(f"{archived.source}: register failed: {error_text(exc)}") from None
    return str(answer["taskDefinition"]["taskDefinitionArn"])


def _read(source: str, s3: Any) -> str:
    if is_s3(source):
        bucket, key = s3_location(source, "archive", key_required=True)
        try:
            body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise UsageError(f"{source}: cannot read ({error_text(exc)})") from None
    else:
        try:
            body = Path(source).read_bytes()
        except FileNotFoundError:
            raise UsageError(f"{source}: no such file") from None
        except IsADirectoryError:
            raise UsageError(f"{source}: is a directory; name the archive files") from None
        except OSError as exc:
            raise UsageError(f"{source}: cannot read ({exc.strerror})") from None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{source}: not UTF-8 text") from None
