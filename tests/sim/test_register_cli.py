"""`tdgc register` and `tdgc usage` as a new user runs them, and `unused_for` in plan and apply."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from freezegun import freeze_time

from tdgc.local.simulator import Simulator
from tdgc.reuse.dynamodb import DynamoStore
from tests.helpers import FAST, NOW, days, write_policy

TASKDEF = {
    "family": "nightly-etl",
    "containerDefinitions": [{"name": "etl", "image": "repo/etl:1", "memory": 512, "essential": True}],
    "tags": [{"key": "team", "value": "data"}],
}


def taskdef(tmp_path: Path, image: str = "repo/etl:1", name: str = "td.json") -> str:
    doc = json.loads(json.dumps(TASKDEF))
    doc["containerDefinitions"][0]["image"] = image
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def revisions(sim: Simulator, family: str = "nightly-etl") -> list[Any]:
    return [td for td in sim.revisions() if td.family == family]


@pytest.mark.parametrize("store", ["tags", "dynamodb://tdgc-usage"])
def test_register_twice_gives_the_same_arn_and_a_new_image_a_new_one(
    tdgc: Any, sim: Simulator, tmp_path: Path, store: str
) -> None:
    first = tdgc("register", taskdef(tmp_path), "--store", store)
    assert first.code == 0, first.err
    arn = first.out.strip()
    assert first.out.count("\n") == 1 and arn.endswith(":task-definition/nightly-etl:1")
    assert first.err.startswith("registered nightly-etl:1: new content (sha256:")

    again = tdgc("register", taskdef(tmp_path), "--store", store)
    assert again.code == 0 and again.out.strip() == arn
    assert again.err.startswith("reused nightly-etl:1: same content")

    changed = tdgc("register", taskdef(tmp_path, image="repo/etl:2"), "--store", store)
    assert changed.code == 0 and changed.out.strip().endswith("/nightly-etl:2")
    assert len(revisions(sim)) == 2 and sim.count("RegisterTaskDefinition") == 2
    tags = boto3.client("ecs", region_name="us-east-1").list_tags_for_resource(resourceArn=arn)["tags"]
    assert {t["key"] for t in tags} == {"team", "tdgc:content-hash"}


def test_a_deregistered_revision_is_not_reused(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    arn = tdgc("register", taskdef(tmp_path), "--store", "dynamodb://tdgc-usage").out.strip()
    boto3.client("ecs", region_name="us-east-1").deregister_task_definition(taskDefinition=arn)
    again = tdgc("register", taskdef(tmp_path), "--store", "dynamodb://tdgc-usage")
    assert again.code == 0 and again.out.strip().endswith("/nightly-etl:2")
    assert "deregistered or deleted since" in again.err


def test_a_copied_hash_tag_is_registered_past_and_named(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    first = tdgc("register", taskdef(tmp_path), "--store", "tags")
    ecs = boto3.client("ecs", region_name="us-east-1")
    digest = next(
        t["value"]
        for t in ecs.list_tags_for_resource(resourceArn=first.out.strip())["tags"]
        if t["key"] == "tdgc:content-hash"
    )
    evil = ecs.register_task_definition(
        family="nightly-etl",
        containerDefinitions=[{"name": "etl", "image": "attacker/etl:evil", "memory": 512}],
        tags=[{"key": "tdgc:content-hash", "value": digest}],
    )
    evil_arn = evil["taskDefinition"]["taskDefinitionArn"]
    again = tdgc("register", taskdef(tmp_path), "--store", "tags")
    assert again.code == 0 and again.out.strip().endswith("/nightly-etl:3")
    assert "reuse.mismatch" in again.err and evil_arn in again.err and "OTHER_CONTENT" in again.err
    assert "registered nightly-etl:3: the stored revision" in again.err


def test_a_keep_tag_gets_a_revision_that_carries_it(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    plain = tdgc("register", taskdef(tmp_path), "--store", "dynamodb://tdgc-usage").out.strip()
    doc = {**TASKDEF, "tags": [*TASKDEF["tags"], {"key": "tdgc:keep", "value": "true"}]}
    (tmp_path / "kept.json").write_text(json.dumps(doc))
    kept = tdgc("register", str(tmp_path / "kept.json"), "--store", "dynamodb://tdgc-usage")
    assert kept.code == 0 and kept.out.strip() != plain and kept.err.startswith("registered nightly-etl:2: new content")
    tags = boto3.client("ecs", region_name="us-east-1").list_tags_for_resource(resourceArn=kept.out.strip())["tags"]
    assert {"key": "tdgc:keep", "value": "true"} in tags
    assert tdgc("register", taskdef(tmp_path), "--store", "dynamodb://tdgc-usage").out.strip() == plain


def test_twenty_concurrent_registrations_make_one_revision(sim: Simulator, tmp_path: Path) -> None:
    """As twenty orchestrator tasks starting at once would: each its own process-like CLI call."""
    path = taskdef(tmp_path)
    arns: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(20)

    def one() -> None:
        from tdgc.aws.connection import connect
        from tdgc.aws.pacing import Pacer
        from tdgc.collect import restore
        from tdgc.reuse.backends import open_store
        from tdgc.reuse.register import register_or_reuse

        try:
            target = connect(None, ("us-east-1",), None)[0]
            args = restore.load(path, request=True).arguments
            store = open_store("dynamodb://tdgc-usage", target)
            start.wait()
            arns.append(register_or_reuse(target.ecs(Pacer({})), args, store).arn)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(arns) == 20 and len(set(arns)) == 1
    assert len(revisions(sim)) == 1 and sim.count("RegisterTaskDefinition") == 1


def test_usage_lists_what_the_store_knows(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    for _ in range(3):
        tdgc("register", taskdef(tmp_path), "--store", "dynamodb://tdgc-usage")
    tdgc("register", taskdef(tmp_path, image="repo/etl:2"), "--store", "dynamodb://tdgc-usage")
    listed = tdgc("usage", "--store", "dynamodb://tdgc-usage", "--output", "json")
    assert listed.code == 0, listed.err
    records = json.loads(listed.out)
    assert [(r["revision"], r["use_count"]) for r in records] == [(1, 3), (2, 1)]
    assert all(r["last_used"] and r["hash"].startswith("sha256:") for r in records)
    table = tdgc("usage", "--store", "dynamodb://tdgc-usage")
    assert "nightly-etl:1" in table.out and "2 contents in dynamodb://tdgc-usage" in table.err


def test_usage_of_a_missing_table_changes_nothing(tdgc: Any, sim: Simulator) -> None:
    ran = tdgc("usage", "--store", "dynamodb://nope")
    assert ran.code == 2 and ran.err.startswith("tdgc: --store dynamodb://nope: cannot read it (")
    assert len(ran.err.strip().splitlines()) == 1 and "Traceback" not in ran.err
    assert boto3.client("dynamodb", region_name="us-east-1").list_tables()["TableNames"] == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ('["a list"]', "not a task definition"),
        ('{"containerDefinitions": [{"name": "x", "image": "y"}]}', "family is missing"),
        ('{"family": "f"}', "containerDefinitions must be a non-empty list"),
        (
            '{"family": "f", "containerDefinitions": [{"name": "x", "image": "y"}], "imagee": 1}',
            "not a task-definition field: imagee",
        ),
    ],
)
def test_bad_task_definitions_are_one_line_and_exit_2(
    tdgc: Any, sim: Simulator, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "td.json"
    path.write_text(content)
    ran = tdgc("register", str(path))
    assert ran.code == 2 and ran.out == "" and message in ran.err and len(ran.err.strip().splitlines()) == 1
    assert sim.mutating_calls() == 0


def test_bad_store_and_missing_file_are_refused(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    bad = tdgc("register", taskdef(tmp_path), "--store", "redis://x")
    assert bad.code == 2 and "expected tags or dynamodb://TABLE" in bad.err
    missing = tdgc("register", str(tmp_path / "nope.json"))
    assert missing.code == 2 and "no such file" in missing.err
    assert sim.mutating_calls() == 0


# ---- unused_for: retention by last use --------------------------------------------------------------------

UNUSED_POLICY = """\
[defaults]
keep_last = 1
unused_for = "90 days"

[usage]
store = "dynamodb://tdgc-usage"
"""


def registered_on(tdgc: Any, tmp_path: Path, image: str, when: Any) -> str:
    with freeze_time(when):
        ran = tdgc(
            "register",
            taskdef(tmp_path, image=image, name=f"{image.replace('/', '_')}.json"),
            "--store",
            "dynamodb://tdgc-usage",
        )
    assert ran.code == 0, ran.err
    return str(ran.out.strip())


def test_unused_for_deregisters_what_was_last_used_long_ago(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    unseen = sim.seed("nightly-etl", registered_at=NOW - days(400))  # the store never saw it: the other rules
    recent = registered_on(tdgc, tmp_path, "repo/etl:2", NOW - days(300))
    stale = registered_on(tdgc, tmp_path, "repo/etl:1", NOW - days(200))
    assert registered_on(tdgc, tmp_path, "repo/etl:2", NOW - days(5)) == recent  # used again lately: kept
    newest = registered_on(tdgc, tmp_path, "repo/etl:3", NOW - days(1))
    policy = write_policy(tmp_path, UNUSED_POLICY)

    before = sim.mutating_calls()
    with freeze_time(NOW):
        planned = tdgc("plan", policy, "--output", "json", *FAST)
    assert planned.code == 0, planned.err
    reasons = {d["arn"]: (d["action"], d["reason"]) for d in planned.json()["decisions"]}
    assert reasons[stale] == ("deregister", "last used 200 days ago ≥ 90 days")
    assert reasons[recent] == ("keep", "last used 5 days ago < 90 days")
    assert reasons[newest] == ("keep", "newest kept")
    assert reasons[unseen] == ("deregister", "not among the newest 1 ACTIVE")
    assert sim.mutations[before:] == [], "plan changed nothing, the usage store included"

    with freeze_time(NOW):
        applied = tdgc("apply", policy, "--yes", "--output", "json", *FAST)
    assert applied.code == 0, applied.err
    status = {td.arn: td.status for td in revisions(sim)}
    assert status[stale] == "INACTIVE" and status[unseen] == "INACTIVE"
    assert status[recent] == "ACTIVE" and status[newest] == "ACTIVE"


def test_unused_for_needs_a_store_and_a_readable_one(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    no_store = tdgc("plan", write_policy(tmp_path, '[defaults]\nunused_for = "90 days"\n'), *FAST)
    assert no_store.code == 2 and "unused_for needs a usage store" in no_store.err and ":2" in no_store.err
    missing = tdgc("plan", write_policy(tmp_path, UNUSED_POLICY, name="p2.toml"), *FAST)
    assert missing.code == 2 and "usage store dynamodb://tdgc-usage: cannot read it" in missing.err
    assert boto3.client("dynamodb", region_name="us-east-1").list_tables()["TableNames"] == []


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"cpu": "²"}, ["cpu", "ASCII"]),
        ({"cpu": "\u0661 vCPU"}, ["cpu", "ASCII"]),
        ({"cpu": 256}, ["ECS would refuse it: Invalid type for parameter cpu"]),
        (
            {"containerDefinitions": [{"name": "x", "image": "y", "memory": "512"}]},
            ["Invalid type for parameter containerDefinitions[0].memory"],
        ),
        (
            {
                "containerDefinitions": [
                    {"name": "x", "image": "y", "portMappings": [{"containerPort": 80, "hostPrt": 1}]}
                ]
            },
            ['Unknown parameter in containerDefinitions[0].portMappings[0]: "hostPrt"'],
        ),
        (
            {"containerDefinitions": [{"name": "x", "image": "y", "dockerLabels": {"\udc80": "v"}}]},
            ["containerDefinitions[0].dockerLabels", "not valid Unicode"],
        ),
        ({"tags": [{"key": "", "value": "data"}]}, ["Invalid length for parameter tags[0].key", "valid min length: 1"]),
        (
            {"containerDefinitions": [{"name": "x", "image": "y", "memory": "64"}], "cpu": 256},
            ["Invalid type for parameter containerDefinitions[0].memory", "valid types: <class 'int'> (and 1 more)"],
        ),
    ],
)
@pytest.mark.parametrize("store", ["tags", "dynamodb://tdgc-usage"])
def test_what_botocore_or_tdgc_would_refuse_is_one_line_and_exit_2(
    tdgc: Any, sim: Simulator, tmp_path: Path, changes: dict[str, Any], fragments: list[str], store: str
) -> None:
    path = tmp_path / "td.json"
    path.write_text(json.dumps({**TASKDEF, **changes}))
    ran = tdgc("register", str(path), "--store", store)
    assert ran.code == 2 and ran.out == "", ran.err
    assert len(ran.err.strip().splitlines()) == 1 and ran.err.startswith(f"tdgc: {path}: "), ran.err
    assert "Traceback" not in ran.err and "internal error" not in ran.err
    assert all(f in ran.err for f in fragments), ran.err
    assert sim.mutating_calls() == 0
    assert boto3.client("dynamodb", region_name="us-east-1").list_tables()["TableNames"] == []


@pytest.mark.parametrize("store", ["tags", "dynamodb://tdgc-usage"])
def test_what_ecs_refuses_is_one_line_and_exit_2(tdgc: Any, sim: Simulator, tmp_path: Path, store: str) -> None:
    path = tmp_path / "td.json"
    path.write_text(json.dumps({**TASKDEF, "containerDefinitions": [{"name": "etl", "image": "repo/etl:1"}]}))
    ran = tdgc("register", str(path), "--store", store)
    assert ran.code == 2 and ran.out == "", ran.err
    assert ran.err.startswith(f"tdgc: {path}: register failed: ClientException: Invalid setting for container 'etl'")
    assert len(ran.err.strip().splitlines()) == 1 and "internal error" not in ran.err
    assert revisions(sim) == []


def test_a_revision_handed_out_after_the_run_began_is_not_deregistered(
    tdgc: Any, sim: Simulator, tmp_path: Path
) -> None:
    stale = registered_on(tdgc, tmp_path, "repo/etl:1", NOW - days(200))
    newest = registered_on(tdgc, tmp_path, "repo/etl:3", NOW - days(1))
    store = DynamoStore(boto3.client("dynamodb", region_name="us-east-1"), "tdgc-usage")
    [record] = [r for r in store.records() if r.arn == stale]

    def handed_out() -> None:  # `tdgc register` reuses it while the apply lists the account
        store.record_use(record, now=NOW, who="airflow", how="found")

    sim.after("ListTaskDefinitions", handed_out)
    with freeze_time(NOW):
        applied = tdgc("apply", write_policy(tmp_path, UNUSED_POLICY), "--yes", "--output", "json", *FAST)
    assert applied.code == 0, applied.err
    [outcome] = [o for o in applied.json()["outcomes"] if o["arn"] == stale]
    assert (outcome["result"], outcome["error"]) == (
        "skipped",
        f"used since the decision (last used {NOW.isoformat()})",
    )
    status = {td.arn: td.status for td in revisions(sim)}
    assert status[stale] == "ACTIVE" and status[newest] == "ACTIVE"
