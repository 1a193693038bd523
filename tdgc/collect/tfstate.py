"""Terraform and OpenTofu state: which task-definition revisions a state names (docs/design.md §2).

terraform-provider-aws takes a revision that is INACTIVE or deleted for gone: the next `terraform apply`
registers it again and moves the service onto the copy, a deploy nobody planned. So every revision a state
names is in use. A state is read, never written and never locked. One that cannot be read or parsed fails
the source closed: `StateError`.

`names_in` is pure (a state document in, references out). `States` reads the locations: local files and
directories, `s3://BUCKET/KEY`, and `s3://BUCKET/PREFIX/` (every `*.tfstate` under it, and the workspaces'
copies under `env:/WORKSPACE/PREFIX`, where the S3 backend keeps them). It remembers each object's ETag, so a
refresh, or the next region, downloads only what changed.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions

from tdgc.aws.connection import Connection
from tdgc.aws.errors import error_code, error_text
from tdgc.aws.pacing import unpaced
from tdgc.aws.s3url import is_s3, s3_location
from tdgc.errors import UsageError

FORMAT_VERSION = 4  # Terraform 0.12 and later, and every OpenTofu
WORKSPACES = "env:/"  # the S3 backend's default workspace_key_prefix
# A task-definition ARN anywhere in a string: an attribute, or JSON inside one (a state machine definition).
_ARN = re.compile(r"arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition/[A-Za-z0-9_-]{1,255}(?::\d+)?")
_ANY_ARN_REGION = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:([a-z0-9-]+):")


class StateError(Exception):
    """A state that cannot be read or understood: the source fails closed."""


@dataclass(frozen=True, slots=True)
class Named:
    """One revision a state names, and where: `reference` is an ARN, FAMILY:REVISION or FAMILY."""

    reference: str
    address: str  # module.app.aws_ecs_service.web["blue"]
    region: str | None  # for a reference without an ARN: the region the resource lives in, if it says


def names_in(document: Any, where: str) -> list[Named]:
    """Every task-definition revision a state document (parsed JSON) names, at any module depth."""
    if not isinstance(document, dict):
        raise StateError(f"{where}: not a Terraform state (expected a JSON object)")
    if "encrypted_data" in document:
        raise StateError(f"{where}: encrypted (OpenTofu state encryption); tdgc cannot read it")
    version = document.get("version")
    if version != FORMAT_VERSION:
        raise StateError(f"{where}: state format version {version!r}, tdgc reads version {FORMAT_VERSION}")
    resources = document.get("resources", [])
    if not isinstance(resources, list):
        raise StateError(f"{where}: `resources` is not a list")
    found: list[Named] = []
    for resource in resources:
        if not isinstance(resource, dict) or not isinstance(resource.get("instances", []), list):
            raise StateError(f"{where}: a resource is not in the version {FORMAT_VERSION} shape")
        for instance in resource.get("instances", []):
            if not isinstance(instance, dict):
                raise StateError(f"{where}: an instance is not in the version {FORMAT_VERSION} shape")
            attributes = instance.get("attributes")
            if not isinstance(attributes, dict):
                continue  # an instance with only `attributes_flat` (a very old one) or none: nothing to name
            address = _address(resource, instance)
            found += _named(resource.get("type"), attributes, address)
    for name, output in (document.get("outputs") or {}).items():
        found += [Named(arn, f"output.{name}", None) for arn in _arns(output)]
    return found


def _address(resource: dict[str, Any], instance: dict[str, Any]) -> str:
    parts = [
        resource.get("module"),
        "data" if resource.get("mode") == "data" else None,
        resource.get("type"),
        resource.get("name"),
    ]
    address = ".".join(str(p) for p in parts if p)
    key = instance.get("index_key")
    if key is not None:
        address += f"[{json.dumps(key)}]"
    if instance.get("deposed"):
        address += " (deposed)"
    return address


def _named(kind: Any, attributes: dict[str, Any], address: str) -> list[Named]:
    region = _region_of(attributes)
    # arn_without_revision only names the family: it is no use of the family's newest revision
    named = {key: value for key, value in attributes.items() if key != "arn_without_revision"}
    found = [Named(arn, address, None) for arn in _arns(named)]
    if kind == "aws_ecs_task_definition" and not attributes.get("arn"):
        base, revision = attributes.get("arn_without_revision"), attributes.get("revision")
        family = attributes.get("family")
        if isinstance(base, str) and base and revision is not None:
            found.append(Named(f"{base}:{revision}", address, None))
        elif isinstance(family, str) and family and revision is not None:
            found.append(Named(f"{family}:{revision}", address, region))
    if kind == "aws_ecs_service":
        task_definition = attributes.get("task_definition")
        if isinstance(task_definition, str) and task_definition and not task_definition.startswith("arn:"):
            found.append(Named(task_definition, address, region))  # FAMILY:REVISION, or FAMILY (newest ACTIVE)
    return found


def _arns(node: Any) -> Iterator[str]:
    """Every task-definition ARN in a value, at any depth, JSON held in strings included (a walk with its own
    stack: a state's depth is whatever its modules made it)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield from _ARN.findall(item)
        elif isinstance(item, dict):
            stack.extend(reversed(item.values()))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _region_of(attributes: dict[str, Any]) -> str | None:
    """The region a resource lives in, from its own ARNs (a service's id, its cluster)."""
    for key in ("arn", "id", "cluster", "region"):
        value = attributes.get(key)
        if key == "region" and isinstance(value, str) and value:
            return value
        found = _ANY_ARN_REGION.match(value) if isinstance(value, str) else None
        if found and found.group(1):
            return found.group(1)
    return None


class States:
    """The states at some locations, read for each region's references (from the caller's account: a state
    bucket is the team's, not each member account's)."""

    def __init__(self, locations: Sequence[str], connection: Connection | None = None) -> None:
        for location in locations:  # all checked before the first AWS call
            if is_s3(location):
                s3_location(location, "terraform state")
            elif not Path(location).exists():
                raise UsageError(f"terraform state {location!r}: no such file or directory")
        self.locations = tuple(locations)
        self._connection = connection
        self._s3: Any = None
        self._seen: dict[tuple[str, str], tuple[str, list[Named]]] = {}  # (bucket, key) -> (ETag, names)
        self._lock = threading.Lock()  # regions of a run may read at once

    def read(self) -> list[tuple[Named, str]]:
        """(what is named, the state that names it) for every location; StateError if any cannot be read."""
        with self._lock:
            found: list[tuple[Named, str]] = []
            for location in self.locations:
                if is_s3(location):
                    found += self._read_s3(location)
                else:
                    found += _read_local(Path(location))
            return found

    def _client(self) -> Any:
        if self._s3 is None:
            if self._connection is None:
                raise UsageError("terraform state in S3 needs an AWS connection")
            self._s3 = self._connection.client("s3", unpaced())
        return self._s3

    def _read_s3(self, location: str) -> list[tuple[Named, str]]:
        bucket, key = s3_location(location, "terraform state")
        s3 = self._client()
        try:
            keys = self._state_keys(s3, bucket, key) if key.endswith("/") or not key else [key]
            if not keys:
                raise StateError(f"{location}: no *.tfstate there")
            found: list[tuple[Named, str]] = []
            for name in keys:
                found += [(n, f"s3://{bucket}/{name}") for n in self._object(s3, bucket, name)]
            return found
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise StateError(f"{location}: {error_text(exc)}") from None

    @staticmethod
    def _state_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
        """Every state under the prefix, and its workspaces' (`env:/NAME/PREFIX…`)."""
        keys = _listed(s3, bucket, prefix)
        if not prefix.startswith(WORKSPACES) and prefix:
            keys += [k for k in _listed(s3, bucket, WORKSPACES) if k.split("/", 2)[-1].startswith(prefix)]
        return sorted(set(keys))

    def _object(self, s3: Any, bucket: str, key: str) -> list[Named]:
        where = f"s3://{bucket}/{key}"
        seen = self._seen.get((bucket, key))
        try:
            answer = s3.get_object(Bucket=bucket, Key=key, **({"IfNoneMatch": seen[0]} if seen else {}))
        except botocore.exceptions.ClientError as exc:
            if seen and error_code(exc) in {"304", "NotModified"}:
                return seen[1]
            raise
        names = _parsed(answer["Body"].read(), where)
        self._seen[(bucket, key)] = (answer.get("ETag", ""), names)
        return names


def _listed(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".tfstate")]


def _read_local(path: Path) -> list[tuple[Named, str]]:
    files = sorted(path.rglob("*.tfstate")) if path.is_dir() else [path]
    if not files:
        raise StateError(f"{path}: no *.tfstate there")
    found: list[tuple[Named, str]] = []
    for file in files:
        try:
            body = file.read_bytes()
        except OSError as exc:
            raise StateError(f"{file}: cannot read ({exc.strerror})") from None
        found += [(n, str(file)) for n in _parsed(body, str(file))]
    return found


def _parsed(body: bytes, where: str) -> list[Named]:
    try:
        document = json.loads(body)
    except RecursionError:
        raise StateError(f"{where}: nested too deeply to read") from None
    except ValueError:
        raise StateError(f"{where}: not JSON") from None
    return names_in(document, where)
