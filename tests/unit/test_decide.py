"""The decision core, alone: examples for each reason, properties for each invariant."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tdgc.collect.decide import decide, needs_description
from tdgc.durations import Duration
from tdgc.model import Action, Revision, Status
from tdgc.policy import Rule
from tests.helpers import NOW
from tests.oracle import decide_family


def rev(
    n: int,
    status: Status = Status.ACTIVE,
    *,
    registered: float | None = None,
    deregistered: float | None = None,
    tags: dict[str, str] | None = None,
    family: str = "web",
) -> Revision:
    return Revision(
        arn=f"arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:{n}",
        family=family,
        revision=n,
        status=status,
        described=True,
        registered_at=NOW - timedelta(days=registered) if registered is not None else None,
        deregistered_at=NOW - timedelta(days=deregistered) if deregistered is not None else None,
        tags=tags or {},
    )


def one(
    r: Revision, rule: Rule, rank: int | None = None, glob: str | None = None, refs: tuple[str, ...] = ()
) -> tuple[Action, str]:
    d = decide(r, rank=rank, rule=rule, glob=glob, now=NOW, in_use_by=refs)
    return d.action, d.reason


def test_reasons_people_can_read() -> None:
    rule = Rule(keep_last=5, deregister_after=Duration(days=30), delete_after=Duration(days=180))
    assert one(rev(9), rule, rank=4) == (Action.KEEP, "newest 5 kept")
    assert one(rev(9, registered=45), rule, rank=5) == (Action.DEREGISTER, "registered 45 days ago ≥ 30 days")
    assert one(rev(9, registered=12), rule, rank=5) == (Action.KEEP, "registered 12 days ago < 30 days")
    assert one(rev(9), rule, rank=5) == (Action.KEEP, "no registration time known; kept")
    inactive = Status.INACTIVE
    assert one(rev(3, inactive, registered=300, deregistered=212), rule) == (
        Action.DELETE,
        "deregistered 212 days ago ≥ 180 days",
    )
    assert one(rev(3, inactive, registered=30, deregistered=20), rule) == (
        Action.KEEP,
        "deregistered 20 days ago < 180 days",
    )
    assert one(rev(3, inactive, registered=None), rule) == (Action.KEEP, "no deregistration time known; kept")
    assert one(rev(3, inactive, deregistered=400, tags={"tdgc:keep": "true"}), rule) == (
        Action.KEEP,
        "protected by tag tdgc:keep=true",
    )
    assert one(rev(3, inactive, deregistered=400), Rule(exclude=True), glob="prod-*") == (
        Action.KEEP,
        "family excluded by rule prod-*",
    )
    assert one(rev(3, inactive, deregistered=400), Rule(delete_after=None)) == (
        Action.KEEP,
        "deletion disabled (delete_after = never)",
    )
    assert one(rev(9, registered=99), Rule(keep_last=2), rank=2) == (Action.DEREGISTER, "not among the newest 2 ACTIVE")
    assert one(rev(9, registered=400), rule, rank=7, refs=("service prod/web (deployment)", "task b/1")) == (
        Action.KEEP,
        "in use by service prod/web (deployment) (+1 more)",
    )


def test_age_boundary_is_inclusive() -> None:
    rule = Rule(keep_last=0, delete_after=Duration(days=7))
    assert one(rev(1, Status.INACTIVE, deregistered=7), rule)[0] is Action.DELETE
    assert one(rev(1, Status.INACTIVE, deregistered=6.999), rule)[0] is Action.KEEP


def test_calendar_months() -> None:
    rule = Rule(delete_after=Duration(months=6))
    moment = datetime(2026, 6, 1, tzinfo=UTC)
    just_old = Revision(
        "a:task-definition/f:1", "f", 1, Status.INACTIVE, True, deregistered_at=datetime(2025, 12, 1, tzinfo=UTC)
    )
    just_new = Revision(
        "a:task-definition/f:2", "f", 2, Status.INACTIVE, True, deregistered_at=datetime(2025, 12, 1, 0, 1, tzinfo=UTC)
    )
    assert decide(just_old, rank=None, rule=rule, glob=None, now=moment).action is Action.DELETE
    assert decide(just_new, rank=None, rule=rule, glob=None, now=moment).action is Action.KEEP


def test_newest_active_is_kept_even_with_keep_last_zero() -> None:
    rule = Rule(keep_last=0)
    assert one(rev(9), rule, rank=0) == (
        Action.KEEP,
        "newest ACTIVE kept: a family is never left without one (allow_deregister_all)",
    )
    assert one(rev(8), rule, rank=1)[0] is Action.DEREGISTER
    assert one(rev(9), Rule(keep_last=0, allow_deregister_all=True), rank=0)[0] is Action.DEREGISTER


def test_describe_only_where_a_decision_depends_on_it() -> None:
    keep_last_only = Rule(keep_last=3, protect_tags={}, delete_after=None)
    assert not any(needs_description(keep_last_only, Status.ACTIVE, r) for r in range(10))
    assert not needs_description(keep_last_only, Status.INACTIVE, None)
    aged = Rule(keep_last=3, deregister_after=Duration(days=1), protect_tags={})
    assert [needs_description(aged, Status.ACTIVE, r) for r in range(5)] == [False, False, False, True, True]
    assert needs_description(aged, Status.INACTIVE, None)
    assert not needs_description(Rule(exclude=True), Status.INACTIVE, None)


# ---- properties -----------------------------------------------------------------------------------------

durations = st.one_of(st.none(), st.integers(0, 400).map(lambda d: Duration(days=d)))
rules = st.builds(
    Rule,
    exclude=st.booleans(),
    keep_last=st.integers(0, 8),
    deregister_after=durations,
    delete_after=durations,
    protect_tags=st.sampled_from([{}, {"tdgc:keep": "true"}, {"pin": "*"}]),
    allow_deregister_all=st.booleans(),
    unused_for=durations,
)
maybe_days = st.one_of(st.none(), st.floats(0, 800, allow_nan=False))
tag_sets = st.sampled_from([{}, {"tdgc:keep": "true"}, {"tdgc:keep": "false"}, {"pin": "x"}])


@st.composite
def families(draw: st.DrawFn) -> tuple[list[Revision], list[Revision], dict[str, tuple[str, ...]]]:
    count = draw(st.integers(0, 25))
    statuses = draw(st.lists(st.sampled_from([Status.ACTIVE, Status.INACTIVE]), min_size=count, max_size=count))
    revisions = []
    for n, status in enumerate(statuses, 1):
        registered = draw(maybe_days)
        deregistered = draw(maybe_days) if status is Status.INACTIVE else None
        revisions.append(rev(n, status, registered=registered, deregistered=deregistered, tags=draw(tag_sets)))
    active = sorted((r for r in revisions if r.status is Status.ACTIVE), key=lambda r: -r.revision)
    inactive = [r for r in revisions if r.status is Status.INACTIVE]
    used = draw(st.sets(st.sampled_from([r.arn for r in revisions]))) if revisions else set()
    return active, inactive, {arn: ("service c/s",) for arn in used}


@settings(max_examples=400)
@given(rules, families())
def test_invariants_hold_for_any_policy_and_family(
    rule: Rule, family: tuple[list[Revision], list[Revision], dict[str, tuple[str, ...]]]
) -> None:
    active, inactive, refs = family
    decisions = decide_family(active, inactive, rule=rule, glob="x*", now=NOW, references=refs)
    assert [d.revision.arn for d in decisions] == [r.arn for r in (*active, *inactive)], "one each, in order"
    by_arn = {d.revision.arn: d for d in decisions}
    for d in decisions:
        assert d.reason and "\n" not in d.reason
        if d.revision.status is Status.ACTIVE:
            assert d.action is not Action.DELETE, "an ACTIVE revision is never deleted"
        else:
            assert d.action is not Action.DEREGISTER
        if d.revision.arn in refs:
            assert d.action is Action.KEEP, "a revision in use is kept"
        if rule.protected_by(d.revision.tags):
            assert d.action is Action.KEEP, "a tag-protected revision is kept"
        if rule.exclude:
            assert d.action is Action.KEEP, "an excluded family is never touched"
        if d.action is Action.DEREGISTER and rule.deregister_after is not None:
            registered = d.revision.registered_at or d.revision.registered_before  # before: a newer one's time
            assert registered is not None and registered <= rule.deregister_after.before(NOW)
        if d.action is Action.DELETE:
            assert rule.delete_after is not None and d.revision.deregistered_at is not None
            assert d.revision.deregistered_at <= rule.delete_after.before(NOW)
    for r in active[: max(rule.keep_last, 0 if rule.allow_deregister_all else 1)]:
        assert by_arn[r.arn].action is Action.KEEP, "the newest keep_last (and at least one) ACTIVE are kept"


@given(rules, families())
def test_what_needs_no_description_is_decided_without_it(
    rule: Rule, family: tuple[list[Revision], list[Revision], dict[str, tuple[str, ...]]]
) -> None:
    """Stripping what the scanner would not fetch changes no decision."""
    active, inactive, _ = family
    full = decide_family(active, inactive, rule=rule, glob="x*", now=NOW)
    stripped_active = [
        r if needs_description(rule, r.status, rank) else Revision(r.arn, r.family, r.revision, r.status)
        for rank, r in enumerate(active)
    ]
    stripped_inactive = [
        r if needs_description(rule, r.status, None) else Revision(r.arn, r.family, r.revision, r.status)
        for r in inactive
    ]
    lean = decide_family(stripped_active, stripped_inactive, rule=rule, glob="x*", now=NOW)
    assert [d.action for d in lean] == [d.action for d in full]


@settings(max_examples=300)
@given(rules, families(), st.data())
def test_unused_for_decides_what_the_store_knows_and_nothing_else(
    rule: Rule, family: tuple[list[Revision], list[Revision], dict[str, tuple[str, ...]]], data: st.DataObject
) -> None:
    active, inactive, refs = family
    usage = {
        r.arn: NOW - timedelta(days=data.draw(st.floats(0, 400, allow_nan=False)))
        for r in (*active, *inactive)
        if data.draw(st.booleans())
    }
    with_use = decide_family(active, inactive, rule=rule, glob="x*", now=NOW, references=refs, usage=usage)
    without = decide_family(active, inactive, rule=rule, glob="x*", now=NOW, references=refs)
    kept_by_rank = {r.arn for r in active[: max(rule.keep_last, 0 if rule.allow_deregister_all else 1)]}
    for d, base in zip(with_use, without, strict=True):
        arn = d.revision.arn
        by_use = d.reason.startswith("last used")
        if rule.unused_for is None or arn not in usage or d.revision.status is not Status.ACTIVE:
            assert (d.action, d.reason) == (base.action, base.reason), "what the store does not know: other rules"
            continue
        if arn in refs or arn in kept_by_rank or rule.exclude or rule.protected_by(d.revision.tags):
            assert d.action is Action.KEEP and not by_use, "the invariants come before the last use"
            continue
        assert by_use
        assert (d.action is Action.DEREGISTER) == (usage[arn] <= rule.unused_for.before(NOW))


def test_unused_for_reasons() -> None:
    rule = Rule(keep_last=1, unused_for=Duration(days=90), deregister_after=Duration(days=30))
    used = {rev(7).arn: NOW - timedelta(days=120), rev(6).arn: NOW - timedelta(days=3)}
    active = [rev(8, registered=400), rev(7, registered=400), rev(6, registered=400), rev(5, registered=400)]
    decisions = decide_family(active, [], rule=rule, glob=None, now=NOW, usage=used)
    assert [(d.action, d.reason) for d in decisions] == [
        (Action.KEEP, "newest kept"),
        (Action.DEREGISTER, "last used 120 days ago ≥ 90 days"),
        (Action.KEEP, "last used 3 days ago < 90 days"),
        (Action.DEREGISTER, "registered 400 days ago ≥ 30 days"),  # never seen by the store: the age rule
    ]


def test_known_only_to_be_registered_after_a_moment_says_less_than_only_when_it_is() -> None:
    rule = Rule(keep_last=1, deregister_after=Duration(days=30))
    bare = Revision(rev(5).arn, "web", 5, Status.ACTIVE)
    after = replace(bare, registered_after=NOW - timedelta(days=29))
    assert one(after, rule, rank=3) == (Action.KEEP, "registered less than 30 days ago")
    # At the cut-off itself it may be exactly 30 days old: old enough, so not "less than"; unknown, so kept.
    at_cutoff = replace(bare, registered_after=NOW - timedelta(days=30))
    assert one(at_cutoff, rule, rank=3) == (Action.KEEP, "no registration time known; kept")
