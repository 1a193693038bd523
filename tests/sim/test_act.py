"""The actor's lanes: each mutation is checked once more just before it goes out, and both lanes finish."""

from __future__ import annotations

import boto3

from tdgc.collect.act import Actor
from tdgc.collect.budget import Budget
from tdgc.local.simulator import Simulator
from tdgc.model import Action, Decision, Result, Revision, Status


def _decisions(sim: Simulator) -> list[Decision]:
    for n in range(1, 31):
        sim.seed("web", registered_at=None, status="INACTIVE" if n <= 20 else "ACTIVE")
    found = []
    for td in sim.revisions():
        action = Action.DELETE if td.status == "INACTIVE" else Action.DEREGISTER
        found.append(Decision(Revision(td.arn, "web", td.revision, Status(td.status)), action, "test"))
    return found


def test_a_revision_found_in_use_after_its_decision_is_skipped(sim: Simulator) -> None:
    decisions = _decisions(sim)
    in_use = {5, 25}  # one delete and one deregister that a newer reading of the references finds in use
    ecs = boto3.client("ecs", region_name=sim.region)
    actor = Actor(ecs, sim.region, check=lambda d: "in use by service x/y" if d.revision.revision in in_use else None)
    outcomes = {o.arn.rsplit(":", 1)[1]: o for o in actor.act(decisions)}
    actor.close()
    assert len(outcomes) == 30
    for n in in_use:
        assert outcomes[str(n)].result is Result.SKIPPED and outcomes[str(n)].error == "in use by service x/y"
    statuses = {td.revision: td.status for td in sim.revisions()}
    assert statuses[5] == "INACTIVE" and statuses[25] == "ACTIVE"
    assert sum(s == "DELETE_IN_PROGRESS" for s in statuses.values()) == 19
    assert sum(s == "INACTIVE" for n, s in statuses.items() if n > 20) == 9
    assert sim.count("DeleteTaskDefinitions") == 2  # the 19 left, ten a call


def test_a_stopped_run_defers_what_the_lanes_have_not_started(sim: Simulator) -> None:
    decisions = _decisions(sim)
    budget = Budget(None)
    budget.stop("run stopped")
    actor = Actor(boto3.client("ecs", region_name=sim.region), sim.region, budget=budget)
    outcomes = actor.act(decisions)
    actor.close()
    assert {o.result for o in outcomes} == {Result.SKIPPED}
    assert {o.error for o in outcomes} == {"deferred: run stopped"}
    assert sim.mutating_calls() == 0


def test_a_lane_that_fails_stops_what_is_queued_after_it(sim: Simulator) -> None:
    deregisters = [d for d in _decisions(sim) if d.action is Action.DEREGISTER]
    calls = []

    def check(decision: Decision) -> str | None:
        calls.append(decision.revision.revision)
        if len(calls) == 2:
            raise RuntimeError("a bug in the check")
        return None

    actor = Actor(boto3.client("ecs", region_name=sim.region), sim.region, check=check)
    first, second = actor.submit(deregisters[:5])[0], actor.submit(deregisters[5:])[0]
    actor.close()
    assert isinstance(first.exception(), RuntimeError)
    assert {o.error for o in second.result()} == {"deferred: run stopped"}
    assert sim.count("DeregisterTaskDefinition") == 1
