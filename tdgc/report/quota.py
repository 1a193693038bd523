"""How far each family is from ECS's quota of 1,000,000 revisions, and how fast it is closing.

Revision numbers are never reused and deregistered revisions count (docs/design.md §2), so the highest
revision number is what the quota is measured against: the headroom is 1,000,000 minus it. Whether deleted
revisions still count is not documented (§8): the count held is reported beside it, and the headroom uses the
highest number, the cautious reading (with deleted revisions not counting, the family has more room, never less).

The rate costs no call of its own. Revision numbers are given in registration order, one per registration, so
two facts bound how many revisions a family registered in the last 30 days: a revision described as registered
before the window's start says no more than `highest - its number` came since; one registered after it says at
least `highest - its number + 1` did. tdgc keeps, per family, the described revision nearest the window's
start on each side (the cut-off search's probes, and what was described to be deleted) and estimates from them:

- both sides known: the number at the window's start interpolated linearly between them (exact when they are
  neighbours; at worst off by the revisions between them, divided by the window's 30 days);
- only a later one: the rate since it, when it is at least MIN_SPAN old (exact where it is revision 1: the
  family began inside the window);
- only an earlier one: the rate since it, when it is at most MAX_SPAN old (a longer average says too little
  about the last 30 days; exactly 0 where nothing was registered since it);
- a rate since an anchor is kept within what the probes prove: at least `highest - later + 1`, at most
  `highest - earlier` (0 without one) registrations in the window;
- otherwise, or with no timestamp read (an excluded family, a rule with no age limit): null, not a guess.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from tdgc.model import Decision, Status

QUOTA = 1_000_000  # revisions a family may hold, and the highest number it can reach (not adjustable)
WINDOW = timedelta(days=30)  # registrations per day are measured over this
WARN_DAYS = 90  # a family this close to the quota at its rate is a warning
MIN_SPAN = timedelta(days=7)  # a rate measured over less than this is too noisy to extrapolate
MAX_SPAN = timedelta(days=90)  # a rate averaged over more than this says too little about the last 30 days
_DAY = timedelta(days=1)


class Listing(Protocol):
    """What the scan listed of one status: revision numbers (tdgc.collect.scan.RevisionList)."""

    @property
    def numbers(self) -> Sequence[int]: ...


@dataclass(frozen=True, slots=True)
class Probe:
    """A revision whose registeredAt tdgc read."""

    revision: int
    registered_at: datetime


@dataclass
class Bracket:
    """The described revisions nearest `start`, one registered at or before it, one after: all the estimate keeps."""

    start: datetime
    before: Probe | None = None
    after: Probe | None = None

    def observe(self, revision: int, registered_at: datetime) -> None:
        if registered_at <= self.start:
            if self.before is None or revision > self.before.revision:
                self.before = Probe(revision, registered_at)
        elif self.after is None or revision < self.after.revision:
            self.after = Probe(revision, registered_at)


def registered_per_day(bracket: Bracket, highest: int, now: datetime, window: timedelta = WINDOW) -> float | None:
    """Registrations per day over `window` before `now` (the bracket's start is `now - window`); None: unknown.

    The module's docstring says how. The result never leaves the bounds the two probes prove, nor does the
    truth: it is off by at most (revisions between the probes) / (days in the window).
    """
    before, after = bracket.before, bracket.after
    if highest <= 0 or (before is None and after is None):
        return None
    low = before.revision if before else 0  # the number reached by the window's start is at least this...
    high = min(after.revision - 1, highest) if after else highest  # ...and at most this
    if low > high:
        return None  # timestamps out of order: no estimate rather than a wrong one
    days = window / _DAY
    least, most = (highest - high) / days, (highest - low) / days  # what the probes prove
    if least == most:
        return most  # exact
    if before and after:
        share = (bracket.start - before.registered_at) / (after.registered_at - before.registered_at)
        guess = (highest - (before.revision + (after.revision - before.revision) * share)) / days
    else:
        anchor = before or after
        assert anchor is not None
        span = now - anchor.registered_at
        if not ((after is not None and span >= MIN_SPAN) or (before is not None and span <= MAX_SPAN)):
            return None
        guess = (highest - anchor.revision) / (span / _DAY)
    return min(most, max(least, guess))  # a burst inside a span is not spread beyond what the probes prove


def estimate(probes: Iterable[Probe], highest: int, now: datetime, window: timedelta = WINDOW) -> float | None:
    """`registered_per_day` from any number of probes."""
    bracket = Bracket(now - window)
    for p in probes:
        bracket.observe(p.revision, p.registered_at)
    return registered_per_day(bracket, highest, now, window)


def days_to_quota(headroom: int, per_day: float | None) -> int | None:
    """Whole days until the family's numbers reach the quota at this rate; None when it is not growing."""
    if per_day is None or per_day <= 0:
        return None
    return max(0, int(headroom / per_day))


@dataclass
class FamilyQuota:
    """One family of one target: what it holds and how close it is to the quota."""

    target: str
    family: str
    held: dict[Status, int]
    highest: int
    bracket: Bracket
    per_day: float | None = field(default=None, init=False)

    @property
    def headroom(self) -> int:
        return QUOTA - self.highest

    @property
    def days_to_quota(self) -> int | None:
        return days_to_quota(self.headroom, self.per_day)

    @property
    def near_quota(self) -> bool:
        """The warning: at the quota, or within WARN_DAYS of it at its rate."""
        days = self.days_to_quota
        return self.headroom <= 0 or (days is not None and days <= WARN_DAYS)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FamilyQuota:
        """One as a JSON report has it (`to_dict`), read back to be merged into another report."""
        held = {Status(s): int(n) for s, n in data.get("revisions_held", {}).items()}
        found = cls(data["target"], data["family"], held, int(data["highest_revision"]), Bracket(datetime.now(UTC)))
        rate = data.get("registered_per_day")
        found.per_day = None if rate is None else float(rate)
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "family": self.family,
            "revisions_held": {s.value: n for s, n in self.held.items()},
            "highest_revision": self.highest,
            "quota_headroom": self.headroom,
            "registered_per_day": None if self.per_day is None else float(f"{self.per_day:.4g}"),
            "days_to_quota": self.days_to_quota,
        }


class Quotas:
    """Every family a run saw, by target; the rates settled once the run is done."""

    def __init__(self, now: datetime | None) -> None:
        self.now = now  # None: the report has no moment to measure from, so no rate
        self._families: dict[tuple[str, str], FamilyQuota] = {}

    def seen(self, target: str, family: str, lists: Mapping[Status, Listing]) -> None:
        held = {s: len(lists[s].numbers) for s in Status if s in lists}
        highest = max((max(lst.numbers) for lst in lists.values() if lst.numbers), default=0)
        start = (self.now or datetime.now(UTC)) - WINDOW  # without a moment, never read: settle gives no rate
        self._families[(target, family)] = FamilyQuota(target, family, held, highest, Bracket(start))

    def observe(self, target: str, decisions: Iterable[Decision]) -> None:
        """The timestamps these decisions' revisions were described with."""
        for d in decisions:
            r = d.revision
            found = self._families.get((target, r.family))
            if found is not None and r.registered_at is not None and self.now is not None:
                found.bracket.observe(r.revision, r.registered_at)

    def settle(self) -> list[FamilyQuota]:
        """Every family, its rate estimated, the closest to the quota first."""
        for q in self._families.values():
            q.per_day = registered_per_day(q.bracket, q.highest, self.now) if self.now else None
        return closest(self._families.values())


def closest(families: Iterable[FamilyQuota], limit: int | None = None) -> list[FamilyQuota]:
    """The families closest to the quota first: least headroom, then fewest days left."""

    def rank(q: FamilyQuota) -> tuple[int, float, str, str]:
        days = q.days_to_quota
        return q.headroom, days if days is not None else math.inf, q.target, q.family

    ranked = sorted(families, key=rank)
    return ranked[:limit] if limit is not None else ranked


def quota_note(q: FamilyQuota) -> str:
    if q.headroom <= 0:
        return f"{q.target}: family {q.family} has reached the quota of {QUOTA:,} revisions: it cannot register more"
    return (
        f"{q.target}: family {q.family} reaches the quota of {QUOTA:,} revisions in about {q.days_to_quota:,} days "
        f"({q.headroom:,} revision numbers left, about {q.per_day:,.0f} registered a day)"
    )
