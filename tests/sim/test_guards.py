"""Fail closed on unreadable references, and the blast-radius guards."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from moto.codedeploy.models import codedeploy_backends

from tdgc.collect.run import RunOptions, run
from tdgc.local.simulator import Simulator
from tdgc.policy import load_policy
from tdgc.report.writers import JsonWriter
from tests.account import POLICY, Expected
from tests.helpers import FAST, NOW, Ran, write_policy


@pytest.fixture
def account_with_services(account: Expected, sim: Simulator) -> Expected:
    """The shared account, plus something for every reference source to read: a cluster, a service deployed to
    web's two newest revisions (kept anyway) so that there is history, an Express service, a CodeDeploy app."""
    sim.backend().create_cluster("prod")
    sim.backend().create_service("prod", "web", desired_count=1, task_definition_str="web:12")
    sim.backend().update_service({"cluster": "prod", "service": "web", "task_definition": "web:13"})
    sim.express_service("api", "web:13", cluster="prod")
    codedeploy = codedeploy_backends[sim.account_id][sim.region]
    codedeploy.create_application("app", "ECS", [])
    codedeploy.create_deployment_group("app", "blue-green", None, None, None, None, "arn:aws:iam::1:role/cd")
    return account


def apply(tdgc: Any, tmp_path: Path, *args: str, policy: str = POLICY) -> Ran:
    ran: Ran = tdgc("apply", write_policy(tmp_path, policy), "--yes", "--output", "json", *args, *FAST)
    return ran


@pytest.mark.parametrize(
    ("operation", "code", "source"),
    [
        ("ListServices", "AccessDeniedException", "services"),
        ("ListServiceDeployments", "AccessDeniedException", "rollback"),
        ("DescribeServiceRevisions", "AccessDeniedException", "rollback"),
        ("ListTasks", "AccessDeniedException", "tasks"),
        ("ListEventBuses", "AccessDeniedException", "rules"),
        ("ListSchedules", "ThrottlingException", "schedules"),  # a throttle that outlasts the retries
        ("ListPipes", "AccessDeniedException", "pipes"),
        ("ListStateMachines", "UnknownOperationException", "state_machines"),  # the service is missing here
        ("ListStacks", "AccessDenied", "stacks"),
        ("DescribeExpressGatewayService", "AccessDeniedException", "express_services"),
        ("ListApplications", "AccessDeniedException", "codedeploy"),
        ("BatchGetDeploymentGroups", "AccessDeniedException", "codedeploy"),
    ],
)
@pytest.mark.slow
def test_apply_fails_closed_when_a_source_cannot_be_read(
    operation: str,
    code: str,
    source: str,
    tdgc: Any,
    sim: Simulator,
    account_with_services: Expected,
    tmp_path: Path,
    fast_retries: None,
) -> None:
    sim.inject(operation, code, times=-1, message="not for you")
    ran = apply(tdgc, tmp_path)
    assert ran.code == 3
    assert sim.mutating_calls() == 0, "nothing mutated in a region whose references are incomplete"
    assert "us-east-1: apply refused: references could not be read" in ran.err
    report = ran.json()
    assert any(f"{source}: {code}: not for you (fix: grant " in line for line in report["incomplete"])
    assert any("--skip-reference" in note and "--accept-incomplete-references" in note for note in report["notes"])
    assert report["outcomes"] == []
    assert report["summary"]["delete"] == len(account_with_services.of("delete"))

    plan = tdgc("plan", write_policy(tmp_path, POLICY), "--output", "table", *FAST)
    assert plan.code == 0 and "INCOMPLETE: some references could not be read" in plan.out

    # rollback reads the services too, and express_services lists them: skipping what cannot be read means
    # skipping all three.
    also = ["--skip-reference", "rollback", "--skip-reference", "express_services"] if source == "services" else []
    skipped = apply(tdgc, tmp_path, "--skip-reference", source, *also)
    assert skipped.code == 0 and skipped.json()["incomplete"] == []
    assert sim.mutating_calls() > 0


def test_accepting_incomplete_references_is_explicit(
    tdgc: Any, sim: Simulator, account_with_services: Expected, tmp_path: Path
) -> None:
    sim.inject("ListStacks", "AccessDenied", times=-1)
    ran = apply(tdgc, tmp_path, "--accept-incomplete-references")
    assert ran.code == 0 and ran.json()["incomplete"] and sim.mutating_calls() > 0
    sim.clear_faults()


@pytest.mark.slow
def test_max_actions_defers_the_rest_and_the_next_run_goes_on(
    tdgc: Any, sim: Simulator, account_with_services: Expected, tmp_path: Path
) -> None:
    total = len(account_with_services.of("deregister")) + len(account_with_services.of("delete"))
    first = apply(tdgc, tmp_path, "--max-actions", "25")
    assert first.code == 0
    results = [o["result"] for o in first.json()["outcomes"]]
    assert sum(r in ("done", "pending") for r in results) == 25
    assert sum(r == "skipped" for r in results) == total - 25
    assert all(
        o["error"] == "deferred: max_actions reached" for o in first.json()["outcomes"] if o["result"] == "skipped"
    )
    acted = [p for op, p in sim.mutations]
    assert sum(len(p.get("taskDefinitions", [1])) for p in acted) == 25
    with freeze_time(NOW):
        second = apply(tdgc, tmp_path, policy=POLICY + "[safety]\nmax_actions = 1000\n")
    assert second.code == 0
    assert sum(o["result"] in ("done", "pending") for o in second.json()["outcomes"]) == total - 25


def test_require_archive(tdgc: Any, sim: Simulator, account_with_services: Expected, tmp_path: Path) -> None:
    policy = POLICY + "[safety]\nrequire_archive = true\n"
    ran = apply(tdgc, tmp_path, policy=policy)
    assert ran.code == 3 and ran.out == ""
    assert ran.err.strip() == (
        "tdgc: the policy requires an archive (require_archive = true): pass --archive DIR or s3://..."
    )
    assert sim.calls.total() == 0
    assert apply(tdgc, tmp_path, "--archive", str(tmp_path / "a"), policy=policy).code == 0


def test_a_family_is_never_left_without_an_active_revision_unless_allowed(
    tdgc: Any, sim: Simulator, tmp_path: Path
) -> None:
    for family in ("a", "b"):
        for _ in range(3):
            sim.seed(family, registered_at=None)
    policy = '[defaults]\nkeep_last = 0\n[[rules]]\nfamilies = ["b"]\nallow_deregister_all = true\n'
    report = apply(tdgc, tmp_path, policy=policy).json()
    actions = {(d["family"], d["revision"]): d["action"] for d in report["decisions"]}
    assert actions == {
        ("a", 3): "keep",
        ("a", 2): "deregister",
        ("a", 1): "deregister",
        ("b", 3): "deregister",
        ("b", 2): "deregister",
        ("b", 1): "deregister",
    }


@pytest.mark.slow
def test_apply_refuses_a_plan_that_differs_from_the_reviewed_one(
    tdgc: Any, sim: Simulator, account_with_services: Expected, tmp_path: Path
) -> None:
    policy = write_policy(tmp_path, POLICY)
    reviewed = tmp_path / "plan.json"
    with freeze_time(NOW):
        assert tdgc("plan", policy, "--output", "json", "--report", str(reviewed), *FAST).code == 0
        sim.seed("big", registered_at=NOW)  # a deploy since the review: big:296 is now beyond keep_last
        refused = tdgc("apply", policy, "--yes", "--plan", str(reviewed), *FAST)
    assert refused.code == 3 and sim.mutating_calls() == 0
    assert refused.err.strip().startswith("tdgc: the plan differs from the reviewed one: 1 action(s) new, 0 no longer")
    assert "deregister arn:aws:ecs:us-east-1:123456789012:task-definition/big:296" in refused.err

    with freeze_time(NOW):
        assert tdgc("plan", policy, "--output", "json", "--report", str(reviewed), *FAST).code == 0
        applied = tdgc("apply", policy, "--yes", "--plan", str(reviewed), "--output", "json", *FAST)
    assert applied.code == 0
    planned = {d["arn"]: d["action"] for d in json.loads(reviewed.read_text())["decisions"] if d["action"] != "keep"}
    assert {o["arn"]: o["action"] for o in applied.json()["outcomes"]} == planned


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{}",
        '{"version": 1, "mode": "apply", "decisions": []}',
        "[1]",
        '{"version": 1, "mode": "plan", "decisions": [{"arn": "x"}]}',
    ],
)
def test_a_bad_plan_file_is_refused(
    content: str, tdgc: Any, sim: Simulator, account_with_services: Expected, tmp_path: Path
) -> None:
    path = tmp_path / "plan.json"
    path.write_text(content)
    ran = tdgc("apply", "--yes", "--plan", str(path), *FAST)
    assert ran.code == 2 and ran.err.startswith(f"tdgc: --plan {path}: not a plan") and len(ran.err.splitlines()) == 1
    assert sim.mutating_calls() == 0


def test_a_source_failing_at_every_refresh_is_reported_once(
    sim: Simulator, account_with_services: Expected, tmp_path: Path
) -> None:
    sim.inject("ListStacks", "AccessDenied", times=-1)
    # Two families of several pages each, not the account's hundreds of small ones: a dozen refreshes make the point.
    policy = replace(load_policy(write_policy(tmp_path, POLICY)), rates={}, only_families=("big", "web"))
    out = io.StringIO()
    run(RunOptions(policy=policy, references_max_age=0.0), [JsonWriter(out)], now=NOW)  # re-read after every page
    assert sim.count("ListStacks") > 5
    incomplete = json.loads(out.getvalue())["incomplete"]
    assert len(incomplete) == 1 and incomplete[0].startswith("us-east-1: references incomplete: stacks: AccessDenied")
