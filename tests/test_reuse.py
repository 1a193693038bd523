"""Register-or-reuse (issue #6): the content hash, both stores, concurrency and ECS's faults."""

from __future__ import annotations

import copy
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tdgc.aws import CLIENT_CONFIG
from tdgc.reuse import Reused, canonical, content_hash, register_or_reuse
from tdgc.simulator import Simulator
from tdgc.usage_store import HASH_TAG, Backoff, Claim, DynamoStore, Record, StoreBusy, TagStore

TABLE = "tdgc-reuse"
QUICK = Backoff(first=0.01, cap=0.05)  # polling a simulated table: no need to wait as long as against AWS
NO_WAIT = Backoff(sleep=lambda seconds: None)
TOO_MANY = "Too many concurrent attempts to create a new revision of the specified family."
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 6, 2, 12, 0, tzinfo=UTC)
ETL = "arn:aws:ecs:us-east-1:123456789012:task-definition/etl"

BASE: dict[str, Any] = {
    "family": "etl",
    "containerDefinitions": [{
        "name": "etl", "image": "repo/etl:1", "memory": 512, "command": ["python", "-m", "etl"],
        "environment": [{"name": "STAGE", "value": "prod"}, {"name": "LEVEL", "value": "info"}],
    }],
}  # fmt: skip
# A Fargate request as a user writes it: units, no defaults, sets in any order.
WEB: dict[str, Any] = {
    "family": "web",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "0.25 vCPU",
    "memory": "0.5 GB",
    "executionRoleArn": "arn:aws:iam::123456789012:role/web-exec",
    "containerDefinitions": [{
        "name": "web", "image": "public.ecr.aws/nginx/nginx:1.27",
        "portMappings": [{"containerPort": 80}],
        "environment": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}],
        "secrets": [{"name": "TOKEN", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/token"}],
        "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"]},
        "logConfiguration": {"logDriver": "awslogs",
                             "options": {"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1"}},
    }],
    "volumes": [{"name": "shared", "efsVolumeConfiguration": {"fileSystemId": "fs-12345678"}}],
    "tags": [{"key": "team", "value": "web"}],
}  # fmt: skip
# What ECS answers DescribeTaskDefinition with for WEB: units converted, defaults filled in, empty lists, and
# the read-only fields (the shape of a real answer, not moto's).
WEB_DESCRIBED: dict[str, Any] = {
    "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7",
    "containerDefinitions": [{
        "name": "web", "image": "public.ecr.aws/nginx/nginx:1.27", "cpu": 0,
        "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}],
        "essential": True,
        "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        "mountPoints": [], "volumesFrom": [],
        "secrets": [{"name": "TOKEN", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/token"}],
        "logConfiguration": {"logDriver": "awslogs",
                             "options": {"awslogs-region": "us-east-1", "awslogs-group": "/ecs/web"},
                             "secretOptions": []},
        "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"], "interval": 30, "timeout": 5,
                        "retries": 3},
        "systemControls": [],
    }],
    "family": "web",
    "executionRoleArn": "arn:aws:iam::123456789012:role/web-exec",
    "networkMode": "awsvpc",
    "revision": 7,
    "volumes": [{"name": "shared", "efsVolumeConfiguration": {"fileSystemId": "fs-12345678", "rootDirectory": "/",
                                                              "transitEncryption": "DISABLED"}}],
    "status": "ACTIVE",
    "requiresAttributes": [{"name": "ecs.capability.task-eni"}, {"name": "ecs.capability.container-health-check"}],
    "placementConstraints": [],
    "compatibilities": ["EC2", "FARGATE"],
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "256",
    "memory": "512",
    "registeredAt": datetime(2026, 6, 1, tzinfo=UTC),
    "registeredBy": "arn:aws:sts::123456789012:assumed-role/deployer/ci",
}  # fmt: skip


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


@pytest.mark.parametrize(("given_", "stored"), [
    ({"cpu": "1 vCPU", "memory": "2 GB"}, {"cpu": "1024", "memory": "2048"}),
    ({"cpu": ".5 vcpu", "memory": "1GB"}, {"cpu": "512", "memory": "1024"}),
    ({"cpu": " 256 ", "memory": "512"}, {"cpu": "256", "memory": "512"}),
])  # fmt: skip
def test_task_cpu_and_memory_hash_as_ecs_stores_them(given_: dict[str, str], stored: dict[str, str]) -> None:
    assert content_hash({**WEB, **given_}) == content_hash({**WEB, **stored})


@pytest.mark.parametrize("change", [
    lambda a: a["containerDefinitions"][0].update(image="repo/etl:2"),
    lambda a: a["containerDefinitions"][0]["environment"][0].update(value="dev"),
    lambda a: a["containerDefinitions"][0].update(essential=False),
    lambda a: a["containerDefinitions"][0].update(command=["python", "-m", "etl", "--full"]),
    lambda a: a["containerDefinitions"][0].update(command=["-m", "python", "etl"]),  # order of a command matters
    lambda a: a.update(family="etl2"),
    lambda a: a.update(networkMode="host"),
])  # fmt: skip
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


# ---- register or reuse, both stores --------------------------------------------------------------------------


@pytest.fixture(params=["dynamodb", "tags"])
def any_store(request: pytest.FixtureRequest, sim: Simulator, ecs: Any) -> Any:
    if request.param == "tags":
        return TagStore(ecs)
    return DynamoStore(request.getfixturevalue("dynamo"), TABLE, poll=QUICK)


def test_register_twice_gives_the_same_arn(any_store: Any, sim: Simulator, ecs: Any) -> None:
    first = register_or_reuse(ecs, BASE, any_store, now=T0)
    second = register_or_reuse(ecs, BASE, any_store, now=T1)
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
    first = register_or_reuse(ecs, BASE, any_store, now=T0)
    ecs.deregister_task_definition(taskDefinition=first.arn)
    if gone != "deregistered":
        ecs.delete_task_definitions(taskDefinitions=[first.arn])
    if gone == "deleted":
        sim.finish_deletes()
    again = register_or_reuse(ecs, BASE, any_store, now=T1)
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
    store: DynamoStore, sim: Simulator, ecs: Any
) -> None:
    sim.inject("RegisterTaskDefinition", "ClientException", times=3, message=TOO_MANY)
    with pytest.raises(ecs.exceptions.ClientException, match="Too many concurrent attempts"):
        register_or_reuse(ecs, BASE, store, backoff=Backoff(attempts=3, sleep=lambda s: None))
    assert sim.count("RegisterTaskDefinition") == 3
    started = time.monotonic()
    assert register_or_reuse(ecs, BASE, store).how == "registered"  # no waiting for the failed caller's lease
    assert time.monotonic() - started < 5


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
    first = register_or_reuse(ecs, BASE, store, now=T0, who="airflow:etl.register")
    register_or_reuse(ecs, BASE, store, now=T1, who="airflow:etl.register")
    record = record_of(store, BASE)
    assert (record.arn, record.revision, record.family) == (first.arn, 1, "etl")
    assert (record.first_registered, record.last_used, record.use_count) == (T0, T1, 2)
    uses = list(store.uses(first.hash))
    assert [(u["how"], u["who"], u["arn"]) for u in uses] == [
        ("registered", "airflow:etl.register", first.arn),
        ("found", "airflow:etl.register", first.arn),
    ]


def test_a_replaced_revision_repairs_the_record(store: DynamoStore, ecs: Any) -> None:
    first = register_or_reuse(ecs, BASE, store, now=T0)
    ecs.deregister_task_definition(taskDefinition=first.arn)
    again = register_or_reuse(ecs, BASE, store, now=T1)
    record = record_of(store, BASE)
    assert (record.arn, record.revision) == (again.arn, 2)
    assert (record.first_registered, record.last_used, record.use_count) == (T0, T1, 2)  # the content's history


def test_a_record_pointing_at_other_content_is_not_trusted(store: DynamoStore, dynamo: Any, ecs: Any) -> None:
    other = register_or_reuse(ecs, with_image(BASE, "repo/etl:2"), store)
    digest = content_hash(BASE)
    dynamo.put_item(TableName=TABLE, Item={
        "pk": {"S": f"content#{digest}"}, "sk": {"S": "record"}, "family": {"S": "etl"},
        "arn": {"S": other.arn}, "revision": {"N": str(other.revision)}, "use_count": {"N": "5"},
    })  # fmt: skip
    got = register_or_reuse(ecs, BASE, store)
    assert got.arn != other.arn and got.how == "replaced"


def test_records_lists_what_the_store_knows(store: DynamoStore, dynamo: Any, ecs: Any) -> None:
    a = register_or_reuse(ecs, BASE, store, now=T0)
    b = register_or_reuse(ecs, WEB, store, now=T0)
    register_or_reuse(ecs, BASE, store, now=T1)
    store.claim(content_hash(with_image(BASE, "repo/etl:3")), "etl")  # in flight: no revision yet
    got = {r.arn: (r.last_used, r.use_count) for r in store.records()}
    assert got == {a.arn: (T1, 2), b.arn: (T0, 1)}


def test_a_crashed_claim_is_taken_over(store: DynamoStore, dynamo: Any, sim: Simulator, ecs: Any) -> None:
    store.create()
    dynamo.put_item(TableName=TABLE, Item={
        "pk": {"S": f"content#{content_hash(BASE)}"}, "sk": {"S": "record"}, "family": {"S": "etl"},
        "owner": {"S": "a-caller-that-crashed"}, "lease_until": {"N": str(time.time() - 1)},
    })  # fmt: skip
    got = register_or_reuse(ecs, BASE, store)
    assert (got.how, got.revision) == ("registered", 1) and sim.count("RegisterTaskDefinition") == 1
    assert record_of(store, BASE).arn == got.arn


def test_a_live_claim_is_waited_for(store: DynamoStore, dynamo: Any, sim: Simulator, ecs: Any) -> None:
    digest = content_hash(BASE)
    other = DynamoStore(boto3.client("dynamodb", region_name=sim.region), TABLE)
    claim = other.claim(digest, "etl")
    assert isinstance(claim, Claim)
    arn = ecs.register_task_definition(**BASE, tags=[{"key": HASH_TAG, "value": digest}])["taskDefinition"][
        "taskDefinitionArn"
    ]
    threading.Timer(0.3, lambda: other.fill(claim, arn, 1, now=T0, who="other", how="registered")).start()
    got = register_or_reuse(ecs, BASE, store)
    assert (got.arn, got.how, got.reused) == (arn, "joined", True)
    assert sim.count("RegisterTaskDefinition") == 1 and record_of(store, BASE).use_count == 2


def test_a_claim_held_too_long_is_an_error(dynamo: Any, ecs: Any) -> None:
    holder = DynamoStore(dynamo, TABLE)
    holder.claim(content_hash(BASE), "etl")
    with pytest.raises(StoreBusy):
        register_or_reuse(ecs, BASE, DynamoStore(dynamo, TABLE, wait=0.2, poll=QUICK))


def test_the_first_registration_to_finish_wins(dynamo: Any, ecs: Any) -> None:
    """A caller whose lease was taken over may still finish first: the later one gets its ARN."""
    digest = content_hash(BASE)
    slow = DynamoStore(dynamo, TABLE, lease=10, clock=lambda: 1000.0)
    taker = DynamoStore(dynamo, TABLE, lease=10, clock=lambda: 2000.0)
    first = slow.claim(digest, "etl")
    second = taker.claim(digest, "etl")  # the first lease ran out at 1010
    assert isinstance(first, Claim) and isinstance(second, Claim) and first.owner != second.owner
    won = slow.fill(first, f"{ETL}:1", 1, now=T0, who="slow", how="registered")
    lost = taker.fill(second, f"{ETL}:2", 2, now=T0, who="taker", how="registered")
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
