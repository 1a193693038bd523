"""Targets in parallel (#16): each account ends as a run of it alone would, one report with a section per
target in the targets' order, no target starved by one with an endless backlog, and bad input refused."""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tdgc.aws.connection import parse_roles
from tdgc.aws.pacing import Pacer
from tdgc.collect.run import RunOptions, run
from tdgc.errors import UsageError
from tdgc.job import Job, options_for
from tdgc.lambda_handler import job_from
from tdgc.local.simulator import Simulator
from tdgc.policy import load_policy
from tdgc.report.writers import JsonWriter
from tests.helpers import NOW, FakeClock, days, write_policy

POLICY = '[defaults]\nkeep_last = 2\nderegister_after = "30 days"\ndelete_after = "60 days"\n'
ACCOUNTS = [f"{n}{n}{n}{n}00000000" for n in range(1, 7)]  # 1111 0000 0000, 2222 ..., 6666 ...


def seed(sim: Simulator, account: str, size: int) -> None:
    """Families of `size` old ACTIVE revisions and a few INACTIVE ones: deregisters and deletes to do."""
    for f in range(3):
        for _ in range(2):
            sim.seed(
                f"job-{f}",
                registered_at=NOW - days(300),
                deregistered_at=NOW - days(100),
                account=account,
                status="INACTIVE",
            )
        for i in range(size):
            sim.seed(f"job-{f}", registered_at=NOW - days(200 - i), account=account)


def by_revision(sim: Simulator, account: str) -> dict[str, str]:
    """An account's end state, by family:revision (so that two accounts compare)."""
    final = sim.statuses(account=account)
    return {arn.rsplit("/", 1)[1]: "deleted" if sim.deleted(s) else s for arn, s in final.items()}


def apply(accounts: list[str], parallel: int, tmp_path: Path, **given: Any) -> tuple[Any, dict[str, Any]]:
    roles = parse_roles([f"arn:aws:iam::{a}:role/tdgc" for a in accounts], None, None)
    options = RunOptions(
        policy=load_policy(write_policy(tmp_path, POLICY)), apply=True, roles=tuple(roles), parallel=parallel, **given
    )
    out = io.StringIO()
    result = run(options, [JsonWriter(out)], now=NOW)
    return result, json.loads(out.getvalue())


def test_accounts_in_parallel_end_as_each_alone_would_in_one_report_in_their_order(
    sim: Simulator, tmp_path: Path
) -> None:
    together, alone = ACCOUNTS[:3], ACCOUNTS[3:]
    for n, (a, b) in enumerate(zip(together, alone, strict=True)):
        seed(sim, a, 6 + 3 * n)  # account b is a's twin, applied on its own
        seed(sim, b, 6 + 3 * n)
    result, report = apply(together, 3, tmp_path)
    assert result.exit_code == 0
    for account in alone:
        assert apply([account], 1, tmp_path)[0].exit_code == 0
    for a, b in zip(together, alone, strict=True):
        assert by_revision(sim, a) == by_revision(sim, b)
        assert Counter(by_revision(sim, a).values())["INACTIVE"] > 0
    assert [t["account"] for t in report["targets"]] == together
    assert [t["status"] for t in report["targets"]] == ["ok"] * 3
    # The decisions stream one target after another, in the sections' order.
    accounts = [d["arn"].split(":")[4] for d in report["decisions"]]
    assert accounts == sorted(accounts, key=together.index)
    assert [t["summary"]["deregister"] for t in report["targets"]] == [3 * (6 + 3 * n - 2) for n in range(3)]


def test_a_failing_account_stops_only_itself_in_parallel(sim: Simulator, tmp_path: Path) -> None:
    for account in ACCOUNTS[:4]:
        seed(sim, account, 5)
    sim.inject("ListTaskDefinitions", "AccessDeniedException", times=1, message="not here")
    result, report = apply(ACCOUNTS[:4], 4, tmp_path)
    assert result.exit_code == 1
    statuses = [t["status"] for t in report["targets"]]
    assert sorted(statuses) == ["failed", "ok", "ok", "ok"]
    results = [t["summary"]["results"] for t in report["targets"]]
    assert sum(r["done"] + r["pending"] for r in results) == 3 * (3 * 3 + 3 * 2), "the others did all they had to do"


@pytest.mark.paced
def test_no_target_starves_behind_one_with_an_endless_backlog(sim: Simulator, tmp_path: Path) -> None:
    """10 targets, one of them with far more than a run can do: every other is done within two runs."""
    regions = [
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-central-1",
        "ap-south-1",
        "ap-northeast-1",
    ]
    for n, region in enumerate(regions):
        for i in range(400 if n == 0 else 4):  # the first: 400 deregisters at 1 a second, for a 60 s run
            sim.seed(f"svc-{n}", registered_at=NOW - days(200 - i / 10), region=region)
    clock = FakeClock()
    policy = load_policy(write_policy(tmp_path, POLICY))
    policy = replace(policy, rates={**policy.rates, "read": 10_000.0, "modify": 1.0, "delete": 1.0})
    options = RunOptions(policy=policy, apply=True, regions=tuple(regions), time_budget=60.0)
    served: set[str] = set()
    for hour in range(2):
        out = io.StringIO()
        started = clock()
        result = run(
            options,
            [JsonWriter(out)],
            now=NOW.replace(hour=hour),
            clock=clock,
            pacer_factory=lambda rates: Pacer(rates, clock=clock, sleep=clock.sleep),
        )
        assert result.exit_code == 0 and clock() - started <= 60.0
        report = json.loads(out.getvalue())
        assert [t["region"] for t in report["targets"]] == regions, "the report keeps the targets' order"
        served |= {t["region"] for t in report["targets"] if t["summary"]["results"]["done"]}
    assert served == set(regions), "every target was served within two runs"
    for region in regions[1:]:
        final = sim.statuses(region=region)
        assert Counter(final.values())["INACTIVE"] == 2, f"{region} is done"
    assert 0 < Counter(sim.statuses(region=regions[0]).values())["INACTIVE"] < 398, "the backlog goes on"


@pytest.mark.parametrize("value", ["0", "65", "x", "-1", "2.5", ""])
def test_a_bad_tdgc_parallel_is_refused_before_any_call(value: str, sim: Simulator) -> None:
    with pytest.raises(UsageError, match="TDGC_PARALLEL: expected a whole number from 1 to 64"):
        job_from({}, {"TDGC_PARALLEL": value}, None)
    assert sum(sim.calls.values()) == 0


def test_tdgc_parallel_reaches_the_run(sim: Simulator) -> None:
    assert job_from({}, {"TDGC_PARALLEL": "8"}, None).parallel == 8
    assert options_for(Job(parallel=8)).parallel == 8
    for bad in (0, 65, True):
        with pytest.raises(UsageError, match="parallel: expected 1 to 64"):
            options_for(Job(parallel=bad))
    assert sum(sim.calls.values()) == 0
