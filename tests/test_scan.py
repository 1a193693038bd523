"""Scanning: account-wide listing gives what family-by-family listing gives, at a page per 100 revisions."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tdgc.model import Status
from tdgc.scan import STATUSES, ScanError, Scanner

from .conftest import NOW, days


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
    assert wide_calls == 15 + 4  # 1,350 ACTIVE and 451 INACTIVE revisions, 100 a page
    assert sim.count("ListTaskDefinitions") - wide_calls == 2 * 61  # two a family otherwise


class _OutOfOrder:
    """A client whose account-wide listing is not in the lexicographic order the merge relies on."""

    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_task_definitions"
        arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/"
        pages = [{"taskDefinitionArns": [f"{arn}b:1", f"{arn}a:1"]}]
        return type("Paginator", (), {"paginate": lambda self, **_: iter(pages)})()


def test_families_out_of_order_stop_the_scan() -> None:
    with pytest.raises(ScanError, match="listed family 'a' after 'b'"):
        list(Scanner(_OutOfOrder()).revision_lists())  # type: ignore[arg-type]
