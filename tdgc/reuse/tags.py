"""The tags store: the hash as a tag on the revision (what it cannot do: tdgc.reuse.store)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import botocore.exceptions

from tdgc.aws.errors import error_code
from tdgc.reuse.store import HASH_TAG, Claim, Record

# ---- tags on the revisions ---------------------------------------------------------------------------------


class TagStore:
    """The hash as a tag on the revision, found again among the family's newest ACTIVE revisions.

    No table, no use count, no agreement between concurrent callers (see the module docstring)."""

    def __init__(self, ecs_client: Any, *, lookback: int = 20) -> None:
        if lookback < 1:
            raise ValueError("lookback must be at least 1")
        self.ecs = ecs_client
        self.lookback = lookback

    def lookup(self, digest: str, family: str) -> Record | None:
        for record in self._tagged(family):
            if record.hash == digest:
                return record
        return None

    def claim(self, digest: str, family: str, *, stale_arn: str | None = None) -> Claim | Record:
        return Claim(digest, family, owner="", lease_until=float("inf"))

    def fill(self, claim: Claim, arn: str, revision: int, *, now: datetime, who: str, how: str) -> Record:
        return Record(claim.hash, claim.family, arn, revision, first_registered=now)

    def release(self, claim: Claim) -> None:
        pass

    def record_use(self, record: Record, *, now: datetime, who: str, how: str) -> Record:
        return record  # nowhere to count it

    def records(self) -> Iterator[Record]:
        """Each ACTIVE family's tagged revisions within the look-back: about families x (1 + lookback) reads."""
        for page in self.ecs.get_paginator("list_task_definition_families").paginate(status="ACTIVE"):
            for family in page.get("families", []):
                yield from self._tagged(family)

    def _tagged(self, family: str) -> Iterator[Record]:
        """The family's newest ACTIVE revisions that carry a hash tag, newest first, within the look-back."""
        for arn in self._newest(family):
            try:
                answer = self.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) == "ClientException":  # deleted since it was listed
                    continue
                raise
            td, tags = answer["taskDefinition"], answer.get("tags", [])
            digest = next((t.get("value") for t in tags if t.get("key") == HASH_TAG), None)
            if digest and td.get("status") == "ACTIVE":
                registered = td.get("registeredAt")
                yield Record(
                    digest,
                    family,
                    str(td["taskDefinitionArn"]),
                    int(td["revision"]),
                    first_registered=registered if isinstance(registered, datetime) else None,
                    described={"taskDefinition": td, "tags": tags},
                )

    def _newest(self, family: str) -> Iterator[str]:
        pages = self.ecs.get_paginator("list_task_definitions").paginate(
            familyPrefix=family,
            status="ACTIVE",
            sort="DESC",
            PaginationConfig={"MaxItems": self.lookback, "PageSize": min(100, self.lookback)},
        )
        for page in pages:
            yield from page.get("taskDefinitionArns", [])
