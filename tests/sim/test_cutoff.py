"""The read economy changes no decision: what is inferred from a binary search equals what describing says."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tdgc.aws.ecs import PAGE_SIZE
from tdgc.collect.cutoff import FIRST_PAGE, decide_pages
from tdgc.collect.scan import Scanner
from tdgc.durations import Duration
from tdgc.local.simulator import Simulator
from tdgc.model import Revision, Status
from tdgc.policy import Policy, Rule
from tests.helpers import NOW
from tests.oracle import decide_family

rules = st.builds(
    Rule,
    keep_last=st.integers(0, 4),
    deregister_after=st.one_of(st.none(), st.integers(0, 60).map(lambda d: Duration(days=d))),
    delete_after=st.one_of(st.none(), st.integers(0, 60).map(lambda d: Duration(days=d))),
    protect_tags=st.sampled_from([{}, {"keep": "*"}]),
)
revisions = st.lists(
    st.tuples(
        st.floats(0, 5),  # days after the previous registration: registeredAt never decreases
        st.one_of(st.none(), st.floats(0, 80)),  # INACTIVE: deregistered this many days after registration
        st.booleans(),  # tagged
    ),
    max_size=40,
)


@pytest.fixture(scope="module")
def shared() -> Iterator[Simulator]:
    with Simulator() as sim:
        yield sim


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule=rules, family=revisions, old_untimed=st.booleans())
def test_inferred_decisions_equal_described_ones(
    shared: Simulator, rule: Rule, family: list[Any], old_untimed: bool
) -> None:
    sim = shared
    sim.reset()
    at = NOW - timedelta(days=sum(step for step, _, _ in family) + 1)
    for n, (step, deregistered, tagged) in enumerate(family):
        at += timedelta(days=step)
        untimed = old_untimed and n < 3  # the oldest revisions of some families have no timestamps
        gone = min(at + timedelta(days=deregistered), NOW) if deregistered is not None else None
        sim.seed(
            "f",
            registered_at=None if untimed else at,
            status="INACTIVE" if gone else "ACTIVE",
            deregistered_at=gone,
            tags={"keep": "1"} if tagged else None,
        )
    ecs = boto3.client("ecs", region_name=sim.region, aws_access_key_id="testing", aws_secret_access_key="testing")
    lean = [d for page in decide_pages(Scanner(ecs), Policy(defaults=rule), "f", NOW) for d in page]
    described = sim.count("DescribeTaskDefinition")

    def full(status: Status) -> list[Revision]:
        tds = sorted(sim.revisions(status.value), key=lambda t: -t.revision)
        return [
            Revision(
                t.arn,
                "f",
                t.revision,
                status,
                True,
                t.registered_at,
                t.deregistered_at,
                {x["key"]: x["value"] for x in t.tags},
            )
            for t in tds
        ]

    truth = decide_family(full(Status.ACTIVE), full(Status.INACTIVE), rule=rule, glob=None, now=NOW)
    assert {d.revision.arn: d.action for d in lean} == {d.revision.arn: d.action for d in truth}
    acted = sum(d.action.value != "keep" for d in truth)
    kept_after_reading = sum(1 for d in truth if d.revision.tags or "time known" in d.reason)
    assert described <= acted + kept_after_reading + 2 * 2 * 6  # two searches of at most 40: 6 probes each
    if not rule.protect_tags and rule.delete_after is None:
        assert described <= 2 * 6  # deregistering by age: the search's probes alone (galloping, then bisecting)


@pytest.mark.parametrize(("young", "most"), [(0, 1), (1, 2), (20, 10), (150, 16)])
def test_the_search_costs_about_twice_log2_of_the_young_side(shared: Simulator, young: int, most: int) -> None:
    """200 ACTIVE revisions a day apart, the newest `young` of them inside the 30-day cut-off, keep_last 0."""
    sim = shared
    sim.reset()
    for n in range(200):
        days_ago = 29 if n >= 200 - young else 400 - n
        sim.seed("f", registered_at=NOW - timedelta(days=days_ago) + timedelta(minutes=n))
    ecs = boto3.client("ecs", region_name=sim.region, aws_access_key_id="testing", aws_secret_access_key="testing")
    rule = Rule(keep_last=0, deregister_after=Duration(days=30), delete_after=None, protect_tags={})
    decisions = [d for page in decide_pages(Scanner(ecs), Policy(defaults=rule), "f", NOW) for d in page]
    assert sum(d.action.value == "deregister" for d in decisions) == 200 - max(young, 1)
    assert sim.count("DescribeTaskDefinition") <= most


def test_the_first_decisions_are_handed_on_after_a_few_describes(shared: Simulator) -> None:
    """Under a protect tag every old candidate is described; the lanes get the first ACTIVE page after
    FIRST_PAGE of them (and the search's probe), not after a whole listing page, and the pages grow from there;
    INACTIVE pages stay whole, so that deletes fill their batches of ten."""
    sim = shared
    sim.reset()
    at = NOW - timedelta(days=400)
    for n in range(250):
        gone = at + timedelta(days=n % 3) if n < 130 else None  # the oldest deregistered long ago
        sim.seed("f", registered_at=at, status="INACTIVE" if gone else "ACTIVE", deregistered_at=gone)
    ecs = boto3.client("ecs", region_name=sim.region, aws_access_key_id="testing", aws_secret_access_key="testing")
    days30 = Duration(days=30)
    rule = Rule(keep_last=2, deregister_after=days30, delete_after=days30, protect_tags={"k": "*"})
    pages = decide_pages(Scanner(ecs), Policy(defaults=rule), "f", NOW)
    inactive = [next(pages), next(pages)]
    assert [len(page) for page in inactive] == [PAGE_SIZE, 30]
    described = sim.count("DescribeTaskDefinition")
    first = next(pages)
    assert len(first) == FIRST_PAGE
    assert sim.count("DescribeTaskDefinition") - described <= FIRST_PAGE + 1  # and the search's one probe
    active = [first, *pages]
    assert [len(page) for page in active] == [10, 20, 40, 50]
    assert sum(d.action.value == "deregister" for page in active for d in page) == 118
    assert sum(d.action.value == "delete" for page in inactive for d in page) == 130
