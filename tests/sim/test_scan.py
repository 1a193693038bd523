"""Scanning: account-wide listing gives what family-by-family listing gives, at a page per 100 revisions."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tdgc.collect.scan import STATUSES, Scanner
from tdgc.local.simulator import Behaviour, Simulator
from tdgc.model import Status
from tests.helpers import NOW, days


def _account(sim: Any) -> None:
    for f in range(60):  # many small families, as a services account has
        for n in range(30):
            status = "INACTIVE" if (n + f) % 4 == 0 else "ACTIVE"
            sim.seed(f"svc-{f:02d}", registered_at=NOW - days(60 - n), status=status, deregistered_at=NOW - days(1))
    sim.seed("only-inactive", registered_at=NOW, status="INACTIVE", deregistered_at=NOW)


def test_account_wide_lists_equal_family_by_family_ones(sim: Any) -> None:
    _account(sim)
    ecs = boto3.client("ecs", region_name=sim.region)
    wide = {f: {s: list(lists[s].numbers) for s in STATUSES} for f, lists in Scanner(ecs).revision_lists()}
    wide_calls = sim.count("ListTaskDefinitions")
    narrow = {f: {s: list(lists[s].numbers) for s in STATUSES} for f, lists in Scanner(ecs, ["*"]).revision_lists()}
    assert wide == narrow and len(wide) == 61
    assert wide["svc-00"][Status.ACTIVE][:3] == [30, 28, 27]  # ACTIVE, newest first (29 is INACTIVE)
    assert wide_calls == 15 + 4 + 1  # 1,350 ACTIVE, 451 INACTIVE and no DELETE_IN_PROGRESS revisions, 100 a page
    assert sim.count("ListTaskDefinitions") - wide_calls == 3 * 61  # three a family otherwise


def test_a_listing_stopped_early_gives_the_families_listed_so_far(sim: Any) -> None:
    _account(sim)
    ecs = boto3.client("ecs", region_name=sim.region)
    pages = iter(range(100))
    scanner = Scanner(ecs)
    part = {
        f: {s: list(lists[s].numbers) for s in STATUSES}
        for f, lists in scanner.revision_lists(stop=lambda: next(pages) == 2)
    }
    assert scanner.truncated and sim.count("ListTaskDefinitions") == 3
    assert sorted(part) == [f"svc-{f:02d}" for f in range(14)]  # 22 or 23 ACTIVE a family: 300 end in svc-13
    assert sum(len(lists[Status.ACTIVE]) for lists in part.values()) == 300
    assert len(part["svc-13"][Status.ACTIVE]) < 22, "a family cut short is given as far as it was listed"
    assert part["svc-00"][Status.ACTIVE][:3] == [30, 28, 27] and part["svc-00"][Status.INACTIVE] == []


@pytest.mark.parametrize("listed", [True, False])
@pytest.mark.parametrize("globs", [(), ("*",)])
def test_a_family_being_deleted_whole_is_not_given_however_ecs_lists_it(listed: bool, globs: tuple[str, ...]) -> None:
    behaviour = Behaviour(deleting_families_listed=listed, inactive_lists_deleting=listed)
    with Simulator(behaviour=behaviour) as sim:
        ecs = boto3.client("ecs", region_name=sim.region)
        gone = [sim.seed("gone", registered_at=NOW - days(9), status="INACTIVE", deregistered_at=NOW) for _ in "ab"]
        ecs.delete_task_definitions(taskDefinitions=gone)
        sim.seed("kept", registered_at=NOW)
        given = [family for family, _ in Scanner(ecs, globs).revision_lists()]
        assert given == ["kept"]


@pytest.mark.parametrize("globs", [(), ("web",)])
def test_a_revision_deregistered_by_someone_mid_scan_counts_as_inactive(sim: Any, globs: tuple[str, ...]) -> None:
    ecs = boto3.client("ecs", region_name=sim.region)
    arns = [sim.seed("web", registered_at=NOW - days(20 - n)) for n in range(10)]
    # Right after the ACTIVE listing's first page, a deploy pipeline deregisters the newest revision.
    sim.after("ListTaskDefinitions", lambda: ecs.deregister_task_definition(taskDefinition=arns[-1]))
    lists = dict(Scanner(ecs, globs).revision_lists())["web"]
    assert list(lists[Status.ACTIVE].numbers) == list(range(9, 0, -1)), "so web:9 is the newest ACTIVE, not 10"
    assert list(lists[Status.INACTIVE].numbers) == [10]
