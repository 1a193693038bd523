"""tdgc's reading of ECS's answers, on answers written in the exact shape AWS sends (tests/fixtures/ecs).

Each fixture is wire JSON. botocore's own JSON parser turns it into what a client returns, and botocore's
Stubber, which checks a response against the output model before it hands it out, gives it to tdgc: no
simulator decides what these answers look like, so none of its guesses is shared with the code.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.parsers import create_parser
from botocore.stub import ANY, Stubber

from tdgc.collect.act import Actor
from tdgc.collect.scan import STATUSES, Scanner
from tdgc.model import Action, Decision, Outcome, Result, Revision, Status

FIXTURES = Path(__file__).parent / "fixtures" / "ecs"
ARN = "arn:aws:ecs:us-west-2:111122223333:task-definition/"


@pytest.fixture
def ecs() -> Any:
    return boto3.client("ecs", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x")


def deleting(ecs: Any) -> dict[str, Any]:
    return answer(ecs, "DescribeTaskDefinition", "describe_deleting.json")


def answer(ecs: Any, operation: str, name: str) -> dict[str, Any]:
    """The fixture as botocore's parser reads it off the wire for `operation`."""
    shape = ecs.meta.service_model.operation_model(operation).output_shape
    wire = {"body": (FIXTURES / name).read_bytes(), "headers": {}, "status_code": 200}
    parsed: dict[str, Any] = create_parser("json").parse(wire, shape)
    parsed.pop("ResponseMetadata", None)
    return parsed


def test_every_fixture_is_wire_json_that_fits_the_model(ecs: Any) -> None:
    operations = {
        "list": "ListTaskDefinitions",
        "describe": "DescribeTaskDefinition",
        "delete": "DeleteTaskDefinitions",
        "deregister": "DeregisterTaskDefinition",
    }
    files = sorted(FIXTURES.glob("*.json"))
    assert len(files) == 7
    for path in files:
        operation = operations[path.stem.split("_")[0]]
        raw = json.loads(path.read_text())
        parsed = answer(ecs, operation, path.name)
        assert set(parsed) == set(raw), f"{path.name}: a field the model does not have"
        with Stubber(ecs) as stubber:  # validates against the output model, as for every stubbed answer
            stubber.add_response(_method(operation), parsed)


def _method(operation: str) -> str:
    import botocore

    return str(botocore.xform_name(operation))


def test_the_scan_counts_a_revision_listed_twice_once_and_leaves_out_those_being_deleted(ecs: Any) -> None:
    pages = {
        "ACTIVE": ["list_active.json", "list_active_shifted.json"],
        "INACTIVE": ["list_inactive.json"],
        "DELETE_IN_PROGRESS": ["list_deleting.json"],
    }
    with Stubber(ecs) as stubber:
        for status, names in pages.items():
            token = None
            for name in names:
                expected = {"status": status, "maxResults": 100, **({"nextToken": token} if token else {})}
                page = answer(ecs, "ListTaskDefinitions", name)
                stubber.add_response("list_task_definitions", page, expected)
                token = page.get("nextToken")
        listed = {f: {s: list(lists[s].numbers) for s in STATUSES} for f, lists in Scanner(ecs).revision_lists()}
        stubber.assert_no_pending_responses()
    assert listed == {
        "etl-daily": {Status.ACTIVE: [8, 7], Status.INACTIVE: [3, 2]},  # 1 is being deleted; 8 came twice
        "web": {Status.ACTIVE: [4, 3], Status.INACTIVE: []},
    }, "old-job, whose one revision is being deleted, has nothing left to decide"


def act(ecs: Any, decisions: list[Decision]) -> list[Outcome]:
    """The decisions carried out by tdgc's actor, which reads a revision back as the scan describes it."""
    scanner = Scanner(ecs)
    actor = Actor(ecs, "us-west-2", describe=lambda arn: scanner.revision(arn, Status.INACTIVE, describe=True))
    try:
        return actor.act(decisions)
    finally:
        actor.close()


def _delete(number: int) -> Decision:
    rev = Revision(f"{ARN}etl-daily:{number}", "etl-daily", number, Status.INACTIVE)
    return Decision(rev, Action.DELETE, "deregistered 200 days ago ≥ 180 days")


def test_a_delete_answer_with_failures_is_settled_by_the_revisions_state(ecs: Any) -> None:
    batch = [_delete(3), _delete(2), _delete(1)]
    with Stubber(ecs) as stubber:
        stubber.add_response(
            "delete_task_definitions",
            answer(ecs, "DeleteTaskDefinitions", "delete_mixed.json"),
            {"taskDefinitions": [d.revision.arn for d in batch]},
        )
        # Each failure is read back: 2 is being deleted (pending), 1 is gone (ECS finished: done).
        stubber.add_response(
            "describe_task_definition", deleting(ecs), {"taskDefinition": f"{ARN}etl-daily:2", "include": ["TAGS"]}
        )
        gone = {"taskDefinition": f"{ARN}etl-daily:1", "include": ["TAGS"]}
        stubber.add_client_error(
            "describe_task_definition", "ClientException", "Unable to describe task definition.", expected_params=gone
        )
        outcomes = act(ecs, batch)
        stubber.assert_no_pending_responses()
    assert outcomes == [
        Outcome(f"{ARN}etl-daily:3", Action.DELETE, Result.PENDING),
        Outcome(f"{ARN}etl-daily:2", Action.DELETE, Result.PENDING),
        Outcome(f"{ARN}etl-daily:1", Action.DELETE, Result.DONE),
    ]


def test_a_deregister_answer_without_its_time_is_done(ecs: Any) -> None:
    rev = Revision(f"{ARN}web:3", "web", 3, Status.ACTIVE)
    with Stubber(ecs) as stubber:
        stubber.add_response(
            "deregister_task_definition",
            answer(ecs, "DeregisterTaskDefinition", "deregister_without_time.json"),
            {"taskDefinition": rev.arn},
        )
        outcomes = act(ecs, [Decision(rev, Action.DEREGISTER, "registered 400 days ago ≥ 30 days")])
        stubber.assert_no_pending_responses()
    assert outcomes == [Outcome(rev.arn, Action.DEREGISTER, Result.DONE)]


def test_a_deregister_refused_for_a_revision_being_deleted_is_pending(ecs: Any) -> None:
    rev = Revision(f"{ARN}etl-daily:2", "etl-daily", 2, Status.ACTIVE)
    with Stubber(ecs) as stubber:
        stubber.add_client_error(
            "deregister_task_definition",
            "ClientException",
            "The specified task definition is in the process of being deleted.",
        )
        stubber.add_response("describe_task_definition", deleting(ecs), {"taskDefinition": rev.arn, "include": ANY})
        outcomes = act(ecs, [Decision(rev, Action.DEREGISTER, "registered 400 days ago ≥ 30 days")])
        stubber.assert_no_pending_responses()
    assert outcomes == [Outcome(rev.arn, Action.DEREGISTER, Result.PENDING)]


def test_a_described_revision_being_deleted_keeps_its_times_and_tags(ecs: Any) -> None:
    with Stubber(ecs) as stubber:
        stubber.add_response("describe_task_definition", deleting(ecs))
        rev = Scanner(ecs).revision(f"{ARN}etl-daily:2", Status.INACTIVE, describe=True)
    assert rev is not None and rev.status is Status.DELETE_IN_PROGRESS
    assert rev.registered_at == datetime(2024, 1, 2, 0, 0, 0, 123000, tzinfo=UTC)
    assert rev.deregistered_at is not None and rev.tags == {"team": "data"}
