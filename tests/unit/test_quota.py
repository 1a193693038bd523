"""tdgc.report.quota: the rate estimate against the truth of a family's whole history, and the per-family model."""

from __future__ import annotations

from array import array
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tdgc.model import Action, Decision, Revision, Status
from tdgc.report.quota import (
    MAX_SPAN,
    MIN_SPAN,
    QUOTA,
    WINDOW,
    Bracket,
    FamilyQuota,
    Probe,
    Quotas,
    days_to_quota,
    estimate,
    registered_per_day,
)
from tests.helpers import NOW

DAYS = WINDOW / timedelta(days=1)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Probe], set[int]]:
    """A family's registrations (revision n registered at history[n-1], never earlier than n-1's) and which
    of them were described."""
    gaps = draw(st.lists(st.floats(min_value=0, max_value=20 * 24), min_size=1, max_size=80))  # hours
    ages, age = [], draw(st.floats(min_value=0, max_value=400 * 24))
    for gap in reversed(gaps):  # newest first, walking back in time
        ages.append(age)
        age += gap
    history = [Probe(n + 1, NOW - timedelta(hours=a)) for n, a in enumerate(reversed(ages))]
    described = draw(st.sets(st.integers(min_value=1, max_value=len(history))))
    return history, described


def _truth(history: list[Probe]) -> float:
    return sum(p.registered_at > NOW - WINDOW for p in history) / DAYS


def _proven(history: list[Probe], described: set[int]) -> tuple[float, float]:
    """The bounds on the rate that the described revisions prove, computed directly."""
    start, highest = NOW - WINDOW, len(history)
    before = [p.revision for p in history if p.revision in described and p.registered_at <= start]
    after = [p.revision for p in history if p.revision in described and p.registered_at > start]
    low, high = max(before, default=0), min(after, default=highest + 1) - 1
    return (highest - high) / DAYS, (highest - low) / DAYS


@settings(max_examples=300, deadline=None)
@given(histories())
def test_the_estimate_stays_within_what_the_probes_prove_and_so_does_the_truth(
    family: tuple[list[Probe], set[int]],
) -> None:
    history, described = family
    found = estimate([p for p in history if p.revision in described], len(history), NOW)
    least, most = _proven(history, described)
    assert least <= _truth(history) <= most
    if found is not None:
        assert least - 1e-9 <= found <= most + 1e-9
        assert abs(found - _truth(history)) <= most - least + 1e-9  # the documented bound
    if not described:
        assert found is None


@settings(max_examples=200, deadline=None)
@given(histories())
def test_neighbouring_probes_across_the_window_start_give_the_exact_rate(
    family: tuple[list[Probe], set[int]],
) -> None:
    history, _ = family
    start = NOW - WINDOW
    # Describe exactly the last revision before the window and the first inside it (where they exist).
    before = [p.revision for p in history if p.registered_at <= start][-1:]
    after = [p.revision for p in history if p.registered_at > start][:1]
    found = estimate([p for p in history if p.revision in {*before, *after}], len(history), NOW)
    if before or after == [1]:
        assert found is not None
        assert abs(found - _truth(history)) < 1e-9


def test_one_sided_anchors_are_used_only_within_their_spans() -> None:
    highest = 1_000
    recent = Bracket(NOW - WINDOW, after=Probe(900, NOW - MIN_SPAN / 2))
    assert registered_per_day(recent, highest, NOW) is None  # too short a span to extrapolate
    settled = Bracket(NOW - WINDOW, after=Probe(900, NOW - 2 * MIN_SPAN))
    assert registered_per_day(settled, highest, NOW) == (highest - 900) / (2 * MIN_SPAN / timedelta(days=1))
    old = Bracket(NOW - WINDOW, before=Probe(900, NOW - 2 * MAX_SPAN))
    assert registered_per_day(old, highest, NOW) is None  # a long average says little about the last month
    idle = Bracket(NOW - WINDOW, before=Probe(highest, NOW - 2 * MAX_SPAN))
    assert registered_per_day(idle, highest, NOW) == 0.0  # nothing since: exactly 0, however old the probe


def test_days_to_quota_is_null_when_the_family_is_not_growing() -> None:
    assert days_to_quota(1_000, None) is None
    assert days_to_quota(1_000, 0.0) is None
    assert days_to_quota(1_000, 10.0) == 100
    assert days_to_quota(0, 10.0) == 0


def _described(family: str, number: int, at: datetime) -> Decision:
    arn = f"arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:{number}"
    return Decision(Revision(arn, family, number, Status.INACTIVE, described=True, registered_at=at), Action.KEEP, "")


class _Listed:
    def __init__(self, *numbers: int) -> None:
        self.numbers = array("I", sorted(numbers, reverse=True))


def test_a_family_near_the_quota_is_flagged_and_the_closest_come_first() -> None:
    quotas = Quotas(NOW)
    near = QUOTA - 3_000
    quotas.seen("t", "busy", {Status.ACTIVE: _Listed(near), Status.INACTIVE: _Listed(near - 1, near - 2)})
    quotas.seen("t", "quiet", {Status.ACTIVE: _Listed(5), Status.INACTIVE: _Listed()})
    quotas.seen("t", "full", {Status.ACTIVE: _Listed(QUOTA), Status.INACTIVE: _Listed()})
    # Two described revisions either side of the window's start: 3,000 registered in a month, 100 a day.
    quotas.observe("t", [_described("busy", near - 3_000, NOW - WINDOW - timedelta(hours=1))])
    quotas.observe("t", [_described("busy", near - 2_990, NOW - WINDOW + timedelta(hours=1))])
    quotas.observe("other", [_described("busy", near - 1, NOW)])  # another target's family of that name
    ranked = quotas.settle()
    assert [q.family for q in ranked] == ["full", "busy", "quiet"]
    full, busy, quiet = ranked
    assert full.headroom == 0 and full.near_quota
    assert busy.per_day is not None and 99.6 <= busy.per_day <= 100.0
    assert busy.days_to_quota is not None and 30 <= busy.days_to_quota <= 31 and busy.near_quota
    assert quiet.per_day is None and quiet.days_to_quota is None and not quiet.near_quota
    assert set(busy.to_dict()) == {
        "target",
        "family",
        "revisions_held",
        "highest_revision",
        "quota_headroom",
        "registered_per_day",
        "days_to_quota",
    }
    assert busy.to_dict()["revisions_held"] == {"ACTIVE": 1, "INACTIVE": 2}


def test_without_a_moment_no_rate_is_given() -> None:
    quotas = Quotas(None)
    quotas.seen("t", "f", {Status.ACTIVE: _Listed(10)})
    assert [q.per_day for q in quotas.settle()] == [None]


def test_family_quota_headroom_counts_from_the_highest_number_not_the_count_held() -> None:
    q = FamilyQuota("t", "f", {Status.ACTIVE: 1}, 400_000, Bracket(NOW - WINDOW))
    assert q.headroom == 600_000
