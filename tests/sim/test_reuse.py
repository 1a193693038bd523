"""Register-or-reuse (issues #6 and #13): the content hash, both stores, the check of what a store names,
concurrency and ECS's faults."""

from __future__ import annotations

import copy
import functools
import json
import operator
import string
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from tdgc.aws.connection import CLIENT_CONFIG
from tdgc.local.simulator import Simulator
from tdgc.policy import Rule
from tdgc.reuse.content import PROTECT_TAGS, canonical, content_hash
from tdgc.reuse.dynamodb import DynamoStore
from tdgc.reuse.register import Reused, register_or_reuse
from tdgc.reuse.store import HASH_TAG, Backoff, Claim, Record, StoreBusy
from tdgc.reuse.tags import TagStore
from tests.helpers import NOW, FakeClock, days

TABLE = "tdgc-reuse"
QUICK = Backoff(first=0.01, cap=0.05)  # polling a simulated table: no need to wait as long as against AWS
NO_WAIT = Backoff(sleep=lambda seconds: None)
TOO_MANY = "Too many concurrent attempts to create a new revision of the specified family."
NEXT_DAY = NOW + days(1)  # a second use, a day after the first (at NOW)
ETL = "arn:aws:ecs:us-east-1:123456789012:task-definition/etl"

BASE: dict[str, Any] = {
    "family": "etl",
    "containerDefinitions": [
        {
            "name": "etl",
            "image": "repo/etl:1",
            "memory": 512,
            "command": ["python", "-m", "etl"],
            "environment": [{"name": "STAGE", "value": "prod"}, {"name": "LEVEL", "value": "info"}],
        }
    ],
}
# A Fargate request as a user writes it: units, no defaults, sets in any order.
WEB: dict[str, Any] = {
    "family": "web",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "0.25 vCPU",
    "memory": "0.5 GB",
    "executionRoleArn": "arn:aws:iam::123456789012:role/web-exec",
    "containerDefinitions": [
        {
            "name": "web",
            "image": "public.ecr.aws/nginx/nginx:1.27",
            "portMappings": [{"containerPort": 80}],
            "environment": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}],
            "secrets": [{"name": "TOKEN", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/token"}],
            "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"]},
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1"},
            },
        }
    ],
    "volumes": [{"name": "shared", "efsVolumeConfiguration": {"fileSystemId": "fs-12345678"}}],
    "tags": [{"key": "team", "value": "web"}],
}
# What ECS answers DescribeTaskDefinition with for WEB: units converted, defaults filled in, empty lists, and
# the read-only fields (the shape of a real answer, not moto's).
WEB_DESCRIBED: dict[str, Any] = {
    "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7",
    "containerDefinitions": [
        {
            "name": "web",
            "image": "public.ecr.aws/nginx/nginx:1.27",
            "cpu": 0,
            "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}],
            "essential": True,
            "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "mountPoints": [],
            "volumesFrom": [],
            "secrets": [{"name": "TOKEN", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/token"}],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {"awslogs-region": "us-east-1", "awslogs-group": "/ecs/web"},
                "secretOptions": [],
            },
            "healthCheck": {
                "command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
                "interval": 30,
                "timeout": 5,
                "retries": 3,
            },
            "systemControls": [],
        }
    ],
    "family": "web",
    "executionRoleArn": "arn:aws:iam::123456789012:role/web-exec",
    "networkMode": "awsvpc",
    "revision": 7,
    "volumes": [
        {
            "name": "shared",
            "efsVolumeConfiguration": {
                "fileSystemId": "fs-12345678",
                "rootDirectory": "/",
                "transitEncryption": "DISABLED",
            },
        }
    ],
    "status": "ACTIVE",
    "requiresAttributes": [{"name": "ecs.capability.task-eni"}, {"name": "ecs.capability.container-health-check"}],
    "placementConstraints": [],
    "compatibilities": ["EC2", "FARGATE"],
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "256",
    "memory": "512",
    "registeredAt": datetime(2026, 6, 1, tzinfo=UTC),
    "registeredBy": "arn:aws:sts::123456789012:assumed-role/deployer/ci",
}


def with_image(args: dict[str, Any], image: str) -> dict[str, Any]:
    changed = copy.deepcopy(args)
    changed["containerDefinitions"][0]["image"] = image
    return changed


@pytest.fixture
def dynamo(sim: Simulator) -> Any:
    return boto3.client("dynamodb", region_name=sim.region, config=CLIENT_CONFIG)


@pytest.fixture
def ecs(sim: Simulator) -> Any:
    return boto3.client("ecs", region_name=sim.region, config=CLIENT_CONFIG)


@pytest.fixture
def store(dynamo: Any) -> DynamoStore:
    return DynamoStore(dynamo, TABLE, poll=QUICK)


def record_of(store: DynamoStore, args: dict[str, Any]) -> Record:
    found = store.lookup(content_hash(args), args["family"])
    assert found is not None
    return found


def revisions(sim: Simulator, family: str) -> list[Any]:
    return list(sim.backend().task_definitions.get(family, {}).values())


# ---- the content hash ----------------------------------------------------------------------------------------


def test_ecs_answer_hashes_as_the_request() -> None:
    """The key property: the revision ECS describes has the hash of the request that registered it."""
    assert canonical(WEB_DESCRIBED) == canonical(WEB)
    assert content_hash(WEB_DESCRIBED) == content_hash(WEB)


@pytest.mark.parametrize("args", [BASE, WEB], ids=["ec2", "fargate"])
def test_simulated_answer_hashes_as_the_request(args: dict[str, Any], ecs: Any) -> None:
    arn = ecs.register_task_definition(**args)["taskDefinition"]["taskDefinitionArn"]
    described = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    assert content_hash(described) == content_hash(args)


def test_defaults_ecs_fills_in_hash_as_omitted() -> None:
    explicit = copy.deepcopy(BASE)
    explicit["networkMode"] = "bridge"
    explicit["containerDefinitions"][0].update(essential=True, cpu=0, portMappings=[], mountPoints=[])
    explicit["volumes"] = []
    assert content_hash(explicit) == content_hash(BASE)
    bridge = with_image(BASE, "repo/etl:1")
    bridge["containerDefinitions"][0]["portMappings"] = [{"containerPort": 80}]
    dynamic = copy.deepcopy(bridge)
    dynamic["containerDefinitions"][0]["portMappings"] = [{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}]
    assert content_hash(dynamic) == content_hash(bridge)


@pytest.mark.parametrize(
    ("given_", "stored"),
    [
        ({"cpu": "1 vCPU", "memory": "2 GB"}, {"cpu": "1024", "memory": "2048"}),
        ({"cpu": ".5 vcpu", "memory": "1GB"}, {"cpu": "512", "memory": "1024"}),
        ({"cpu": " 256 ", "memory": "512"}, {"cpu": "256", "memory": "512"}),
    ],
)
def test_task_cpu_and_memory_hash_as_ecs_stores_them(given_: dict[str, str], stored: dict[str, str]) -> None:
    assert content_hash({**WEB, **given_}) == content_hash({**WEB, **stored})


@pytest.mark.parametrize(
    "change",
    [
        lambda a: a["containerDefinitions"][0].update(image="repo/etl:2"),
        lambda a: a["containerDefinitions"][0]["environment"][0].update(value="dev"),
        lambda a: a["containerDefinitions"][0].update(essential=False),
        lambda a: a["containerDefinitions"][0].update(command=["python", "-m", "etl", "--full"]),
        lambda a: a["containerDefinitions"][0].update(command=["-m", "python", "etl"]),  # order of a command matters
        lambda a: a.update(family="etl2"),
        lambda a: a.update(networkMode="host"),
    ],
)
def test_a_change_of_content_changes_the_hash(change: Any) -> None:
    changed = copy.deepcopy(BASE)
    change(changed)
    assert content_hash(changed) != content_hash(BASE)


def test_tags_and_read_only_fields_are_not_content() -> None:
    tagged = {**BASE, "tags": [{"key": "run", "value": "42"}], "revision": 9, "status": "INACTIVE"}
    assert content_hash(tagged) == content_hash(BASE)


def test_duplicate_names_keep_their_order() -> None:
    """With a name twice, which value wins may depend on the order: such lists are not sorted."""
    twice = copy.deepcopy(BASE)
    twice["containerDefinitions"][0]["environment"] = [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]
    swapped = copy.deepcopy(twice)
    swapped["containerDefinitions"][0]["environment"].reverse()
    assert content_hash(twice) != content_hash(swapped)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="containerDefinition"):
        content_hash({"family": "etl", "containerDefinition": []})


def test_hash_form() -> None:
    digest = content_hash(BASE)
    assert digest.startswith("sha256:") and len(digest) == len("sha256:") + 64


def _shuffled(value: Any, rnd: Any) -> Any:
    """The same content written differently: every object's keys in another order, and the lists ECS treats
    as sets (environment, secrets, requiresCompatibilities, volumes) in another order."""
    if isinstance(value, dict):
        keys = list(value)
        rnd.shuffle(keys)
        out = {}
        for k in keys:
            v = _shuffled(value[k], rnd)
            if k in ("environment", "secrets", "requiresCompatibilities", "volumes") and isinstance(v, list):
                v = rnd.sample(v, len(v))
            out[k] = v
        return out
    if isinstance(value, list):
        return [_shuffled(v, rnd) for v in value]
    return value


@given(rnd=st.randoms(use_true_random=False))
def test_order_does_not_change_the_hash(rnd: Any) -> None:
    for args in (BASE, WEB, WEB_DESCRIBED):
        assert content_hash(_shuffled(args, rnd)) == content_hash(args)


NAMES = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=8)
VALUES = st.text(max_size=12)


@given(env=st.lists(st.tuples(NAMES, VALUES), unique_by=lambda kv: kv[0], max_size=12), data=st.data())
def test_environment_is_a_set(env: list[tuple[str, str]], data: Any) -> None:
    def with_env(pairs: list[tuple[str, str]]) -> dict[str, Any]:
        args = copy.deepcopy(BASE)
        args["containerDefinitions"][0]["environment"] = [{"name": n, "value": v} for n, v in pairs]
        return args

    order = data.draw(st.permutations(env))
    assert content_hash(with_env(order)) == content_hash(with_env(env))
    if env:
        name, value = env[0]
        changed = [(name, value + "x"), *env[1:]]
        assert content_hash(with_env(changed)) != content_hash(with_env(env))


@given(args=st.sampled_from([BASE, WEB, WEB_DESCRIBED]), rnd=st.randoms(use_true_random=False))
def test_canonical_is_idempotent(args: dict[str, Any], rnd: Any) -> None:
    once = canonical(_shuffled(args, rnd))
    assert canonical(once) == once


# ---- the canonical form keeps every empty value ECS keeps ----------------------------------------------------

# What ECS answers for a field the request left out, and what it drops from what it was sent, per level of the
# document: botocore's examples of ECS (DescribeTaskDefinition "hello_world:8", RegisterTaskDefinition "sleep360")
# and WEB_DESCRIBED above. Stated here, apart from tdgc.reuse.content, as the facts the canonical form must follow.
ANSWERED_EMPTY = {
    "task": ("volumes", "placementConstraints"),
    "container": ("environment", "mountPoints", "portMappings", "volumesFrom", "systemControls"),
    "logConfiguration": ("secretOptions",),
}
DROPPED = {"task": {"taskRoleArn": ""}}
SAME_AS_ABSENT = {(level, key, "[]") for level, keys in ANSWERED_EMPTY.items() for key in keys} | {
    (level, key, json.dumps(value)) for level, fields in DROPPED.items() for key, value in fields.items()
}
REGISTER_SHAPE = (
    botocore.session.get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition").input_shape
)

IDENT = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=8)
WORD = st.text(alphabet=string.ascii_letters + string.digits + " /:=.-", max_size=10)  # "" included
SECRET = st.fixed_dictionaries({"name": IDENT, "valueFrom": IDENT})


def _unique(items: Any, key: str, most: int = 3) -> Any:
    return st.lists(items, max_size=most, unique_by=lambda item: item[key])


CONTAINER = st.fixed_dictionaries(
    {"name": IDENT, "image": IDENT, "memory": st.integers(6, 4096)},
    optional={
        "cpu": st.integers(0, 4096),
        "essential": st.booleans(),
        "command": st.lists(WORD, max_size=3),
        "entryPoint": st.lists(WORD, max_size=2),
        "workingDirectory": WORD,
        "user": WORD,
        "readonlyRootFilesystem": st.booleans(),
        "environment": _unique(st.fixed_dictionaries({"name": IDENT, "value": WORD}), "name"),
        "secrets": _unique(SECRET, "name"),
        "portMappings": st.lists(
            st.fixed_dictionaries(
                {"containerPort": st.integers(1, 65535)},
                optional={"hostPort": st.integers(0, 65535), "protocol": st.sampled_from(["tcp", "udp"])},
            ),
            max_size=2,
        ),
        "mountPoints": st.lists(
            st.fixed_dictionaries({"sourceVolume": IDENT, "containerPath": WORD}, optional={"readOnly": st.booleans()}),
            max_size=2,
        ),
        "volumesFrom": st.lists(
            st.fixed_dictionaries({"sourceContainer": IDENT}, optional={"readOnly": st.booleans()}), max_size=1
        ),
        "dockerLabels": st.dictionaries(IDENT, WORD, max_size=3),
        "logConfiguration": st.fixed_dictionaries(
            {"logDriver": st.sampled_from(["awslogs", "json-file", "fluentd"])},
            optional={"options": st.dictionaries(IDENT, WORD, max_size=2), "secretOptions": _unique(SECRET, "name", 1)},
        ),
        "healthCheck": st.fixed_dictionaries(
            {"command": st.lists(WORD, min_size=1, max_size=3)},
            optional={
                "interval": st.integers(5, 300),
                "timeout": st.integers(2, 60),
                "retries": st.integers(1, 10),
                "startPeriod": st.integers(0, 300),
            },
        ),
        "linuxParameters": st.fixed_dictionaries(
            {},
            optional={
                "initProcessEnabled": st.booleans(),
                "capabilities": st.fixed_dictionaries(
                    {},
                    optional={
                        "add": st.lists(IDENT, unique=True, max_size=2),
                        "drop": st.lists(IDENT, unique=True, max_size=2),
                    },
                ),
            },
        ),
        "ulimits": _unique(
            st.fixed_dictionaries(
                {
                    "name": st.sampled_from(["nofile", "nproc", "core"]),
                    "softLimit": st.integers(0, 9999),
                    "hardLimit": st.integers(0, 9999),
                }
            ),
            "name",
        ),
        "systemControls": _unique(st.fixed_dictionaries({"namespace": IDENT, "value": WORD}), "namespace", 2),
    },
)
VOLUME = st.one_of(
    st.fixed_dictionaries({"name": IDENT}),
    st.fixed_dictionaries({"name": IDENT, "host": st.fixed_dictionaries({}, optional={"sourcePath": WORD})}),
    st.fixed_dictionaries(
        {
            "name": IDENT,
            "dockerVolumeConfiguration": st.fixed_dictionaries(
                {},
                optional={
                    "scope": st.sampled_from(["task", "shared"]),
                    "autoprovision": st.booleans(),
                    "driver": IDENT,
                    "driverOpts": st.dictionaries(IDENT, WORD, max_size=2),
                    "labels": st.dictionaries(IDENT, WORD, max_size=2),
                },
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "name": IDENT,
            "efsVolumeConfiguration": st.fixed_dictionaries(
                {"fileSystemId": IDENT},
                optional={"rootDirectory": WORD, "transitEncryption": st.sampled_from(["ENABLED", "DISABLED"])},
            ),
        }
    ),
)


def _as_fargate_takes_it(doc: dict[str, Any]) -> dict[str, Any]:
    """Fargate takes only the awsvpc network mode and the task pid mode: ECS refuses the others (and moto
    answers awsvpc whatever it was sent)."""
    if "FARGATE" not in doc.get("requiresCompatibilities", []):
        return doc
    return {**doc, "networkMode": "awsvpc", **({"pidMode": "task"} if "pidMode" in doc else {})}


# A RegisterTaskDefinition request, valid in shape (botocore's model) if not always in ECS's eyes.
CONTAINERS = st.lists(CONTAINER, min_size=1, max_size=2, unique_by=lambda c: c["name"])
DOCUMENT = st.fixed_dictionaries(
    {"family": IDENT, "containerDefinitions": CONTAINERS},
    optional={
        "taskRoleArn": IDENT,
        "executionRoleArn": IDENT,
        "networkMode": st.sampled_from(["bridge", "host", "awsvpc", "none"]),
        "cpu": st.sampled_from(["256", "512", "1024", "1 vCPU", "0.5 vcpu"]),
        "memory": st.sampled_from(["512", "2048", "1 GB", "2 GB"]),
        "requiresCompatibilities": st.lists(st.sampled_from(["EC2", "FARGATE"]), unique=True, max_size=2),
        "volumes": _unique(VOLUME, "name", 2),
        "placementConstraints": _unique(
            st.fixed_dictionaries({"type": st.just("memberOf"), "expression": IDENT}), "expression", 2
        ),
        "pidMode": st.sampled_from(["host", "task"]),
    },
).map(_as_fargate_takes_it)


def _level(path: tuple[Any, ...]) -> str | None:
    """Which level of the document an object at `path` is, where ECS's answers for absent fields are known."""
    if path == ():
        return "task"
    if len(path) == 2 and path[0] == "containerDefinitions":
        return "container"
    if len(path) == 3 and path[0] == "containerDefinitions" and path[2] == "logConfiguration":
        return "logConfiguration"
    return None


def _nodes(value: Any, shape: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any, Any]]:
    """Every value in the document, at any depth, with its path and its shape in botocore's model."""
    yield path, value, shape
    if isinstance(value, dict):
        for key, item in value.items():
            member = shape.members.get(key) if shape.type_name == "structure" else shape.value
            if member is not None:
                yield from _nodes(item, member, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _nodes(item, shape.member, (*path, i))


def _changes_of(value: Any, shape: Any, level: str | None) -> Iterator[Any]:
    """Each way to change one value ECS keeps: a string to another or to "", a number or a flag to another, an
    item added to a list, an entry with an empty value ("", [] or {}) added to an object."""
    if isinstance(value, bool):
        yield not value
    elif isinstance(value, int):
        yield value + 1
    elif isinstance(value, str):
        yield from ([value + "x", ""] if value else ["x"])
    elif isinstance(value, list):
        yield [*value, "" if shape.member.type_name == "string" else {}]
    elif shape.type_name == "map":
        yield from ({**value, "x-added": empty} for empty in ("", [], {}))
    else:
        for key in shape.members:
            for empty in ("", [], {}):
                if key not in value and key != "tags" and (level, key, json.dumps(empty)) not in SAME_AS_ABSENT:
                    yield {**value, key: empty}


def _every_change(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """The document with one field changed, for every field at every depth (tags aside: tested apart)."""
    for path, value, shape in _nodes(doc, REGISTER_SHAPE):
        if path[:1] == ("tags",):
            continue
        for new in _changes_of(value, shape, _level(path)):
            if not path:
                yield new, f"{{}} -> {new!r}"
                continue
            changed = copy.deepcopy(doc)
            *parents, last = path
            functools.reduce(operator.getitem, parents, changed)[last] = new
            yield changed, f"{path}: {value!r} -> {new!r}"


@settings(max_examples=40)
@given(doc=DOCUMENT)
def test_a_change_of_any_kept_field_changes_the_hash(doc: dict[str, Any]) -> None:
    """Two requests that differ in anything ECS keeps never hash alike: "", [] and {} are content wherever
    ECS is not known to answer them for a field left out. Every single change of the document is tried."""
    digest = content_hash(doc)
    for changed, what in _every_change(doc):
        assert content_hash(changed) != digest, what


@given(doc=DOCUMENT)
def test_what_ecs_answers_for_a_field_left_out_hashes_as_left_out(doc: dict[str, Any]) -> None:
    answered = copy.deepcopy(doc)
    for key in ANSWERED_EMPTY["task"]:
        answered.setdefault(key, [])
    for container in answered["containerDefinitions"]:
        for key in ANSWERED_EMPTY["container"]:
            container.setdefault(key, [])
        for key in ANSWERED_EMPTY["logConfiguration"]:
            container.get("logConfiguration", {}).setdefault(key, [])
    assert content_hash(answered) == content_hash(doc)
    for key, value in DROPPED["task"].items():
        assert content_hash({**doc, key: value}) == content_hash({k: v for k, v in doc.items() if k != key})


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])  # one simulator for all
@given(doc=DOCUMENT)
def test_a_request_hashes_as_the_simulated_description_of_its_revision(doc: dict[str, Any], ecs: Any) -> None:
    arn = ecs.register_task_definition(**doc)["taskDefinition"]["taskDefinitionArn"]
    assert content_hash(ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]) == content_hash(doc)


def test_botocores_example_of_a_registration_hashes_as_its_answer() -> None:
    """botocore's example sends taskRoleArn "" and volumes [] and gets an answer without the one and with
    the other, and with [] for the container's environment, mountPoints, portMappings and volumesFrom."""
    example = botocore.loaders.Loader().load_service_model("ecs", "examples-1")["examples"]["RegisterTaskDefinition"][0]
    assert content_hash(example["output"]["taskDefinition"]) == content_hash(example["input"])


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ({"dockerLabels": {"flag": ""}}, {}),
        ({"dockerLabels": {"flag": ""}}, {"dockerLabels": {}}),
        ({"environment": [{"name": "FLAG", "value": ""}]}, {"environment": [{"name": "FLAG"}]}),
        (
            {"logConfiguration": {"logDriver": "awslogs", "options": {"mode": ""}}},
            {"logConfiguration": {"logDriver": "awslogs"}},
        ),
    ],
    ids=["label-vs-none", "label-vs-no-labels", "empty-value-vs-none", "option"],
)
def test_an_empty_value_in_a_container_is_content(one: dict[str, Any], other: dict[str, Any]) -> None:
    def container(extra: dict[str, Any]) -> dict[str, Any]:
        args = copy.deepcopy(BASE)
        args["containerDefinitions"][0].update(extra)
        return args

    assert content_hash(container(one)) != content_hash(container(other))


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ({"name": "data", "dockerVolumeConfiguration": {}}, {"name": "data", "host": {}}),
        ({"name": "data", "dockerVolumeConfiguration": {}}, {"name": "data"}),
        ({"name": "data", "host": {"sourcePath": ""}}, {"name": "data", "host": {}}),
    ],
    ids=["docker-vs-bind", "docker-vs-plain", "empty-path-vs-none"],
)
def test_a_volume_configuration_is_content_even_empty(one: dict[str, Any], other: dict[str, Any]) -> None:
    assert content_hash({**BASE, "volumes": [one]}) != content_hash({**BASE, "volumes": [other]})


# ---- register or reuse, both stores --------------------------------------------------------------------------


@pytest.fixture(params=["dynamodb", "tags"])
def any_store(request: pytest.FixtureRequest, sim: Simulator, ecs: Any) -> Any:
    if request.param == "tags":
        return TagStore(ecs)
    return DynamoStore(request.getfixturevalue("dynamo"), TABLE, poll=QUICK)


def test_register_twice_gives_the_same_arn(any_store: Any, sim: Simulator, ecs: Any) -> None:
    first = register_or_reuse(ecs, BASE, any_store, now=NOW)
    second = register_or_reuse(ecs, BASE, any_store, now=NEXT_DAY)
    assert (first.reused, first.how) == (False, "registered")
    assert (second.reused, second.how) == (True, "found")
    assert second.arn == first.arn and second.revision == first.revision == 1
    assert sim.count("RegisterTaskDefinition") == 1
    tags = ecs.describe_task_definition(taskDefinition=first.arn, include=["TAGS"])["tags"]
    assert {"key": HASH_TAG, "value": content_hash(BASE)} in tags


def test_a_new_image_gives_a_new_arn(any_store: Any, sim: Simulator, ecs: Any) -> None:
    first = register_or_reuse(ecs, BASE, any_store)
    second = register_or_reuse(ecs, with_image(BASE, "repo/etl:2"), any_store)
    assert second.arn != first.arn and second.how == "registered" and second.revision == 2
    assert register_or_reuse(ecs, BASE, any_store).arn == first.arn  # still ACTIVE, within the look-back
    assert sim.count("RegisterTaskDefinition") == 2


def test_callers_tags_are_kept(any_store: Any, ecs: Any) -> None:
    spoofed = [{"key": "team", "value": "web"}, {"key": HASH_TAG, "value": "sha256:not-this"}]
    got = register_or_reuse(ecs, {**WEB, "tags": spoofed}, any_store)
    tags = ecs.describe_task_definition(taskDefinition=got.arn, include=["TAGS"])["tags"]
    assert sorted(tags, key=lambda t: t["key"]) == [
        {"key": HASH_TAG, "value": content_hash(WEB)},
        {"key": "team", "value": "web"},
    ]


@pytest.mark.parametrize("gone", ["deregistered", "delete in progress", "deleted"])
def test_a_revision_gone_since_is_registered_again(gone: str, any_store: Any, sim: Simulator, ecs: Any) -> None:
    first = register_or_reuse(ecs, BASE, any_store, now=NOW)
    ecs.deregister_task_definition(taskDefinition=first.arn)
    if gone != "deregistered":
        ecs.delete_task_definitions(taskDefinitions=[first.arn])
    if gone == "deleted":
        sim.finish_deletes()
    again = register_or_reuse(ecs, BASE, any_store, now=NEXT_DAY)
    assert again.arn != first.arn and not again.reused and again.revision == 2
    # A store that remembers says it replaced its record; the tag store simply finds nothing ACTIVE.
    assert again.how == ("replaced" if isinstance(any_store, DynamoStore) else "registered")
    assert register_or_reuse(ecs, BASE, any_store).arn == again.arn
    assert sim.count("RegisterTaskDefinition") == 2


def test_a_described_revision_can_be_passed_as_the_request(any_store: Any, ecs: Any) -> None:
    first = register_or_reuse(ecs, WEB, any_store)
    described = ecs.describe_task_definition(taskDefinition=first.arn)["taskDefinition"]
    assert register_or_reuse(ecs, described, any_store).arn == first.arn


# ---- ECS's answers -------------------------------------------------------------------------------------------


def test_too_many_concurrent_attempts_is_retried(any_store: Any, sim: Simulator, ecs: Any) -> None:
    sim.inject("RegisterTaskDefinition", "ClientException", times=2, message=TOO_MANY)
    pauses: list[float] = []
    got = register_or_reuse(ecs, BASE, any_store, backoff=Backoff(sleep=pauses.append))
    assert got.how == "registered" and sim.count("RegisterTaskDefinition") == 3
    assert len(pauses) == 2 and all(0 <= p <= 0.4 for p in pauses)  # jittered: at most 0.2 s, then 0.4 s


def test_too_many_concurrent_attempts_gives_up_and_frees_the_claim(
    store: DynamoStore, dynamo: Any, sim: Simulator, ecs: Any
) -> None:
    sim.inject("RegisterTaskDefinition", "ClientException", times=3, message=TOO_MANY)
    with pytest.raises(ecs.exceptions.ClientException, match="Too many concurrent attempts"):
        register_or_reuse(ecs, BASE, store, backoff=Backoff(attempts=3, sleep=lambda s: None))
    assert sim.count("RegisterTaskDefinition") == 3

    def no_waiting(seconds: float) -> None:
        raise AssertionError("the next caller waited for the failed caller's lease")

    next_caller = DynamoStore(dynamo, TABLE, poll=Backoff(sleep=no_waiting))
    assert register_or_reuse(ecs, BASE, next_caller).how == "registered"


def test_other_client_errors_are_not_retried(any_store: Any, sim: Simulator, ecs: Any) -> None:
    sim.inject("RegisterTaskDefinition", "ClientException", message="Invalid 'cpu' setting for task.")
    with pytest.raises(ecs.exceptions.ClientException, match="Invalid 'cpu'"):
        register_or_reuse(ecs, BASE, any_store, backoff=NO_WAIT)
    assert sim.count("RegisterTaskDefinition") == 1


def test_throttles_are_botocores_to_retry(any_store: Any, sim: Simulator, ecs: Any, fast_retries: None) -> None:
    sim.inject("RegisterTaskDefinition", "ThrottlingException", times=2)
    sim.inject("DescribeTaskDefinition", "ThrottlingException", times=2)
    first = register_or_reuse(ecs, BASE, any_store, backoff=NO_WAIT)
    assert register_or_reuse(ecs, BASE, any_store).arn == first.arn
    assert sim.count("RegisterTaskDefinition") == 3


# ---- the DynamoDB store --------------------------------------------------------------------------------------


def test_table_is_created_on_first_use(store: DynamoStore, dynamo: Any, ecs: Any) -> None:
    assert TABLE not in dynamo.list_tables()["TableNames"]
    register_or_reuse(ecs, BASE, store)
    table = dynamo.describe_table(TableName=TABLE)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {("pk", "HASH"), ("sk", "RANGE")}
    ttl = dynamo.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")


def test_record_counts_uses_and_audits_each(store: DynamoStore, ecs: Any) -> None:
    first = register_or_reuse(ecs, BASE, store, now=NOW, who="airflow:etl.register")
    register_or_reuse(ecs, BASE, store, now=NEXT_DAY, who="airflow:etl.register")
    record = record_of(store, BASE)
    assert (record.arn, record.revision, record.family) == (first.arn, 1, "etl")
    assert (record.first_registered, record.last_used, record.use_count) == (NOW, NEXT_DAY, 2)
    uses = list(store.uses(first.hash))
    assert [(u["how"], u["who"], u["arn"]) for u in uses] == [
        ("registered", "airflow:etl.register", first.arn),
        ("found", "airflow:etl.register", first.arn),
    ]


def test_a_replaced_revision_repairs_the_record(store: DynamoStore, ecs: Any) -> None:
    first = register_or_reuse(ecs, BASE, store, now=NOW)
    ecs.deregister_task_definition(taskDefinition=first.arn)
    again = register_or_reuse(ecs, BASE, store, now=NEXT_DAY)
    record = record_of(store, BASE)
    assert (record.arn, record.revision) == (again.arn, 2)
    assert (record.first_registered, record.last_used, record.use_count) == (NOW, NEXT_DAY, 2)  # the content's history


def test_a_record_pointing_at_other_content_is_not_trusted(store: DynamoStore, dynamo: Any, ecs: Any) -> None:
    other = register_or_reuse(ecs, with_image(BASE, "repo/etl:2"), store)
    digest = content_hash(BASE)
    dynamo.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": f"content#{digest}"},
            "sk": {"S": "record"},
            "family": {"S": "etl"},
            "arn": {"S": other.arn},
            "revision": {"N": str(other.revision)},
            "use_count": {"N": "5"},
        },
    )
    got = register_or_reuse(ecs, BASE, store)
    assert got.arn != other.arn and got.how == "replaced"


def test_records_lists_what_the_store_knows(store: DynamoStore, dynamo: Any, ecs: Any) -> None:
    a = register_or_reuse(ecs, BASE, store, now=NOW)
    b = register_or_reuse(ecs, WEB, store, now=NOW)
    register_or_reuse(ecs, BASE, store, now=NEXT_DAY)
    store.claim(content_hash(with_image(BASE, "repo/etl:3")), "etl")  # in flight: no revision yet
    got = {r.arn: (r.last_used, r.use_count) for r in store.records()}
    assert got == {a.arn: (NEXT_DAY, 2), b.arn: (NOW, 1)}


def test_a_crashed_claim_is_taken_over(store: DynamoStore, dynamo: Any, sim: Simulator, ecs: Any) -> None:
    store.create()
    dynamo.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": f"content#{content_hash(BASE)}"},
            "sk": {"S": "record"},
            "family": {"S": "etl"},
            "owner": {"S": "a-caller-that-crashed"},
            "lease_until": {"N": str(time.time() - 1)},
        },
    )
    got = register_or_reuse(ecs, BASE, store)
    assert (got.how, got.revision) == ("registered", 1) and sim.count("RegisterTaskDefinition") == 1
    assert record_of(store, BASE).arn == got.arn


def test_a_live_claim_is_waited_for(dynamo: Any, sim: Simulator, ecs: Any) -> None:
    digest = content_hash(BASE)
    other = DynamoStore(boto3.client("dynamodb", region_name=sim.region), TABLE)
    claim = other.claim(digest, "etl")
    assert isinstance(claim, Claim)
    arn = ecs.register_task_definition(**BASE, tags=[{"key": HASH_TAG, "value": digest}])["taskDefinition"][
        "taskDefinitionArn"
    ]
    pauses: list[float] = []

    def other_finishes_meanwhile(seconds: float) -> None:  # no real wait: the other caller fills its claim in it
        pauses.append(seconds)
        if len(pauses) == 1:
            other.fill(claim, arn, 1, now=NOW, who="other", how="registered")

    store = DynamoStore(dynamo, TABLE, poll=Backoff(first=0.05, cap=0.5, sleep=other_finishes_meanwhile))
    got = register_or_reuse(ecs, BASE, store)
    assert (got.arn, got.how, got.reused) == (arn, "joined", True)
    assert len(pauses) == 1, "it polled while the claim was live, and took the ARN once it was there"
    assert sim.count("RegisterTaskDefinition") == 1 and record_of(store, BASE).use_count == 2


def test_a_claim_held_too_long_is_an_error(dynamo: Any, ecs: Any) -> None:
    clock = FakeClock()  # the lease and the wait, on one clock that only the waiter's polling moves
    holder = DynamoStore(dynamo, TABLE, lease=60, clock=clock)
    holder.claim(content_hash(BASE), "etl")
    waiter = DynamoStore(dynamo, TABLE, wait=30, clock=clock, poll=Backoff(first=1, cap=5, sleep=clock.sleep))
    started = clock()
    with pytest.raises(StoreBusy, match="registering this content for over 30s"):
        register_or_reuse(ecs, BASE, waiter)
    assert 30 < clock() - started < 60, "it gave up after its wait, while the holder's lease still stood"


def test_the_first_registration_to_finish_wins(dynamo: Any, ecs: Any) -> None:
    """A caller whose lease was taken over may still finish first: the later one gets its ARN."""
    digest = content_hash(BASE)
    slow = DynamoStore(dynamo, TABLE, lease=10, clock=lambda: 1000.0)
    taker = DynamoStore(dynamo, TABLE, lease=10, clock=lambda: 2000.0)
    first = slow.claim(digest, "etl")
    second = taker.claim(digest, "etl")  # the first lease ran out at 1010
    assert isinstance(first, Claim) and isinstance(second, Claim) and first.owner != second.owner
    won = slow.fill(first, f"{ETL}:1", 1, now=NOW, who="slow", how="registered")
    lost = taker.fill(second, f"{ETL}:2", 2, now=NOW, who="taker", how="registered")
    assert lost.arn == won.arn and lost.revision == 1 and lost.use_count == 1


def _concurrently(n: int, sim: Simulator, args: dict[str, Any]) -> tuple[list[Reused], float]:
    """n callers at once, each with its own session and clients, as n processes would be."""
    barrier = threading.Barrier(n + 1)
    results: list[Reused] = []
    errors: list[BaseException] = []

    def one(i: int) -> None:
        session = boto3.session.Session()
        ecs = session.client("ecs", region_name=sim.region, config=CLIENT_CONFIG)
        dynamodb = session.client("dynamodb", region_name=sim.region, config=CLIENT_CONFIG)
        store = DynamoStore(dynamodb, TABLE)
        ecs.list_task_definition_families(maxResults=1)  # a client's first call is slow (endpoints, credentials):
        dynamodb.list_tables(Limit=1)  # out of the race, so that the callers do race
        barrier.wait()
        try:
            results.append(register_or_reuse(ecs, args, store, who=f"worker-{i}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    interval = sys.getswitchinterval()
    barrier.wait()
    sys.setswitchinterval(1e-5)  # switch threads often: interleave the callers' requests as much as possible
    try:
        started = time.monotonic()
        for t in threads:
            t.join(timeout=120)
        elapsed = time.monotonic() - started
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors
    return results, elapsed


@pytest.fixture
def concurrent_table(sim: Simulator) -> Iterator[DynamoStore]:
    yield DynamoStore(boto3.client("dynamodb", region_name=sim.region), TABLE)


@pytest.mark.slow
def test_twenty_concurrent_registrations_make_one_revision(concurrent_table: DynamoStore, sim: Simulator) -> None:
    """The table does not exist yet either: the twenty also race to create it."""
    results, _ = _concurrently(20, sim, BASE)
    assert len(results) == 20 and len({r.arn for r in results}) == 1
    assert sim.count("RegisterTaskDefinition") == 1 and len(revisions(sim, "etl")) == 1
    assert Counter(r.reused for r in results) == {True: 19, False: 1}
    assert {r.how for r in results} <= {"registered", "joined", "found"}
    record = record_of(concurrent_table, BASE)
    assert record.use_count == 20  # the registration counts as a use
    assert len(list(concurrent_table.uses(record.hash))) == 20


@pytest.mark.slow
def test_twenty_concurrent_replacements_make_one_revision(concurrent_table: DynamoStore, sim: Simulator) -> None:
    ecs = boto3.client("ecs", region_name=sim.region)
    first = register_or_reuse(ecs, BASE, concurrent_table)
    ecs.deregister_task_definition(taskDefinition=first.arn)
    results, _ = _concurrently(20, sim, BASE)
    assert len({r.arn for r in results}) == 1 and results[0].arn != first.arn
    assert sim.count("RegisterTaskDefinition") == 2
    assert Counter(r.how for r in results)["replaced"] == 1
    assert record_of(concurrent_table, BASE).use_count == 21


# ---- the tag store -------------------------------------------------------------------------------------------


def test_tag_store_looks_back_a_bounded_number_of_revisions(sim: Simulator, ecs: Any) -> None:
    store = TagStore(ecs, lookback=3)
    first = register_or_reuse(ecs, BASE, store)
    for n in (2, 3):
        register_or_reuse(ecs, with_image(BASE, f"repo/etl:{n}"), store)
    assert register_or_reuse(ecs, BASE, store).arn == first.arn  # the third newest: within the look-back
    register_or_reuse(ecs, with_image(BASE, "repo/etl:4"), store)
    beyond = register_or_reuse(ecs, BASE, store)  # now the fourth newest: beyond it, so registered again
    assert beyond.arn != first.arn and beyond.how == "registered" and beyond.revision == 5


def test_tag_store_ignores_untagged_revisions_and_records_no_use(sim: Simulator, ecs: Any) -> None:
    store = TagStore(ecs)
    ecs.register_task_definition(**BASE)  # same content, registered without tdgc: not recognised
    got = register_or_reuse(ecs, BASE, store)
    assert got.how == "registered" and got.revision == 2
    (record,) = list(store.records())
    assert (record.arn, record.hash, record.last_used, record.use_count) == (got.arn, got.hash, None, 0)


def test_tag_store_reads_one_list_and_one_describe_when_found(sim: Simulator, ecs: Any) -> None:
    store = TagStore(ecs)
    register_or_reuse(ecs, BASE, store)
    sim.calls.clear()
    sim.mutations.clear()
    register_or_reuse(ecs, BASE, store)
    assert sim.count("ListTaskDefinitions") == 1 and sim.count("DescribeTaskDefinition") == 1
    assert sim.mutating_calls() == 0


# ---- the store points, the revision proves (issue #13) -------------------------------------------------------

KEEP = {"key": "tdgc:keep", "value": "true"}
EVIL = "attacker/etl:evil"


def image_of(ecs: Any, arn: str) -> str:
    return str(ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["containerDefinitions"][0]["image"])


def mismatches(logs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["arn"], e["verdict"]) for e in logs if e["event"] == "reuse.mismatch" and e["log_level"] == "warning"]


def test_a_copied_hash_tag_is_not_trusted(sim: Simulator, ecs: Any) -> None:
    store = TagStore(ecs)
    genuine = register_or_reuse(ecs, BASE, store)
    evil = ecs.register_task_definition(**with_image(BASE, EVIL), tags=[{"key": HASH_TAG, "value": genuine.hash}])
    evil_arn = evil["taskDefinition"]["taskDefinitionArn"]
    sim.calls.clear()
    with capture_logs() as logs:
        got = register_or_reuse(ecs, BASE, store)
    assert sim.count("DescribeTaskDefinition") == 1  # the describe that found it is the one checked
    assert got.arn != evil_arn and not got.reused and got.revision == 3 and image_of(ecs, got.arn) == "repo/etl:1"
    assert mismatches(logs) == [(evil_arn, "OTHER_CONTENT")]
    assert register_or_reuse(ecs, BASE, store).arn == got.arn  # the newest with the hash now: found again


@pytest.mark.parametrize("tag", [None, "copied"], ids=["untagged", "copied-tag"])
def test_an_edited_record_is_not_trusted(
    tag: str | None, store: DynamoStore, dynamo: Any, sim: Simulator, ecs: Any
) -> None:
    first = register_or_reuse(ecs, BASE, store, now=NOW)
    tags = [{"key": HASH_TAG, "value": first.hash}] if tag else []
    evil = ecs.register_task_definition(**with_image(BASE, EVIL), tags=tags)["taskDefinition"]
    dynamo.update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"content#{first.hash}"}, "sk": {"S": "record"}},
        UpdateExpression="SET #arn = :arn, #revision = :revision",
        ExpressionAttributeNames={"#arn": "arn", "#revision": "revision"},
        ExpressionAttributeValues={":arn": {"S": evil["taskDefinitionArn"]}, ":revision": {"N": str(evil["revision"])}},
    )
    sim.calls.clear()
    with capture_logs() as logs:
        got = register_or_reuse(ecs, BASE, store, now=NEXT_DAY)
    assert sim.count("DescribeTaskDefinition") == 1 and sim.count("RegisterTaskDefinition") == 1
    assert (got.how, got.reused, got.revision) == ("replaced", False, 3) and image_of(ecs, got.arn) == "repo/etl:1"
    assert mismatches(logs) == [(evil["taskDefinitionArn"], "OTHER_CONTENT")]
    record = record_of(store, BASE)  # repaired as for a revision deregistered since, its history kept
    assert (record.arn, record.first_registered, record.last_used, record.use_count) == (got.arn, NOW, NEXT_DAY, 2)
    assert [u["how"] for u in store.uses(first.hash)] == ["registered", "replaced"]
    assert register_or_reuse(ecs, BASE, store).arn == got.arn


def test_a_registration_that_won_the_claim_with_other_content_is_not_joined(
    store: DynamoStore, dynamo: Any, sim: Simulator, ecs: Any
) -> None:
    """Our lease taken over while we register, and the record filled first with another revision: checked
    like any record before it is joined."""
    evil = ecs.register_task_definition(**with_image(BASE, EVIL))["taskDefinition"]
    late = DynamoStore(dynamo, TABLE, clock=lambda: time.time() + 3600)  # sees our lease long run out

    def take_over_and_fill_first() -> None:
        claim = late.claim(content_hash(BASE), "etl")
        assert isinstance(claim, Claim)
        late.fill(claim, evil["taskDefinitionArn"], evil["revision"], now=NOW, who="late", how="registered")

    store.create()
    sim.after("RegisterTaskDefinition", take_over_and_fill_first)
    with capture_logs() as logs:
        got = register_or_reuse(ecs, BASE, store, now=NEXT_DAY)
    assert got.arn != evil["taskDefinitionArn"] and not got.reused and image_of(ecs, got.arn) == "repo/etl:1"
    assert mismatches(logs) == [(evil["taskDefinitionArn"], "OTHER_CONTENT")]
    assert record_of(store, BASE).arn == got.arn


@pytest.mark.parametrize("labels", [{"flag": ""}, {}], ids=["empty-label", "no-labels"])
def test_an_empty_label_is_not_reused_for_none(
    labels: dict[str, str], any_store: Any, sim: Simulator, ecs: Any
) -> None:
    labelled = copy.deepcopy(BASE)
    labelled["containerDefinitions"][0]["dockerLabels"] = labels
    first = register_or_reuse(ecs, labelled, any_store)
    plain = register_or_reuse(ecs, BASE, any_store)
    assert plain.how == "registered" and plain.arn != first.arn
    assert register_or_reuse(ecs, labelled, any_store).arn == first.arn


def test_a_docker_volume_is_not_reused_for_a_bind_mount(any_store: Any, ecs: Any) -> None:
    def with_volume(volume: dict[str, Any]) -> dict[str, Any]:
        args = copy.deepcopy(BASE)
        args["volumes"] = [volume]
        args["containerDefinitions"][0]["mountPoints"] = [{"sourceVolume": "data", "containerPath": "/data"}]
        return args

    docker = register_or_reuse(ecs, with_volume({"name": "data", "dockerVolumeConfiguration": {}}), any_store)
    bind = register_or_reuse(ecs, with_volume({"name": "data", "host": {}}), any_store)
    assert bind.how == "registered" and bind.arn != docker.arn
    volumes = ecs.describe_task_definition(taskDefinition=bind.arn)["taskDefinition"]["volumes"]
    assert volumes == [{"name": "data", "host": {}}]


def test_a_keep_tag_is_only_reused_with_the_same_value(any_store: Any, sim: Simulator, ecs: Any) -> None:
    plain = register_or_reuse(ecs, BASE, any_store)
    kept = register_or_reuse(ecs, {**BASE, "tags": [KEEP]}, any_store)
    assert (kept.how, kept.reused) == ("registered", False) and kept.arn != plain.arn
    assert KEEP in ecs.describe_task_definition(taskDefinition=kept.arn, include=["TAGS"])["tags"]
    run = {"key": "airflow:run_id", "value": "scheduled__2026-06-01"}
    assert register_or_reuse(ecs, {**BASE, "tags": [run, KEEP]}, any_store).arn == kept.arn  # other tags: no matter
    assert register_or_reuse(ecs, {**BASE, "tags": [run]}, any_store).arn == plain.arn  # nor the other way
    unkept = register_or_reuse(ecs, {**BASE, "tags": [{"key": "tdgc:keep", "value": "false"}]}, any_store)
    assert unkept.arn not in (plain.arn, kept.arn)
    assert sim.count("RegisterTaskDefinition") == 3


def test_a_revision_that_lost_its_keep_tag_is_not_reused_to_keep(any_store: Any, ecs: Any) -> None:
    kept = register_or_reuse(ecs, {**BASE, "tags": [KEEP]}, any_store)
    ecs.untag_resource(resourceArn=kept.arn, tagKeys=["tdgc:keep"])  # the collector may take it now
    with capture_logs() as logs:
        again = register_or_reuse(ecs, {**BASE, "tags": [KEEP]}, any_store)
    assert again.arn != kept.arn and not again.reused
    assert mismatches(logs) == [(kept.arn, "OTHER_PROTECTION")]
    assert KEEP in ecs.describe_task_definition(taskDefinition=again.arn, include=["TAGS"])["tags"]


def test_protect_tags_are_the_callers_to_name(any_store: Any, ecs: Any) -> None:
    pinned = {**BASE, "tags": [{"key": "pinned", "value": "yes"}]}
    plain = register_or_reuse(ecs, BASE, any_store)
    assert register_or_reuse(ecs, pinned, any_store).arn == plain.arn  # not a protect tag by default
    assert register_or_reuse(ecs, pinned, any_store, protect_tags=("pinned",)).arn != plain.arn


def test_protect_tags_are_part_of_the_hash_only_when_present() -> None:
    assert content_hash({**BASE, "tags": [KEEP]}) != content_hash(BASE)
    assert content_hash({**BASE, "tags": [{"key": "tdgc:keep", "value": "false"}]}) != content_hash(
        {**BASE, "tags": [KEEP]}
    )
    assert content_hash({**BASE, "tags": [KEEP]}, protect_tags=()) == content_hash(BASE)
    assert content_hash({**BASE, "tags": [{"key": "run", "value": "1"}]}) == content_hash(BASE)


def test_the_default_protect_tags_are_the_default_policys() -> None:
    assert set(PROTECT_TAGS) == set(Rule().protect_tags)


def test_a_reuse_hit_reads_the_revision_once(any_store: Any, sim: Simulator, ecs: Any) -> None:
    register_or_reuse(ecs, BASE, any_store)
    sim.calls.clear()
    sim.mutations.clear()
    assert register_or_reuse(ecs, BASE, any_store).how == "found"
    assert sim.count("DescribeTaskDefinition") == 1 and sim.count("RegisterTaskDefinition") == 0
    if isinstance(any_store, DynamoStore):  # the record, then the use counted and audited
        assert (sim.count("GetItem"), sim.count("UpdateItem"), sim.count("PutItem")) == (1, 1, 1)
    else:
        assert sim.count("ListTaskDefinitions") == 1 and sim.mutating_calls() == 0
