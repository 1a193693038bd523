"""The Pacer keeps tdgc's calls under its share of each ECS bucket, whatever the caller does."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tdgc.aws.connection import CLIENT_CONFIG
from tdgc.aws.pacing import BURST, Pacer
from tdgc.local.simulator import Simulator
from tests.helpers import FakeClock


def test_burst_then_the_sustained_rate() -> None:
    clock = FakeClock()
    pacer = Pacer({"modify": 0.5}, clock=clock, sleep=clock.sleep)
    for _ in range(int(BURST["modify"])):
        pacer.take("modify")
    assert clock.slept == [], "the burst goes out at once"
    for _ in range(30):
        pacer.take("modify")
    assert len(clock.slept) == 30 and all(abs(s - 2.0) < 1e-9 for s in clock.slept)
    assert abs(clock.now - 1000.0 - 60.0) < 1e-9, "30 calls past the burst take 60 s at 0.5/s"
    assert abs(pacer.waited - 60.0) < 1e-9


def test_idle_time_refills_no_more_than_the_burst() -> None:
    clock = FakeClock()
    pacer = Pacer({"delete": 1.0}, clock=clock, sleep=clock.sleep)
    clock.now += 3600
    for _ in range(int(BURST["delete"]) + 1):
        pacer.take("delete")
    assert clock.slept == [1.0]


def test_categories_are_independent_and_unknown_ones_unpaced() -> None:
    clock = FakeClock()
    pacer = Pacer({"modify": 1.0, "read": 100.0}, clock=clock, sleep=clock.sleep)
    for _ in range(int(BURST["modify"])):
        pacer.take("modify")
    pacer.take("read")
    pacer.take("tag")
    assert clock.slept == []
    pacer.take("modify")
    assert clock.slept == [1.0]


def test_a_clock_that_stands_still_does_not_run_away() -> None:
    slept: list[float] = []
    pacer = Pacer({"modify": 2.0}, clock=lambda: 5.0, sleep=slept.append)
    for _ in range(int(BURST["modify"]) + 5):
        pacer.take("modify")
    assert slept == [0.5] * 5


def test_attached_to_a_client_it_paces_by_operation(sim: Simulator) -> None:
    seen: list[str] = []

    class Recording(Pacer):
        def take(self, category: str) -> None:
            seen.append(category)

    ecs: Any = boto3.client("ecs", region_name=sim.region)
    Recording({}).attach(ecs)
    arn = sim.seed("f", registered_at=None)
    ecs.list_task_definitions()
    ecs.describe_task_definition(taskDefinition=arn)
    ecs.deregister_task_definition(taskDefinition=arn)
    ecs.delete_task_definitions(taskDefinitions=[arn])
    assert seen == ["read", "read", "modify", "delete"]


def test_a_throttle_halves_the_rate_and_successes_bring_it_back() -> None:
    clock = FakeClock()
    pacer = Pacer({"modify": 1.0, "delete": 1.0}, clock=clock, sleep=clock.sleep)
    pacer.throttled("modify")
    pacer.throttled("modify")
    assert pacer.rate("modify") == 0.25 and pacer.rate("delete") == 1.0, "categories are independent"
    assert pacer.throttles == {"modify": 2}
    pacer.take("modify")
    assert clock.slept == [4.0], "no burst right after a throttle: the next call waits at the lowered rate"
    for _ in range(10):
        pacer.succeeded("modify")
    assert pacer.rate("modify") == pytest.approx(0.75)
    for _ in range(100):
        pacer.succeeded("modify")
    assert pacer.rate("modify") == 1.0, "never above the configured rate"
    for _ in range(20):
        pacer.throttled("modify")
    assert pacer.rate("modify") == 1.0 / 64, "nor below a floor"


def test_throttles_seen_by_the_client_lower_the_rate(sim: Simulator, fast_retries: None) -> None:
    pacer = Pacer({"modify": 100.0, "read": 100.0})
    ecs: Any = boto3.client("ecs", region_name=sim.region, config=CLIENT_CONFIG)
    pacer.attach(ecs)
    arn = sim.seed("f", registered_at=None)
    sim.inject("DeregisterTaskDefinition", "ThrottlingException", times=3)
    ecs.deregister_task_definition(taskDefinition=arn)  # retried by botocore, and seen by the pacer each time
    assert pacer.throttles == {"modify": 3}
    assert pacer.rate("modify") == pytest.approx(100.0 / 8 + 100.0 / 20), "three halvings, then one success"
    ecs.list_task_definitions()
    assert pacer.rate("read") == 100.0
