"""Archive, delete, restore: the registered content equals the archived one; bad archives change nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tdgc.errors import UsageError
from tdgc.restore import parse, register_fields
from tdgc.simulator import Simulator

from .conftest import FAST, write_policy

RICH = {
    "family": "etl",
    "taskRoleArn": "arn:aws:iam::123456789012:role/etl-task",
    "executionRoleArn": "arn:aws:iam::123456789012:role/etl-exec",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "512",
    "memory": "1024",
    "containerDefinitions": [{
        "name": "etl", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/etl:2026-11-01", "essential": True,
        "environment": [{"name": "STAGE", "value": "prod"}], "command": ["python", "-m", "etl"],
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/etl"}},
    }],
    "volumes": [{"name": "scratch"}],
    "tags": [{"key": "team", "value": "data"}, {"key": "cost-center", "value": "42"}],
}  # fmt: skip
POLICY = '[defaults]\nkeep_last = 1\ndelete_after = "0 days"\nprotect_tags = {}\n'


def registered_content(ecs: Any, arn: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    answer = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    td = {k: v for k, v in answer["taskDefinition"].items() if k in register_fields()}
    return td, sorted(answer.get("tags", []), key=lambda t: t["key"])


@pytest.mark.parametrize("where", ["dir", "s3"])
def test_round_trip(where: str, tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    ecs = boto3.client("ecs", region_name="us-east-1")
    old = ecs.register_task_definition(**RICH)["taskDefinition"]["taskDefinitionArn"]
    ecs.register_task_definition(family="etl", containerDefinitions=[{"name": "etl", "image": "x", "memory": 64}])
    ecs.deregister_task_definition(taskDefinition=old)
    original = registered_content(ecs, old)
    if where == "s3":
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="td-archive")
        archive, archived = "s3://td-archive/tdgc/", "s3://td-archive/tdgc/123456789012/us-east-1/etl/1.json"
    else:
        archive = str(tmp_path / "archive")
        archived = str(tmp_path / "archive" / "123456789012" / "us-east-1" / "etl" / "1.json")

    applied = tdgc("apply", write_policy(tmp_path, POLICY), "--yes", "--archive", archive, "--output", "json", *FAST)
    assert applied.code == 0, applied.err
    assert [o["arn"] for o in applied.json()["outcomes"]] == [old]
    assert ecs.describe_task_definition(taskDefinition=old)["taskDefinition"]["status"] == "DELETE_IN_PROGRESS"

    restored = tdgc("restore", archived)
    assert restored.code == 0, restored.err
    new = restored.out.strip()
    assert new == "arn:aws:ecs:us-east-1:123456789012:task-definition/etl:3"
    assert f"restored {archived} as {new}" in restored.err
    content, tags = registered_content(ecs, new)
    assert (content, tags) == original
    assert content["containerDefinitions"][0]["environment"] == [{"name": "STAGE", "value": "prod"}]


def test_restore_checks_every_file_before_registering_any(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"taskDefinition": {"family": "a", "containerDefinitions": [
        {"name": "a", "image": "b", "memory": 64}]}, "tags": []}))  # fmt: skip
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    ran = tdgc("restore", str(good), str(bad), "--region", "us-east-1")
    assert ran.code == 2 and ran.out == "" and ran.err.startswith(f"tdgc: {bad}: not JSON")
    assert sim.mutating_calls() == 0


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "not a tdgc archive"),
        (b'{"tags": []}', "not a tdgc archive"),
        (b'{"taskDefinition": {"containerDefinitions": [{}]}}', "taskDefinition.family is missing"),
        (b'{"taskDefinition": {"family": "a", "containerDefinitions": []}}', "non-empty list"),
        (b'{"taskDefinition": {"family": "a", "containerDefinitions": "x"}}', "non-empty list"),
        (b'{"taskDefinition": {"family": "a", "containerDefinitions": [{}]}, "tags": [{"k": 1}]}', "tags must be"),
        (b'{"taskDefinition": {"family": "a", "containerDefinitions": [{"image": 5}]}}', "ECS would refuse it"),
    ],
)
def test_malformed_archives(content: bytes, fragment: str, tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    path = tmp_path / "archived.json"
    path.write_bytes(content)
    ran = tdgc("restore", str(path), "--region", "us-east-1")
    assert ran.code == 2 and ran.out == ""
    assert len(ran.err.strip().splitlines()) == 1 and fragment in ran.err and "Traceback" not in ran.err
    assert sim.mutating_calls() == 0


@pytest.mark.parametrize(("source", "fragment"), [("missing.json", "no such file"), (".", "is a directory"),
                                                  ("s3://no-such-bucket/x.json", "cannot read"),
                                                  ("s3://bucket-only", "expected s3://BUCKET/KEY")])  # fmt: skip
def test_unreadable_archives(source: str, fragment: str, tdgc: Any, sim: Simulator, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    ran = tdgc("restore", source, "--region", "us-east-1")
    assert ran.code == 2 and fragment in ran.err and len(ran.err.strip().splitlines()) == 1
    assert sim.mutating_calls() == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
archive_like = st.fixed_dictionaries(
    {"taskDefinition": st.fixed_dictionaries({}, optional={"family": json_values | st.just("fam"),
                                                           "containerDefinitions": json_values})},
    optional={"tags": json_values, "tdgc": json_values},
)  # fmt: skip


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_values | archive_like)
def test_any_json_is_an_archive_or_a_usage_error(doc: Any) -> None:
    try:
        archived = parse(doc, "f.json")
    except UsageError as exc:
        assert str(exc).startswith("f.json: ") and "\n" not in str(exc)
    else:
        assert archived.family and set(archived.arguments) <= register_fields()
