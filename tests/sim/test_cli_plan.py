"""`tdgc plan` against the simulated account, as a user runs it."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from tdgc.local.simulator import Simulator
from tdgc.report.writers import CSV_FIELDS, DECISION_FIELDS
from tests.account import POLICY, Expected
from tests.helpers import FAST, NOW, days, write_policy


@pytest.fixture
def frozen() -> Iterator[None]:
    with freeze_time(NOW):
        yield


def test_plan_decides_every_revision_as_the_policy_says(
    tdgc: Any, sim: Simulator, account: Expected, tmp_path: Path
) -> None:
    ran = tdgc("plan", write_policy(tmp_path, POLICY), "--output", "json", *FAST)
    assert ran.code == 0, ran.err
    report = ran.json()
    assert report["version"] == 1 and report["tool"] == "tdgc" and report["mode"] == "plan"
    decisions = {d["arn"]: d for d in report["decisions"]}
    assert len(decisions) == len(report["decisions"]) == len(account.actions), "one decision per revision"
    assert {arn: d["action"] for arn, d in decisions.items()} == account.actions
    assert {arn for arn, d in decisions.items() if "protected by tag" in d["reason"]} == account.protected
    assert all(set(d) == set(DECISION_FIELDS) for d in report["decisions"])
    assert report["outcomes"] == []
    summary = report["summary"]
    assert summary["families"] == account.families
    assert summary["revisions"] == len(account.actions)
    assert (summary["deregister"], summary["delete"]) == (len(account.of("deregister")), len(account.of("delete")))
    assert summary["keep"] == len(account.of("keep"))
    assert summary["protected"] == 1
    assert sim.mutating_calls() == 0, "plan never mutates"


@pytest.mark.parametrize("command", [["apply", "--dry-run"], ["plan", "--dry-run"]])
def test_dry_run_is_a_plan(command: list[str], tdgc: Any, sim: Simulator, account: Expected, tmp_path: Path) -> None:
    """Terraform's and cloud-custodian's habit: `apply --dry-run` plans (no --yes needed, nothing changed), and
    `plan --dry-run` is a plan as it always is."""
    ran = tdgc(*command, write_policy(tmp_path, POLICY), "--output", "json", *FAST)
    assert ran.code == 0, ran.err
    report = ran.json()
    assert report["mode"] == "plan" and report["outcomes"] == []
    assert {d["arn"]: d["action"] for d in report["decisions"]} == account.actions
    assert sim.mutating_calls() == 0


def test_reasons_in_the_report(tdgc: Any, account: Expected, tmp_path: Path) -> None:
    report = tdgc("plan", write_policy(tmp_path, POLICY), "--output", "json", *FAST).json()
    reasons = {(d["family"], d["revision"]): d["reason"] for d in report["decisions"]}
    assert reasons[("big", 300)] == "newest 5 kept"
    assert reasons[("big", 1)] == "deregistered 200 days ago ≥ 180 days"
    assert reasons[("big", 295)] == "registered 146 days ago ≥ 30 days"
    assert reasons[("web", 13)] == "newest 5 kept"
    assert reasons[("web", 4)] == "registered 20 days ago < 30 days"
    assert reasons[("prod-web", 1)] == "family excluded by rule prod-*"
    assert reasons[("dbt-run", 32)] == "deregistered 2 days ago < 7 days"
    assert reasons[("tagged", 2)] == "protected by tag tdgc:keep=true"
    assert reasons[("legacy", 1)] == "no deregistration time known; kept"
    assert reasons[("legacy", 5)] == "no registration time known; kept"
    registered = {(d["family"], d["revision"]): d["registered_at"] for d in report["decisions"]}
    assert registered[("big", 1)] == (NOW - days(700)).isoformat()
    assert registered[("legacy", 5)] is None


def test_keep_last_boundaries(tdgc: Any, sim: Simulator, frozen: None) -> None:
    for n in range(8):
        sim.seed("f", registered_at=NOW - days(100 - n))
    for keep, kept in ((0, 1), (1, 1), (7, 7), (8, 8), (9, 8)):
        report = tdgc("plan", "--keep-last", str(keep), "--output", "json", *FAST).json()
        actions = {d["revision"]: d["action"] for d in report["decisions"]}
        assert sorted(n for n, a in actions.items() if a == "keep") == list(range(9 - kept, 9)), keep
        assert sum(a == "deregister" for a in actions.values()) == 8 - kept


def test_age_rules_follow_the_clock(tdgc: Any, sim: Simulator, ecs: Any) -> None:
    with freeze_time("2026-01-01T00:00:00Z"):
        container = {"name": "a", "image": "b", "memory": 64}
        registered = [ecs.register_task_definition(family="job", containerDefinitions=[container]) for _ in range(3)]
    arns = [r["taskDefinition"]["taskDefinitionArn"] for r in registered]
    with freeze_time("2026-01-02T00:00:00Z"):
        ecs.deregister_task_definition(taskDefinition=arns[0])
    args = (
        "plan",
        "--keep-last",
        "1",
        "--deregister-after",
        "60 days",
        "--delete-after",
        "90 days",
        "--output",
        "json",
        *FAST,
    )
    with freeze_time("2026-03-01T23:59:59Z"):  # revision 2 is 59.99 days old
        before = {d["revision"]: d["action"] for d in tdgc(*args).json()["decisions"]}
    with freeze_time("2026-04-02T00:00:00Z"):  # 91 days after registration, 90 after deregistration
        after = {d["revision"]: d["action"] for d in tdgc(*args).json()["decisions"]}
    assert before == {1: "keep", 2: "keep", 3: "keep"}
    assert after == {1: "delete", 2: "deregister", 3: "keep"}
    assert sim.mutating_calls() == 4  # the test's own three registers and one deregister


def test_family_globs_narrow_the_scan(tdgc: Any, sim: Simulator, account: Expected) -> None:
    report = tdgc("plan", "--family", "dbt-*", "--family", "we?", "--output", "json", *FAST).json()
    assert {d["family"] for d in report["decisions"]} == {"dbt-run", "web"}
    assert report["summary"]["families"] == 2
    assert sim.count("ListTaskDefinitionFamilies") == 2, "one narrowed listing per literal prefix"


def test_exclude_family_flag(tdgc: Any, account: Expected, tmp_path: Path) -> None:
    report = tdgc("plan", write_policy(tmp_path, POLICY), "--exclude-family", "big", "--output", "json", *FAST).json()
    big = [d for d in report["decisions"] if d["family"] == "big"]
    assert len(big) == 300 and all(d["action"] == "keep" and d["reason"] == "family excluded by rule big" for d in big)


def test_keep_last_alone_describes_nothing(tdgc: Any, sim: Simulator, account: Expected, tmp_path: Path) -> None:
    policy = write_policy(tmp_path, "[defaults]\nkeep_last = 3\ndelete_after = false\nprotect_tags = {}\n")
    report = tdgc("plan", policy, "--output", "json", *FAST).json()
    assert sim.count("DescribeTaskDefinition") == 0
    assert report["summary"]["deregister"] == sum(max(0, n - 3) for n in (260, 13, 1, 20, 1, 7)) + 0


def test_describes_only_what_decisions_depend_on(tdgc: Any, sim: Simulator, account: Expected, tmp_path: Path) -> None:
    report = tdgc("plan", write_policy(tmp_path, POLICY), "--output", "json", *FAST).json()
    acted_on = report["summary"]["deregister"] + report["summary"]["delete"]
    kept_after_reading = sum(
        "protected by tag" in d["reason"] or "time known" in d["reason"] for d in report["decisions"]
    )
    sizes: dict[tuple[str, str], int] = {}
    for d in report["decisions"]:
        sizes[(d["family"], d["status"])] = sizes.get((d["family"], d["status"]), 0) + 1
    search = sum(2 * math.ceil(math.log2(n + 1)) for n in sizes.values())
    assert sim.count("DescribeTaskDefinition") <= acted_on + kept_after_reading + search


def test_young_revisions_are_not_described(tdgc: Any, sim: Simulator, frozen: None) -> None:
    """A busy family, all of it recent: a binary search's worth of describes, not one per revision."""
    for n in range(1000):
        at = NOW - days(20) + days(n / 100)
        sim.seed("busy", registered_at=at, status="INACTIVE", deregistered_at=at + days(0.01))
    for n in range(1000):
        sim.seed("busy", registered_at=NOW - days(10) + days(n / 200))
    report = tdgc("plan", "--keep-last", "5", "--deregister-after", "30 days", "--output", "json", *FAST).json()
    assert report["summary"]["keep"] == 2000
    assert sim.count("DescribeTaskDefinition") <= 2 * math.ceil(math.log2(1001))
    reasons = [d["reason"] for d in report["decisions"]]
    probes = sim.count("DescribeTaskDefinition")  # the searched revisions get exact reasons instead
    assert reasons.count("registered less than 30 days ago") >= 1000 - 5 - probes
    assert reasons.count("registered less than 180 days ago; deregistered since") >= 1000 - probes


def parse(fmt: str, text: str) -> list[dict[str, Any]]:
    if fmt == "json":
        return list(json.loads(text)["decisions"])
    if fmt == "jsonl":
        lines = [json.loads(line) for line in text.splitlines()]
        assert lines[-1]["type"] == "summary" and lines[-1]["summary"]["revisions"] == len(lines) - 1
        return [line for line in lines if line["type"] == "decision"]
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        assert tuple(reader.fieldnames or ()) == CSV_FIELDS
        return list(reader)
    raise AssertionError(fmt)


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_machine_formats_parse_back(fmt: str, tdgc: Any, account: Expected, tmp_path: Path) -> None:
    copy = tmp_path / f"report.{fmt}"
    ran = tdgc("plan", write_policy(tmp_path, POLICY), "--output", fmt, "--report", str(copy), *FAST)
    assert ran.code == 0
    rows = parse(fmt, ran.out)
    assert {r["arn"]: r["action"] for r in rows} == account.actions
    assert copy.read_text() == ran.out, "--report writes the same report"


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_human_formats(fmt: str, tdgc: Any, account: Expected, tmp_path: Path) -> None:
    ran = tdgc("plan", write_policy(tmp_path, POLICY), "--output", fmt, *FAST)
    assert ran.code == 0
    deregister, delete = len(account.of("deregister")), len(account.of("delete"))
    assert f"deregister {deregister:,}, delete {delete:,}" in ran.out
    assert "Nothing was changed." in ran.out
    if fmt == "table":
        assert max(len(line) for line in ran.out.splitlines()) <= 80
        assert "TOTAL (126 families)" in ran.out
        assert "  delete     big:40                       deregistered 200 days ago ≥ 180 days" in ran.out
        assert "… 122 more families with nothing to do" in ran.out
        assert "1 revision kept by a protecting tag" in ran.out
    else:
        assert "| family | revs | keep | dereg | delete | prot |" in ran.out
        assert "| delete | `big:40` | deregistered 200 days ago ≥ 180 days |" in ran.out


def test_progress_and_logs_stay_off_stdout(tdgc: Any, account: Expected) -> None:
    ran = tdgc("plan", "--output", "json", "--log-format", "json", *FAST)
    json.loads(ran.out)
    events = [json.loads(line)["event"] for line in ran.err.splitlines()]
    assert events == ["run started", "references found", "run finished"]


def test_a_rule_that_never_applies_is_said_on_stderr_and_in_the_report(
    tdgc: Any, sim: Simulator, tmp_path: Path
) -> None:
    sim.seed("web-api", registered_at=None)
    policy = write_policy(tmp_path, '[[rules]]\nfamilies = ["*"]\n[[rules]]\nfamilies = ["web-*"]\nname = "web"\n')
    ran = tdgc("plan", policy, "--output", "json", *FAST)
    warning = f"{policy}: rule web never applies: * before it already covers its families"
    assert ran.code == 0 and ran.err.splitlines()[0] == f"tdgc: warning: {warning}"
    assert warning in ran.json()["notes"]
