"""One family's decisions, reading as little as possible.

Keep-last needs no describe: revision numbers order the list. An age rule needs timestamps, but
`registeredAt` never decreases as the revision number grows, so the revision where a family crosses an age
cut-off is found by binary search (about log2(n) describes), and every revision on the young side is decided
without being described. For deletion, `deregisteredAt >= registeredAt`: a revision registered after the
cut-off cannot have been INACTIVE that long. What remains described is what is acted on (its tags may
protect it; its description is what the archive keeps) and the search's probes, each described once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime

from tdgc.decide import decide, needs_description
from tdgc.model import Decision, Revision, Status
from tdgc.policy import Policy, Rule
from tdgc.references import References
from tdgc.scan import PAGE_SIZE, RevisionList, Scanner, list_revisions


def decide_pages(
    scanner: Scanner, policy: Policy, family: str, now: datetime, refs: References | None = None
) -> Iterator[list[Decision]]:
    """The family's decisions, a page at a time: INACTIVE revisions first, then ACTIVE newest first.

    INACTIVE first, so that what this run deregisters is not listed again as INACTIVE in the same run.
    """
    rule, glob = policy.rule_for(family)
    for status in (Status.INACTIVE, Status.ACTIVE):
        reader = _Reader(scanner, rule, status, list_revisions(scanner, family, status), now, refs or References())
        for start in range(0, len(reader.revisions), PAGE_SIZE):
            decisions = []
            for index in range(start, min(start + PAGE_SIZE, len(reader.revisions))):
                found = reader.revision(index)
                if found is not None:
                    rev, in_use = found
                    rank = index if status is Status.ACTIVE else None
                    decisions.append(decide(rev, rank=rank, rule=rule, glob=glob, now=now, in_use_by=in_use))
            yield decisions


class _Reader:
    """Builds each revision of one status with the least describing its decision allows."""

    def __init__(self, scanner: Scanner, rule: Rule, status: Status, revisions: RevisionList, now: datetime,
                 refs: References) -> None:  # fmt: skip
        self.scanner, self.rule, self.status, self.revisions, self.refs = scanner, rule, status, revisions, refs
        # The search's probes (about 2·log2(n)), kept for the whole family so none is described twice; other
        # descriptions are not kept beyond their page, so memory does not grow with the family.
        self._described: dict[int, Revision | None] = {}
        limit = rule.delete_after if status is Status.INACTIVE else rule.deregister_after
        self.cutoff = limit.before(now) if limit is not None and not rule.exclude else None
        # Indexes below `first` are never acted on whatever their age (INACTIVE: none; ACTIVE: keep_last).
        self.first = 0 if status is Status.INACTIVE else rule.keep_last
        self.boundary = self._search() if self.cutoff is not None else None

    def revision(self, index: int) -> tuple[Revision, tuple[str, ...]] | None:
        arn, family, number = self.revisions.arn(index), self.revisions.family, self.revisions.numbers[index]
        in_use = self.refs.uses(family, number, newest_active=self.status is Status.ACTIVE and index == 0)
        rank = index if self.status is Status.ACTIVE else None
        if in_use or not needs_description(self.rule, self.status, rank):
            return Revision(arn, family, number, self.status), in_use
        if self.boundary is not None and index not in self._described:
            inferred = self._inferred(index, arn, family, number)
            if inferred is not None:
                return inferred, in_use
        rev = self._described[index] if index in self._described else self._fetch(index)
        return (rev, in_use) if rev is not None else None

    def _inferred(self, index: int, arn: str, family: str, number: int) -> Revision | None:
        """A young revision, known young from the boundary's newer neighbour; None: it must be described.

        Only the young side is inferred: its decision is keep whatever its own description would say. The
        old side is described, since a revision there may lack a timestamp (kept) or carry a tag (kept).
        """
        assert self.boundary is not None
        newer = self._described.get(self.boundary - 1) if index < self.boundary else None
        if newer is None or newer.registered_at is None:
            return None
        return replace(Revision(arn, family, number, self.status), registered_after=newer.registered_at)

    def _fetch(self, index: int) -> Revision | None:
        return self.scanner.revision(self.revisions.arn(index), self.status, describe=True)

    def _probe(self, index: int) -> Revision | None:
        if index not in self._described:
            self._described[index] = self._fetch(index)
        return self._described[index]

    def _search(self) -> int:
        """The first index at or after `first` registered at or before the cut-off (or with no timestamp)."""
        assert self.cutoff is not None
        low, high = self.first, len(self.revisions)
        while low < high:
            middle = (low + high) // 2
            probe = self._probe(middle)
            registered = probe.registered_at if probe is not None else None
            if registered is not None and registered > self.cutoff:
                low = middle + 1  # young: the cut-off is further on (older revisions sit at higher indexes)
            else:
                high = middle
        return low
