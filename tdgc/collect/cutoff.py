"""One family's decisions, reading as little as possible.

Keep-last needs no describe: revision numbers order the list. An age rule needs timestamps, but
`registeredAt` never decreases as the revision number grows, so the revision where a family crosses an age
cut-off is found by a search (galloping from the newest candidate, then bisecting: at most about 2·log2(n)
describes, often one), and every revision on the young side is decided without being described. For
deletion, `deregisteredAt >= registeredAt`: a revision registered after the cut-off cannot have been
INACTIVE that long. An ACTIVE revision older than the boundary is past a deregistration cut-off without its
own describe (unless a tag could protect it). What remains described is what is deleted (its description is
what the archive keeps), what a tag may protect, and the search's probes, each described once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import datetime

from tdgc.aws.ecs import PAGE_SIZE
from tdgc.collect.decide import decide, needs_description, ranks_kept
from tdgc.collect.references import References
from tdgc.collect.scan import STATUSES, RevisionList, Scanner
from tdgc.model import Decision, Revision, Status
from tdgc.policy import Policy, Rule

# How many decisions are handed on at a time. ACTIVE pages start small and double up to a listing page: the
# lanes start on a family's first deregistrations after a few describes rather than a hundred, and are fed
# while the rest is described (each deregistration is a call of its own, so small pages cost no call). INACTIVE
# pages stay whole: deletes go ten to a call within a page, and smaller pages would split the batches
# (docs/performance.md: what an organisation at once measured).
FIRST_PAGE = 10


def _page_sizes(status: Status) -> Iterator[int]:
    size = FIRST_PAGE if status is Status.ACTIVE else PAGE_SIZE
    while True:
        yield size
        size = min(2 * size, PAGE_SIZE)


def decide_pages(
    scanner: Scanner,
    policy: Policy,
    family: str,
    now: datetime,
    refs: References | None = None,
    lists: Mapping[Status, RevisionList] | None = None,
    usage: Mapping[str, datetime] | None = None,
) -> Iterator[list[Decision]]:
    """The family's decisions, a page at a time: INACTIVE revisions first, then ACTIVE newest first.

    `lists` are the family's revisions as the scanner listed them; without them they are listed here. Both
    are listed before any decision, so what this run deregisters is not listed again as INACTIVE. `usage`
    is each revision's last use (ARN -> time) where the usage store knows it.
    """
    rule, glob = policy.rule_for(family)
    lists = lists or scanner.family_lists(family)
    for status in STATUSES:
        reader = _Reader(scanner, rule, status, lists[status], now, refs or References())
        start, sizes = 0, _page_sizes(status)
        while start < len(reader.revisions):
            end = min(start + next(sizes), len(reader.revisions))
            decisions = []
            for index in range(start, end):
                found = reader.revision(index)
                if found is not None:
                    rev, in_use = found
                    rank = index if status is Status.ACTIVE else None
                    last_used = usage.get(rev.arn) if usage else None
                    decisions.append(
                        decide(rev, rank=rank, rule=rule, glob=glob, now=now, in_use_by=in_use, last_used=last_used)
                    )
            yield decisions
            start = end


class _Reader:
    """Builds each revision of one status with the least describing its decision allows."""

    def __init__(
        self, scanner: Scanner, rule: Rule, status: Status, revisions: RevisionList, now: datetime, refs: References
    ) -> None:
        self.scanner, self.rule, self.status, self.revisions, self.refs = scanner, rule, status, revisions, refs
        # The search's probes (about 2·log2(n)), kept for the whole family so none is described twice; other
        # descriptions are not kept beyond their page, so memory does not grow with the family.
        self._described: dict[int, Revision | None] = {}
        limit = rule.delete_after if status is Status.INACTIVE else rule.deregister_after
        self.cutoff = limit.before(now) if limit is not None and not rule.exclude else None
        # Indexes below `first` are never acted on whatever their age (INACTIVE: none; ACTIVE: kept by rank).
        self.first = 0 if status is Status.INACTIVE else ranks_kept(rule)
        self.boundary = self._search() if self.cutoff is not None else None

    def revision(self, index: int) -> tuple[Revision, tuple[str, ...]] | None:
        arn, family, number = self.revisions.arn(index), self.revisions.family, self.revisions.numbers[index]
        in_use = self.refs.uses(family, number, newest_active=self.status is Status.ACTIVE and index == 0)
        rank = index if self.status is Status.ACTIVE else None
        if in_use or not needs_description(self.rule, self.status, rank):
            return Revision(arn, family, number, self.status), in_use
        before = self._registered_before(index)
        if self.boundary is not None and index not in self._described:
            inferred = self._inferred(index, Revision(arn, family, number, self.status), before)
            if inferred is not None:
                return inferred, in_use
        rev = self._described[index] if index in self._described else self._fetch(index)
        if rev is not None and rev.registered_at is None and before is not None:
            rev = replace(rev, registered_before=before)  # ECS recorded no time; its position tells
        return (rev, in_use) if rev is not None else None

    def _registered_before(self, index: int) -> datetime | None:
        """For an ACTIVE revision older than the boundary: the boundary's registration time, an upper bound."""
        if self.status is not Status.ACTIVE or self.boundary is None or index <= self.boundary:
            return None
        probe = self._described.get(self.boundary)
        return probe.registered_at if probe is not None else None

    def _inferred(self, index: int, bare: Revision, before: datetime | None) -> Revision | None:
        """A revision decided from the boundary's probes alone; None: it must be described.

        The young side: registered after the boundary's newer neighbour, so kept whatever its description
        says. The old side, ACTIVE only and only where no tag can protect it: registered before the boundary,
        so deregistered. INACTIVE ones there are described, since deletion goes by `deregisteredAt`.
        """
        assert self.boundary is not None
        if index < self.boundary:
            newer = self._described.get(self.boundary - 1)
            if newer is None or newer.registered_at is None:
                return None
            return replace(bare, registered_after=newer.registered_at)
        if before is not None and not self.rule.protect_tags:
            return replace(bare, registered_before=before)
        return None

    def _fetch(self, index: int) -> Revision | None:
        return self.scanner.revision(self.revisions.arn(index), self.status, describe=True)

    def _probe(self, index: int) -> Revision | None:
        if index not in self._described:
            self._described[index] = self._fetch(index)
        return self._described[index]

    def _search(self) -> int:
        """The first index at or after `first` registered at or before the cut-off (or with no timestamp).

        Galloping, then bisecting: the cut-off usually lies a few revisions past those kept by rank, so
        probing `first`, `first`+1, `first`+3, ... finds it in about 2·log2(distance) describes, and often
        in one (every candidate old), where plain bisection always takes log2(n).
        """
        low, high, step = self.first, len(self.revisions), 1
        while low < high:
            probe = min(low + step - 1, high - 1)
            if not self._young(probe):
                high = probe
                break
            low, step = probe + 1, step * 2
        while low < high:
            middle = (low + high) // 2
            if self._young(middle):
                low = middle + 1  # the cut-off is further on (older revisions sit at higher indexes)
            else:
                high = middle
        return low

    def _young(self, index: int) -> bool:
        assert self.cutoff is not None
        probe = self._probe(index)
        registered = probe.registered_at if probe is not None else None
        return registered is not None and registered > self.cutoff
