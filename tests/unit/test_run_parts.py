"""The run's parts that need no AWS: the report's sections in order whatever order the targets end in, a
target's share of the time budget, the hourly rotation, the typed run summary, the pages' back-pressure, and
the service models loaded once for every account."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from datetime import timedelta
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.loaders import JSONFileLoader

from tdgc.aws.connection import Role, assume, load_models
from tdgc.collect.budget import Budget
from tdgc.collect.reporter import PAGES_AHEAD, InOrderReporter
from tdgc.collect.run import rotated
from tdgc.model import Action, Decision, Outcome, Result, Revision, Status
from tdgc.report import model
from tdgc.report.model import Report, TargetStatus, Writer
from tdgc.report.summary import RunSummary
from tdgc.signals import Interrupted, exit_status, stopped_by
from tests.helpers import NOW, FakeClock


class Recorder(Writer):
    """What a streaming writer is handed, in order."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def begin_target(self, section: Any) -> None:
        self.seen.append(f"== {section.target}")

    def add(self, decisions: Any, outcomes: Any) -> None:
        self.seen += [d.revision.family for d in decisions]

    def finish(self, report: Report) -> None:
        self.seen.append("end")


def page(family: str, n: int = 1) -> list[Decision]:
    revision = Revision(f"arn:aws:ecs:us-east-1:1:task-definition/{family}:1", family, 1, Status.ACTIVE, None)
    return [Decision(revision, Action.DEREGISTER, "old")] * n


def test_sections_reach_the_writers_in_their_order_whatever_order_the_targets_end_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(model, "SPOOL_IN_MEMORY", 64)  # the waiting pages go to disk
    writer = Recorder()
    report = Report([writer], {})
    a, b, c = (report.reserve(name, None, "us-east-1") for name in "abc")
    report.add(page("c1"), section=c)
    report.add(page("b1", 50), section=b)
    report.add(page("a1"), section=a)
    assert writer.seen == ["== a", "a1"], "b and c wait for a"
    report.close(c)
    report.add(page("b2"), section=b)
    assert writer.seen == ["== a", "a1"]
    report.close(a)
    assert writer.seen == ["== a", "a1", "== b", *["b1"] * 50, "b2"], "b's pages replayed; c waits for b"
    report.add(page("b3"), section=b)
    report.close(b)
    report.finish()
    assert writer.seen == ["== a", "a1", "== b", *["b1"] * 50, "b2", "b3", "== c", "c1", "end"]
    assert [t.summary.deregister for t in report.targets] == [1, 52, 1]
    assert report.summary.deregister == 54


def test_the_report_counts_pages_from_many_threads_exactly() -> None:
    report = Report([Recorder()], {})
    sections = [report.reserve(f"t{i}", None, "us-east-1") for i in range(8)]

    def write(section: Any) -> None:
        for _ in range(200):
            report.add(page(section.target), [Outcome("x", Action.DEREGISTER, Result.DONE)], section)
            report.note("same", once=True)
        report.close(section)

    threads = [threading.Thread(target=write, args=(s,)) for s in sections]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.finish()
    assert report.summary.deregister == 1600 and report.summary.results["done"] == 1600
    assert all(s.summary.deregister == 200 for s in sections)
    assert report.notes == ["same"]


def test_a_share_has_its_own_deadline_and_stop_and_draws_on_the_run_s_actions() -> None:
    clock = FakeClock()
    run = Budget(3, deadline=clock() + 100, reserve=10, clock=clock)
    first, second = run.share(30.0), run.share(None)
    assert (first.deadline, second.deadline) == (clock() + 30, clock() + 90)
    assert first.take(2) == 2 and second.take(2) == 1 and first.take(1) == 0, "3 actions for the whole run"
    first.stop("a lane failed")
    second.give_back(1)
    assert first.take(1) == 0 and second.take(1) == 1, "a stop ends only its own target"
    clock.sleep(31)
    assert first.out_of_time() and not second.out_of_time()
    run.stop("run stopped")
    assert second.out_of_time() and second.take(1) == 0


def test_the_rotation_moves_with_the_hour_and_keeps_every_target() -> None:
    items: list[Any] = list(range(10))
    starts = {rotated(items, NOW + timedelta(hours=h))[0] for h in range(48)}
    assert len(starts) > 5, "the first target changes from hour to hour"
    for h in range(5):
        order = rotated(items, NOW + timedelta(hours=h))
        assert sorted(order) == items and order == [*items[order[0] :], *items[: order[0]]]
    assert rotated(items, NOW) == rotated(items, NOW + timedelta(minutes=59)), "stable within the hour"


def test_the_pages_wait_for_the_lanes_and_are_reported_in_order() -> None:
    seen: list[str] = []
    reporter = InOrderReporter(lambda d, o: seen.append(d[0].revision.family), lambda: 0)
    futures: list[Future[list[Outcome]]] = [Future() for _ in range(PAGES_AHEAD + 1)]
    futures[1].set_result([])
    for n, future in enumerate(futures[:PAGES_AHEAD]):
        reporter.push(page(f"p{n}"), [], [future])
    assert seen == [], "the first page is not done: nothing reported, the second waits behind it"
    futures[0].set_result([])
    for future in futures[2:]:
        future.set_result([])
    reporter.push(page("last"), [], [futures[-1]])
    assert seen == [f"p{n}" for n in range(PAGES_AHEAD)] + ["last"]


SUMMARY = {
    "tool": "tdgc",
    "tool_version": "1",
    "mode": "apply",
    "generated_at": NOW.isoformat(),
    "exit_code": 1,
    "report": "s3://b/r.json",
    "summary": {
        "families": 2,
        "revisions": 9,
        "keep": 4,
        "deregister": 3,
        "delete": 2,
        "protected": 1,
        "deregistered": 3,
        "deleted": 1,
        "results": {"done": 4, "pending": 0, "failed": 1, "skipped": 0},
    },
    "targets": [
        {"target": "a", "account": "1", "region": "r", "status": "ok", "error": None, "summary": {}},
        {"target": "b", "account": "2", "region": "r", "status": "failed", "error": "Denied", "summary": {}},
        {"target": "c", "account": "3", "region": "r", "status": "deferred", "error": None, "summary": {}},
    ],
    "notes": ["n"],
    "incomplete": [],
    "closest_to_quota": [{"family": "web", "quota_headroom": 999_000}],
}


def test_the_run_summary_reads_back_what_it_writes_and_gives_its_short_forms() -> None:
    summary = RunSummary.from_dict(SUMMARY)
    again = summary.to_dict()
    assert {k: v for k, v in again.items() if k != "targets"} == {k: v for k, v in SUMMARY.items() if k != "targets"}
    assert [(t["target"], t["status"], t["error"]) for t in again["targets"]] == [
        ("a", "ok", None),
        ("b", "failed", "Denied"),
        ("c", "deferred", None),
    ]
    assert [t.target for t in summary.failed_targets()] == ["b"]
    assert summary.one_line() == "tdgc apply exited 1: 1 actions failed of 5; b: failed (Denied); c: deferred"
    flat = summary.flat()
    assert (flat["deregister"], flat["done"], flat["failed"], flat["targets"]) == (3, 4, 1, 3)
    assert (flat["targets_failed"], flat["targets_deferred"], flat["targets_refused"]) == (1, 1, 0)
    assert TargetStatus.OK.value not in {k.removeprefix("targets_") for k in flat}


def test_an_interruption_s_exit_status_is_computed_in_one_place() -> None:
    assert stopped_by(Interrupted(15)) == ("SIGTERM", exit_status("SIGTERM")) == ("SIGTERM", 143)
    assert stopped_by(KeyboardInterrupt()) == ("SIGINT", 130)


def test_the_models_a_parallel_run_loads_first_are_not_read_again_by_each_account() -> None:
    """load_models fills the loader every member session shares: their clients then read no model from disk,
    so targets starting at once do not each parse them (the cache has no lock). No AWS call is made."""
    base = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    services = ["sts", "ecs", "events", "cloudformation"]
    load_models(base, services, "us-east-1")
    members = [assume(base, Role(f"arn:aws:iam::{n:012d}:role/tdgc"), None, "us-east-1") for n in range(1, 4)]
    with mock.patch.object(JSONFileLoader, "load_file", side_effect=AssertionError("a model read from disk")):
        for member in members:
            for service in services:
                client = member.client(service, region_name="eu-west-1")  # type: ignore[call-overload]
                assert client.can_paginate(next(iter(client.meta.method_to_api_mapping))) in (True, False)


def test_a_model_that_cannot_be_loaded_beforehand_is_left_to_the_targets() -> None:
    base = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    load_models(base, ["no-such-service", "ecs"], "us-east-1")  # no error: an optimisation, not a check
    with mock.patch.object(JSONFileLoader, "load_file", side_effect=AssertionError("a model read from disk")):
        base.client("ecs", region_name="us-east-1")  # type: ignore[call-overload]
