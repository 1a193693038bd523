"""Terraform and OpenTofu state: what a state names, read from files and S3, and the source failing closed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tdgc.aws.connection import Connection
from tdgc.aws.pacing import Pacer
from tdgc.collect.references import discover
from tdgc.collect.tfstate import Named, StateError, States, names_in
from tdgc.local.simulator import Simulator
from tests.account import POLICY, Expected
from tests.helpers import FAST, Ran, write_policy

ACCOUNT = "123456789012"


def arn(family: str, revision: int, region: str = "us-east-1") -> str:
    return f"arn:aws:ecs:{region}:{ACCOUNT}:task-definition/{family}:{revision}"


def state(*resources: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "version": 4,
        "terraform_version": "1.10.0",
        "serial": 1,
        "lineage": "x",
        "outputs": {},
        "resources": list(resources),
        **extra,
    }


def resource(
    kind: str, name: str, *instances: dict[str, Any], module: str | None = None, mode: str = "managed"
) -> dict[str, Any]:
    found = {
        "mode": mode,
        "type": kind,
        "name": name,
        "provider": 'provider["registry.opentofu.org/hashicorp/aws"]',
        "instances": list(instances),
    }
    return {**found, "module": module} if module else found


def test_every_way_a_state_names_a_revision() -> None:
    service = f"arn:aws:ecs:eu-west-1:{ACCOUNT}:service/prod/web"
    document = state(
        resource(
            "aws_ecs_task_definition",
            "web",
            {"attributes": {"arn": arn("web", 3), "family": "web", "revision": 3}},
            module="module.a.module.b",
        ),
        # An old provider's: no arn, the family ARN and the revision apart.
        resource(
            "aws_ecs_task_definition",
            "old",
            {"attributes": {"arn_without_revision": arn("old", 1).rsplit(":", 1)[0], "revision": 7}},
        ),
        resource(
            "aws_ecs_service",
            "web",
            {"index_key": 0, "attributes": {"id": service, "task_definition": "web:2"}},
            {"index_key": "b", "attributes": {"id": service, "task_definition": "web"}},
        ),
        resource(
            "aws_sfn_state_machine",
            "etl",
            {
                "attributes": {
                    "definition": json.dumps({"States": {"Run": {"Parameters": {"TaskDefinition": arn("etl", 4)}}}})
                }
            },
        ),
        resource("aws_ecs_task_definition", "read", {"attributes": {"arn": arn("data", 9)}}, mode="data"),
        resource("aws_ecs_task_definition", "gone", {"deposed": "00ab", "attributes": {"arn": arn("web", 1)}}),
        outputs={"latest": {"value": arn("out", 5), "type": "string"}},
    )
    assert names_in(document, "s.tfstate") == [
        Named(arn("web", 3), "module.a.module.b.aws_ecs_task_definition.web", None),
        Named(arn("old", 1).rsplit(":", 1)[0] + ":7", "aws_ecs_task_definition.old", None),
        Named("web:2", "aws_ecs_service.web[0]", "eu-west-1"),
        Named("web", 'aws_ecs_service.web["b"]', "eu-west-1"),
        Named(arn("etl", 4), "aws_sfn_state_machine.etl", None),
        Named(arn("data", 9), "data.aws_ecs_task_definition.read", None),
        Named(arn("web", 1), "aws_ecs_task_definition.gone (deposed)", None),
        Named(arn("out", 5), "output.latest", None),
    ]


_NAME = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
_FAMILY = st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_NAME, inner, max_size=3),
    max_leaves=10,
)


@given(
    modules=st.lists(_NAME, max_size=4),
    kind=_NAME,
    name=_NAME,
    family=_FAMILY,
    revision=st.integers(1, 1_000_000),
    filler=_JSON,
    path=st.lists(_NAME, min_size=1, max_size=4),
    index=st.none() | st.integers(0, 9) | _NAME,
)
def test_an_arn_anywhere_in_any_resource_at_any_depth_is_found(
    modules: list[str],
    kind: str,
    name: str,
    family: str,
    revision: int,
    filler: Any,
    path: list[str],
    index: int | str | None,
) -> None:
    attributes: Any = arn(family, revision)
    for key in reversed(path):
        attributes = {key: attributes, "other": filler}
    module = ".".join(f"module.{m}" for m in modules) or None
    instance = {"attributes": attributes, **({"index_key": index} if index is not None else {})}
    found = names_in(state(resource(f"x_{kind}", name, instance, module=module)), "s")
    address = ".".join(p for p in (module, f"x_{kind}", name) if p) + (
        f"[{json.dumps(index)}]" if index is not None else ""
    )
    assert Named(arn(family, revision), address, None) in found


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ([], "not a Terraform state"),
        ({"version": 3, "modules": []}, "state format version 3, tdgc reads version 4"),
        ({"encryption_version": "v0", "encrypted_data": "AAAA", "meta": {}}, "encrypted (OpenTofu state encryption)"),
        ({"version": 4, "resources": {}}, "`resources` is not a list"),
        ({"version": 4, "resources": [{"type": "aws_ecs_service", "instances": {}}]}, "not in the version 4 shape"),
        ({"version": 4, "resources": [{"type": "aws_ecs_service", "instances": ["x"]}]}, "not in the version 4 shape"),
    ],
)
def test_a_state_tdgc_cannot_understand_is_an_error(document: Any, problem: str) -> None:
    with pytest.raises(StateError, match="^s.tfstate: .*" + problem.replace("(", r"\(").replace(")", r"\)")):
        names_in(document, "s.tfstate")


def test_local_files_and_directories(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "terraform.tfstate").write_text(
        json.dumps(state(resource("aws_ecs_service", "s", {"attributes": {"task_definition": arn("web", 2)}})))
    )
    (tmp_path / "a" / "terraform.tfstate.backup").write_text("not read")
    one = tmp_path / "one.json"
    one.write_text(json.dumps(state(resource("aws_ecs_task_definition", "t", {"attributes": {"arn": arn("web", 3)}}))))
    read = States([str(tmp_path), str(one)]).read()
    assert [(n.reference, where) for n, where in read] == [
        (arn("web", 2), str(tmp_path / "a" / "terraform.tfstate")),
        (arn("web", 3), str(one)),
    ]
    (tmp_path / "a" / "broken.tfstate").write_text('{"version": 4, "resources": [')
    with pytest.raises(StateError, match=re.escape("broken.tfstate: not JSON")):
        States([str(tmp_path)]).read()
    (tmp_path / "empty").mkdir()
    with pytest.raises(StateError, match=re.escape("empty: no *.tfstate there")):
        States([str(tmp_path / "empty")]).read()


def _bucket(**objects: bytes) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="tf-state")
    for key, body in objects.items():
        s3.put_object(Bucket="tf-state", Key=key, Body=body)


def _service_state(revision: int) -> bytes:
    attributes = {"id": f"arn:aws:ecs:us-east-1:{ACCOUNT}:service/prod/web", "task_definition": f"web:{revision}"}
    return json.dumps(state(resource("aws_ecs_service", "web", {"attributes": attributes}))).encode()


def test_a_prefix_reads_its_states_and_their_workspaces_and_a_refresh_downloads_only_what_changed(
    sim: Simulator,
) -> None:
    _bucket(
        **{
            "team/prod.tfstate": _service_state(2),
            "env:/staging/team/prod.tfstate": _service_state(3),
            "env:/staging/other/x.tfstate": _service_state(4),
            "team/notes.txt": b"x",
        }
    )
    caller = Connection(boto3.Session(region_name="us-east-1"), "us-east-1")
    states = States(["s3://tf-state/team/"], caller)
    first = {(n.reference, where) for n, where in states.read()}
    assert first == {
        ("web:2", "s3://tf-state/team/prod.tfstate"),
        ("web:3", "s3://tf-state/env:/staging/team/prod.tfstate"),
    }
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket="tf-state", Key="team/prod.tfstate", Body=_service_state(5)
    )
    seen = dict(states._seen)
    second = {(n.reference, where) for n, where in states.read()}
    assert second == {
        ("web:5", "s3://tf-state/team/prod.tfstate"),
        ("web:3", "s3://tf-state/env:/staging/team/prod.tfstate"),
    }
    staging = ("tf-state", "env:/staging/team/prod.tfstate")
    assert states._seen[staging] is seen[staging], "not modified (304): the names already read are kept"
    # A state names a FAMILY:REVISION for its own region only; ARNs say their region themselves.
    refs = discover(caller.in_region("eu-west-1"), ["terraform"], Pacer({}), states=states)
    assert refs.by_revision == {}


def _apply(tdgc: Any, tmp_path: Path, *args: str) -> Ran:
    ran: Ran = tdgc("apply", write_policy(tmp_path, POLICY), "--yes", "--output", "json", *args, *FAST)
    return ran


@pytest.mark.parametrize(
    ("location", "objects", "error"),
    [
        ("s3://no-such-bucket/prod.tfstate", None, "NoSuchBucket"),
        ("s3://tf-state/prod.tfstate", {}, "NoSuchKey"),
        ("s3://tf-state/prod/", {"dev/a.tfstate": b"{}"}, "s3://tf-state/prod/: no *.tfstate there"),
        ("s3://tf-state/prod.tfstate", {"prod.tfstate": b"<html>"}, "s3://tf-state/prod.tfstate: not JSON"),
        ("s3://tf-state/prod.tfstate", {"prod.tfstate": json.dumps({"version": 3}).encode()}, "format version 3"),
    ],
)
@pytest.mark.slow
def test_a_state_that_cannot_be_read_makes_apply_change_nothing(
    location: str,
    objects: dict[str, bytes] | None,
    error: str,
    tdgc: Any,
    sim: Simulator,
    account: Expected,
    tmp_path: Path,
) -> None:
    if objects is not None:
        _bucket(**objects)
    before = sim.statuses()
    ran = _apply(tdgc, tmp_path, "--terraform-state", location)
    assert ran.code == 3, ran.err
    assert sim.statuses() == before and ran.json()["outcomes"] == []
    [incomplete] = ran.json()["incomplete"]
    assert f"terraform: {error}" in incomplete or error in incomplete
    assert "(fix: grant s3:ListBucket and s3:GetObject on the state bucket, or correct the location" in incomplete
    plan = tdgc("plan", write_policy(tmp_path, POLICY), "--terraform-state", location, "--output", "json", *FAST)
    assert plan.code == 0 and plan.json()["incomplete"] == [incomplete]
    assert plan.json()["summary"]["delete"] == len(account.of("delete")), "the plan is still made, marked"


def test_access_denied_to_the_state_fails_closed(
    tdgc: Any, sim: Simulator, account: Expected, tmp_path: Path, fast_retries: None
) -> None:
    _bucket(**{"prod.tfstate": _service_state(2)})
    sim.inject("GetObject", "AccessDenied", times=-1, message="Access Denied")
    ran = _apply(tdgc, tmp_path, "--terraform-state", "s3://tf-state/prod.tfstate")
    assert ran.code == 3 and ran.json()["outcomes"] == []
    assert "terraform: s3://tf-state/prod.tfstate: AccessDenied: Access Denied" in ran.json()["incomplete"][0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--terraform-state", "missing/terraform.tfstate"],
            "terraform state 'missing/terraform.tfstate': no such file",
        ),
        (["--terraform-state", "s3:/tf-state/prod.tfstate"], "expected s3://BUCKET/KEY or s3://BUCKET/PREFIX/"),
        (["--terraform-state", "s3:///prod.tfstate"], "expected s3://BUCKET/KEY or s3://BUCKET/PREFIX/"),
    ],
)
def test_a_bad_location_is_refused_before_any_call(
    args: list[str], message: str, tdgc: Any, sim: Simulator, account: Expected, tmp_path: Path
) -> None:
    calls = sum(sim.calls.values())
    ran = _apply(tdgc, tmp_path, *args)
    assert ran.code == 2 and message in ran.err and len(ran.err.strip().splitlines()) == 1, ran.err
    assert sum(sim.calls.values()) == calls and sim.mutating_calls() == 0


def test_a_bad_location_in_the_policy_names_its_line(tdgc: Any, tmp_path: Path) -> None:
    policy = write_policy(tmp_path, POLICY + '[references]\nterraform_state = ["s3:bucket"]\n')
    ran = tdgc("plan", policy, "--region", "us-east-1")
    assert ran.code == 2 and "references.terraform_state" in ran.err and "s3:bucket" in ran.err, ran.err


def test_a_state_nested_too_deeply_is_an_error(tmp_path: Path) -> None:
    deep = tmp_path / "deep.tfstate"
    deep.write_text('{"version": 4, "resources": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(StateError, match=re.escape(f"{deep}: nested too deeply to read")):
        States([str(deep)]).read()
