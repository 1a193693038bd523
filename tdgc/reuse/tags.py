"""The tags store: the hash as a tag on the revision (what it cannot do: tdgc.reuse.store)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from tdgc.aws.ecs import TaskDefinitions
from tdgc.reuse.store import HASH_TAG, Record

# ---- tags on the revisions ---------------------------------------------------------------------------------


class TagStore:
    """The hash as a tag on the revision, found again among the family's newest ACTIVE revisions.

    No table, no use count, no agreement between concurrent callers (see the module docstring)."""

    def __init__(self, ecs_client: Any, *, lookback: int = 20) -> None:
        if lookback < 1:
            raise ValueError("lookback must be at least 1")
        self.definitions = TaskDefinitions(ecs_client)
        self.lookback = lookback

    def lookup(self, digest: str, family: str) -> Record | None:
        for record in self._tagged(family):
            if record.hash == digest:
                return record
        return None

    def record_use(self, record: Record, *, now: datetime, who: str, how: str) -> Record:
        return record  # nowhere to count it

    def records(self) -> Iterator[Record]:
        """Each ACTIVE family's tagged revisions within the look-back: about families x (1 + lookback) reads."""
        for families in self.definitions.family_pages("ACTIVE"):
            for family in families:
                yield from self._tagged(family)

    def _tagged(self, family: str) -> Iterator[Record]:
        """The family's newest ACTIVE revisions that carry a hash tag, newest first, within the look-back."""
        for arns in self.definitions.arn_pages("ACTIVE", family=family, newest_first=True, limit=self.lookback):
            for arn in arns:
                answer = self.definitions.describe(arn)
                if answer is None:  # deleted since it was listed
                    continue
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
