"""The Pacer keeps tdgc's calls under its share of each ECS bucket, whatever the caller does."""

from __future__ import annotations

from typing import Any

import boto3

from tdgc.pacing import BURST, Pacer
from tdgc.simulator import Simulator


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


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
