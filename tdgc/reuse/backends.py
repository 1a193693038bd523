"""The store a `--store` value names."""

from __future__ import annotations

import re
from typing import Any

from tdgc.aws.pacing import unpaced
from tdgc.errors import UsageError
from tdgc.reuse.dynamodb import DynamoStore
from tdgc.reuse.store import Store
from tdgc.reuse.tags import TagStore


def open_store(spec: str, target: Any, *, create: bool = True) -> Store:
    """`tags`, or `dynamodb://TABLE` (created on first use unless `create` is False), on the target's
    connection (a tdgc.aws.connection.Connection)."""
    if spec == "tags":
        return TagStore(target.ecs(unpaced()))
    table = spec.removeprefix("dynamodb://")
    if not spec.startswith("dynamodb://") or not re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", table):
        raise UsageError(f"--store {spec!r}: expected tags or dynamodb://TABLE")
    return DynamoStore(target.client("dynamodb", unpaced()), table, create_missing=create)
