"""The test oracle: one family decided whole, every revision described, as the pure core would decide it.

The scanner decides page by page, describing as little as it can (tdgc.collect.cutoff); tests hold it to this.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from tdgc.collect.decide import decide, needs_description
from tdgc.model import Decision, Revision, Status
from tdgc.policy import Rule


def decide_family(
    active_newest_first: Sequence[Revision],
    inactive: Iterable[Revision],
    *,
    rule: Rule,
    glob: str | None,
    now: datetime,
    references: Mapping[str, Sequence[str]] | None = None,
    usage: Mapping[str, datetime] | None = None,
) -> list[Decision]:
    """Every revision of one family decided; the scanner does the same page by page.

    An ACTIVE revision with no registration time is known to be registered no later than the nearest newer
    ACTIVE revision that has one (revision numbers follow registration order), among those a rule could
    act on: the ones kept by rank are never described, so they bound nothing.
    """
    refs, used = references or {}, usage or {}
    out = [
        decide(
            rev, rank=rank, rule=rule, glob=glob, now=now, in_use_by=refs.get(rev.arn, ()), last_used=used.get(rev.arn)
        )
        for rank, rev in enumerate(_bounded(active_newest_first, rule))
    ]
    out += [decide(rev, rank=None, rule=rule, glob=glob, now=now, in_use_by=refs.get(rev.arn, ())) for rev in inactive]
    return out


def _bounded(active_newest_first: Iterable[Revision], rule: Rule) -> Iterator[Revision]:
    newer: datetime | None = None
    for rank, rev in enumerate(active_newest_first):
        if rev.registered_at is None and newer is not None and rev.registered_before is None:
            rev = replace(rev, registered_before=newer)
        if needs_description(rule, Status.ACTIVE, rank):
            newer = rev.registered_at or newer
        yield rev
