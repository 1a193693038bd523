"""A time budget: the run stops starting mutations early enough to end cleanly, and repeated runs converge."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tdgc.aws.pacing import Pacer
from tdgc.collect.run import RunOptions, reserve_for, run
from tdgc.local.simulator import Simulator
from tdgc.policy import load_policy
from tdgc.report.writers import JsonWriter
from tests.account import POLICY, Expected
from tests.helpers import EVERY_BEHAVIOUR, FAST, NOW, FakeClock, end_state, write_policy


def test_reserve() -> None:
    assert (reserve_for(5), reserve_for(120), reserve_for(900), reserve_for(3600)) == (2.0, 12.0, 60.0, 60.0)


def test_a_budget_too_short_for_anything_still_ends_cleanly(
    tdgc: Any, sim: Simulator, account: Expected, tmp_path: Path
) -> None:
    ran = tdgc("apply", write_policy(tmp_path, POLICY), "--yes", "--time-budget", "1s", "--output", "json", *FAST)
    assert ran.code == 0
    report = ran.json()
    assert report["decisions"] == [] and sim.mutating_calls() == 0
    assert any("time budget reached before" in note for note in report["notes"])
    assert [t["status"] for t in report["targets"]] == ["deferred"]


@EVERY_BEHAVIOUR
@pytest.mark.slow
def test_repeated_short_runs_converge_to_the_full_result(sim: Simulator, account: Expected, tmp_path: Path) -> None:
    clock = FakeClock()  # pacing sleeps advance it, so a run's length is what AWS's rates would make it
    policy = load_policy(write_policy(tmp_path, POLICY))
    policy = replace(policy, rates={**policy.rates, "read": 10_000.0, "modify": 1.0, "delete": 1.0})
    options = RunOptions(policy=policy, apply=True, time_budget=60.0)
    runs = []
    for _ in range(12):
        out = io.StringIO()
        started = clock()
        result = run(
            options,
            [JsonWriter(out)],
            now=NOW,
            clock=clock,
            pacer_factory=lambda rates: Pacer(rates, clock=clock, sleep=clock.sleep),
        )
        report = json.loads(out.getvalue())
        assert result.exit_code == 0
        assert clock() - started <= 60.0, "each run ends within its budget"
        done = sum(o["result"] in ("done", "pending") for o in report["outcomes"])
        runs.append(done)
        if done == 0:
            break
    assert runs[0] < len(account.of("deregister")), "the first run had to stop early"
    assert sum(runs) == len(account.of("deregister")) + len(account.of("delete"))
    assert runs[-1] == 0 and len(runs) >= 4
    final = end_state(sim)
    assert all(final[a] == "INACTIVE" for a in account.of("deregister"))
    assert all(final[a] == "deleted" for a in account.of("delete"))
