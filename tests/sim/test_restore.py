"""Archive, delete, restore: the registered content equals the archived one; bad archives change nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tdgc.collect.archive import document
from tdgc.collect.restore import parse, register_fields
from tdgc.errors import UsageError
from tdgc.local.simulator import Simulator
from tests.helpers import FAST, write_policy

RICH = {
    "family": "etl",
    "taskRoleArn": "arn:aws:iam::123456789012:role/etl-task",
    "executionRoleArn": "arn:aws:iam::123456789012:role/etl-exec",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "512",
    "memory": "1024",
    "containerDefinitions": [
        {
            "name": "etl",
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/etl:2026-11-01",
            "essential": True,
            "environment": [{"name": "STAGE", "value": "prod"}],
            "command": ["python", "-m", "etl"],
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/etl"}},
        }
    ],
    "volumes": [{"name": "scratch"}],
    "tags": [{"key": "team", "value": "data"}, {"key": "cost-center", "value": "42"}],
}
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
    good.write_text(
        json.dumps(
            {
                "taskDefinition": {"family": "a", "containerDefinitions": [{"name": "a", "image": "b", "memory": 64}]},
                "tags": [],
            }
        )
    )
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


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("missing.json", "no such file"),
        (".", "is a directory"),
        ("s3://no-such-bucket/x.json", "cannot read"),
        ("s3://bucket-only", "expected s3://BUCKET/KEY"),
    ],
)
def test_unreadable_archives(
    source: str, fragment: str, tdgc: Any, sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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
    {
        "taskDefinition": st.fixed_dictionaries(
            {}, optional={"family": json_values | st.just("fam"), "containerDefinitions": json_values}
        )
    },
    optional={"tags": json_values, "tdgc": json_values},
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_values | archive_like)
def test_any_json_is_an_archive_or_a_usage_error(doc: Any) -> None:
    try:
        archived = parse(doc, "f.json")
    except UsageError as exc:
        assert str(exc).startswith("f.json: ") and "\n" not in str(exc)
    else:
        assert archived.family and set(archived.arguments) <= register_fields()


# ---- issue #13: every archive is checked against botocore's model, the account and the region ---------------

OTHER_ACCOUNT = "111111111111"


def archive_file(
    tmp_path: Path, name: str, *, account: str = "123456789012", region: str = "us-east-1", **changes: Any
) -> str:
    """An archive as tdgc writes one (tdgc.collect.archive.document), of a revision of family `name`."""
    arn = f"arn:aws:ecs:{region}:{account}:task-definition/{name}:1"
    td = {
        "family": name,
        "taskDefinitionArn": arn,
        "revision": 1,
        "status": "INACTIVE",
        "containerDefinitions": [{"name": name, "image": "repo/app:1", "memory": 64}],
        **changes,
    }
    path = tmp_path / f"{name}.json"
    path.write_bytes(document(arn, {"taskDefinition": td, "tags": []}, region))
    return str(path)


def refused(ran: Any, sim: Simulator, *fragments: str) -> None:
    """Exit 2, one line on stderr naming what is wrong, no traceback, nothing on stdout, nothing registered."""
    assert ran.code == 2, ran.err
    assert ran.out == "" and len(ran.err.strip().splitlines()) == 1, ran.err
    assert ran.err.startswith("tdgc: ") and "Traceback" not in ran.err and "internal error" not in ran.err
    assert all(f in ran.err for f in fragments), ran.err
    assert sim.mutating_calls() == 0 and sim.count("RegisterTaskDefinition") == 0


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"cpu": 256}, ["Invalid type for parameter cpu", "value: 256"]),
        ({"cpu": "²"}, ["cpu", "ASCII"]),
        ({"memory": "\u0661\u0660\u0662\u0664"}, ["memory", "ASCII"]),
        ({"memory": "1\u00a0GB"}, ["memory", "ASCII"]),
        (
            {"containerDefinitions": [{"name": "b", "image": "x", "memory": True}]},
            ["containerDefinitions[0].memory", "value: True"],
        ),
        ({"containerDefinitions": [{"name": "b", "image": "x", "memry": 64}]}, ["Unknown parameter", '"memry"']),
        (
            {"containerDefinitions": [{"name": "b", "image": "x", "environment": [{"name": "A", "value": "\ud800"}]}]},
            ["containerDefinitions[0].environment[0].value", "not valid Unicode"],
        ),
        (
            {"containerDefinitions": [{"name": "b", "image": "x", "command": ["a\nb"], "memory": "64"}]},
            ["containerDefinitions[0].memory"],
        ),
    ],
)
def test_a_bad_second_archive_registers_nothing(
    changes: dict[str, Any], fragments: list[str], tdgc: Any, sim: Simulator, tmp_path: Path
) -> None:
    good = archive_file(tmp_path, "a")
    bad = archive_file(tmp_path, "b", **changes)
    refused(tdgc("restore", good, bad), sim, f"tdgc: {bad}: ", *fragments)


def test_a_one_line_message_even_when_the_value_has_line_breaks(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    bad = archive_file(tmp_path, "b", containerDefinitions=[{"name": "b", "image": "x", "memory": "6\n4\r\u2028"}])
    refused(tdgc("restore", bad), sim, "value: 6\\n4\\r\\u2028")


@pytest.mark.parametrize("depth", [101, 100_000])
@pytest.mark.parametrize("command", ["restore", "register"])
def test_json_nested_too_deep(depth: int, command: str, tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    nested = "[" * depth + "]" * depth
    path.write_text(f'{{"family": "f", "containerDefinitions": [{{"name": "x", "image": "y"}}], "volumes": {nested}}}')
    refused(tdgc(command, str(path), "--region", "us-east-1"), sim, f"tdgc: {path}: ", "nested more than 100 levels")


def test_a_bad_region_in_a_later_archive_registers_nothing(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    bad = archive_file(tmp_path, "b", region="mars-north-1")
    refused(tdgc("restore", archive_file(tmp_path, "a"), bad), sim, f"tdgc: {bad}: unknown AWS region 'mars-north-1'")


def test_a_bad_arn_in_the_header_is_refused(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    path = Path(archive_file(tmp_path, "a"))
    doc = json.loads(path.read_text())
    doc["tdgc"]["arn"] = "not an arn"
    path.write_text(json.dumps(doc))
    refused(tdgc("restore", str(path)), sim, f"tdgc: {path}: ", "tdgc.arn", "not a task-definition ARN")


def test_another_accounts_archive_needs_a_flag(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    ours, theirs = archive_file(tmp_path, "a"), archive_file(tmp_path, "b", account=OTHER_ACCOUNT)
    refused(
        tdgc("restore", ours, theirs),
        sim,
        f"tdgc: {theirs}: ",
        f"account {OTHER_ACCOUNT}",
        "account 123456789012",
        "--into-another-account",
    )
    assert sim.count("GetCallerIdentity") == 1

    ran = tdgc("restore", ours, theirs, "--into-another-account")
    assert ran.code == 0, ran.err
    assert ran.out.splitlines() == [f"arn:aws:ecs:us-east-1:123456789012:task-definition/{f}:1" for f in "ab"]
    lines = ran.err.strip().splitlines()
    assert lines[0] == f"restored {ours} as arn:aws:ecs:us-east-1:123456789012:task-definition/a:1"
    assert lines[1] == (
        f"restored {theirs} as arn:aws:ecs:us-east-1:123456789012:task-definition/b:1 "
        f"(archived in account {OTHER_ACCOUNT})"
    )


def test_another_regions_archive_is_restored_where_asked_and_says_so(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    path = archive_file(tmp_path, "a", region="eu-west-1")
    ran = tdgc("restore", path, "--region", "us-east-1")
    assert ran.code == 0, ran.err
    arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/a:1"
    assert ran.out.strip() == arn
    assert ran.err.strip() == f"restored {path} as {arn} (archived in eu-west-1)"
    assert [td.arn for td in sim.revisions(region="us-east-1")] == [arn]

    home = tdgc("restore", path)  # no --region: the region it came from
    assert home.code == 0, home.err
    assert home.out.strip() == "arn:aws:ecs:eu-west-1:123456789012:task-definition/a:1"
    assert "archived in" not in home.err


def test_ecs_refusing_a_later_archive_exits_1_and_says_what_was_restored(
    tdgc: Any, sim: Simulator, tmp_path: Path
) -> None:
    a, b, c = (archive_file(tmp_path, name) for name in "abc")
    sim.after(
        "RegisterTaskDefinition",
        lambda: sim.inject("RegisterTaskDefinition", "ClientException", message="Invalid setting"),
    )
    ran = tdgc("restore", a, b, c)
    assert ran.code == 1
    assert ran.out.splitlines() == ["arn:aws:ecs:us-east-1:123456789012:task-definition/a:1"]
    *restored, failed = ran.err.strip().splitlines()
    assert restored == [f"restored {a} as arn:aws:ecs:us-east-1:123456789012:task-definition/a:1"]
    assert (
        failed == f"tdgc: {b}: register failed: ClientException: Invalid setting; 1 restored before it (above); "
        f"not attempted: {c}"
    )
    assert sim.count("RegisterTaskDefinition") == 2


# ---- archives in S3 are read as they were written: from a bucket the expected account owns -------------------


def _archive_in(sim: Simulator, tmp_path: Path, bucket: str, owner: str) -> str:
    sim.create_bucket(bucket, account=owner)
    body = Path(archive_file(tmp_path, "etl")).read_bytes()
    boto3.client("s3", region_name=sim.region).put_object(Bucket=bucket, Key="tdgc/etl/1.json", Body=body)
    return f"s3://{bucket}/tdgc/etl/1.json"


def test_an_s3_archive_is_read_only_from_a_bucket_the_caller_owns(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    """A bucket of that name re-created by another account (or a typo naming one) is not read from."""
    theirs = _archive_in(sim, tmp_path, "planted", OTHER_ACCOUNT)
    refused = tdgc("restore", theirs)
    assert refused.code == 2 and refused.err.count("\n") == 1 and "cannot read" in refused.err
    assert [r.expected_owner for r in sim.s3_requests if r.method == "GET"] == [sim.account_id]
    assert sim.mutating_calls() == 0


def test_an_s3_archive_in_a_named_accounts_bucket(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    central = _archive_in(sim, tmp_path, "central", OTHER_ACCOUNT)
    restored = tdgc("restore", central, "--archive-bucket-owner", OTHER_ACCOUNT)
    assert restored.code == 0, restored.err
    assert restored.out.strip().startswith("arn:aws:ecs:us-east-1:123456789012:task-definition/")
    assert {r.expected_owner for r in sim.s3_requests if r.method == "GET"} == {OTHER_ACCOUNT}


def test_a_malformed_bucket_owner_is_refused_before_any_call(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    ran = tdgc("restore", "s3://central/tdgc/etl/1.json", "--archive-bucket-owner", "12345")
    assert ran.code == 2 and "--archive-bucket-owner" in ran.err and ran.err.count("\n") == 1
    assert sim.s3_requests == [] and sim.mutating_calls() == 0
