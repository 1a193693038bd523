"""The reuse example DAG in a real Airflow, with the Amazon provider's EcsRunTaskOperator, against the simulator.

register (tdgc's operator) -> run (EcsRunTaskOperator, templated with the `task_definition_arn` XCom):
100 `dag.test()` runs with one image leave one revision, every run's XCom holds its ARN and every ECS task
ran it; a new image gives a second revision. The same with the DynamoDB store, which counts the uses.

moto's ECS tasks never finish by themselves (they stay RUNNING, their containers PENDING), and the run
step waits for its task to stop and checks its exit code, as it would on AWS: here each task ends as soon
as it starts, with exit code 0.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import boto3
import pytest
import tdgc_reuse_example as ex
from conftest import DAG_FOLDER, TIMINGS, dag_bag, states, xcoms

from tdgc.airflow_operator import XCOM_KEY, TdgcRegisterTaskDefinitionOperator, request
from tdgc.local.simulator import Simulator
from tdgc.reuse.dynamodb import DynamoStore
from tdgc.reuse.store import HASH_TAG

RUNS = 100  # the issue's figure: 100 runs with the same image leave one revision
IMAGE = "public.ecr.aws/docker/library/busybox:1.36"
NEW_IMAGE = "public.ecr.aws/docker/library/busybox:1.37"
TABLE = "tdgc-reuse"


@pytest.fixture(scope="module")
def example() -> Any:
    return dag_bag().dags[ex.DAG_ID]


@pytest.fixture
def tasks_end_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each task moto starts has stopped by the first DescribeTasks, its containers exited with code 0."""
    from moto.ecs.models import Task

    start = Task.__init__

    def started(self: Any, *args: Any, **kwargs: Any) -> None:
        start(self, *args, **kwargs)
        self.status = self.desired_status = "STOPPED"
        self.stopped_reason = "Essential container in task exited"
        for container in self.containers:
            container.last_status, container.exitCode = "STOPPED", 0

    monkeypatch.setattr(Task, "__init__", started)


def network(region: str = "us-east-1") -> dict[str, Any]:
    """A cluster and a subnet to run the Fargate task in, in `region`: the DAG's params for them."""
    boto3.client("ecs", region_name=region).create_cluster(clusterName="jobs")
    ec2 = boto3.client("ec2", region_name=region)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # as a default VPC has it
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="jobs", Description="jobs", VpcId=vpc)["GroupId"]
    return {"cluster": "jobs", "subnet": subnet, "security_group": group}


@pytest.fixture
def where(sim: Simulator, tasks_end_at_once: None) -> dict[str, Any]:
    return network()


def run(dag: Any, where: dict[str, Any], image: str, store: str = "tags") -> Any:
    """One dag.test() with every param given (in one process, a run's params can outlive it in the DAG)."""
    conf = {"image": image, "store": store, **where}
    assert set(conf) == set(dag.params)
    dr = dag.test(run_conf=conf)
    assert str(dr.state) == "success", states(dr)
    return dr


def arn_of(dr: Any) -> str:
    pushed = xcoms(dr.run_id, "register", XCOM_KEY, dag_id=ex.DAG_ID)
    assert xcoms(dr.run_id, "register", dag_id=ex.DAG_ID) == pushed  # returned too, as the provider's does
    return str(pushed[-1])


def ran(dr: Any) -> str:
    """The task definition the run step's ECS task ran, as ECS describes the task (its ARN: an XCom)."""
    task = xcoms(dr.run_id, "run", "ecs_task_arn", dag_id=ex.DAG_ID)[-1]
    [described] = boto3.client("ecs").describe_tasks(cluster="jobs", tasks=[task])["tasks"]
    assert described["lastStatus"] == "STOPPED"
    return str(described["taskDefinitionArn"])


def family_revisions(sim: Simulator) -> dict[int, str]:
    return {td.revision: td.status for td in sim.revisions() if td.family == ex.FAMILY}


def registrations(sim: Simulator) -> int:
    return sum(1 for op, _ in sim.mutations if op == "RegisterTaskDefinition")


def every_task_ran(arns: set[str]) -> dict[str, int]:
    """taskDefinitionArn -> how many of the cluster's tasks ran it."""
    ecs = boto3.client("ecs")
    tasks = [
        t
        for page in ecs.get_paginator("list_tasks").paginate(cluster="jobs", desiredStatus="STOPPED")
        for t in page["taskArns"]
    ]
    found: dict[str, int] = {}
    for i in range(0, len(tasks), 100):
        for task in ecs.describe_tasks(cluster="jobs", tasks=tasks[i : i + 100])["tasks"]:
            found[task["taskDefinitionArn"]] = found.get(task["taskDefinitionArn"], 0) + 1
    assert set(found) <= arns
    return found


# ---- the DAG file ------------------------------------------------------------------------------------------


def test_the_example_loads_in_its_reuse_shape() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = dag_bag()
    assert bag.import_errors == {}
    ours = [f"{w.category.__name__}: {w.message}" for w in caught if Path(w.filename).name == "tdgc_reuse_example.py"]
    assert ours == []
    dag = bag.dags[ex.DAG_ID]
    assert Path(dag.fileloc).resolve() == DAG_FOLDER / "tdgc_reuse_example.py"
    by_id = {t.task_id: t for t in dag.tasks}
    assert set(by_id) == {"register", "run"}  # no deregister step
    assert isinstance(by_id["register"], TdgcRegisterTaskDefinitionOperator)
    assert type(by_id["run"]).__name__ == "EcsRunTaskOperator"
    assert by_id["run"].upstream_task_ids == {"register"}
    assert "key='task_definition_arn'" in by_id["run"].task_definition
    assert dag.params["store"] == "tags"
    templated = set(by_id["register"].template_fields)
    assert {"family", "container_definitions", "register_task_kwargs", "store"} <= templated  # the provider's + store


def test_the_request_is_the_providers() -> None:
    containers = [{"name": "a", "image": "x"}]
    assert request("f", containers, None) == {"family": "f", "containerDefinitions": containers}
    assert request("f", containers, {"cpu": "256"}) == {"family": "f", "containerDefinitions": containers, "cpu": "256"}
    with pytest.raises(ValueError, match="family is given by its own argument"):
        request("f", containers, {"family": "g"})
    with pytest.raises(ValueError, match="expected a list of dicts, got str"):
        request("f", '[{"name": "a"}]', None)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"store": "dynamodb://x"}, "expected tags or dynamodb://TABLE"),
        ({"register_task_kwargs": {"cpuu": "256"}}, 'ECS would refuse it: Unknown parameter in input: "cpuu"'),
        ({"register_task_kwargs": {"family": "other"}}, "family is given by its own argument"),
        ({"region_name": None}, "no AWS region"),
        ({"register_task_kwargs": {"cpu": "\u00b2"}}, "cpu '\u00b2' is not written in ASCII"),
        ({"register_task_kwargs": {"memory": 512}}, "ECS would refuse it: Invalid type for parameter memory"),
    ],
)
def test_bad_input_fails_the_task_without_retries(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any], message: str
) -> None:
    from tdgc import airflow_operator

    monkeypatch.delenv("AWS_DEFAULT_REGION")  # the simulator's
    arguments = {
        "family": "f",
        "container_definitions": [{"name": "a", "image": "x"}],
        "aws_conn_id": None,
        "region_name": "us-east-1",
        **changes,
    }
    operator = TdgcRegisterTaskDefinitionOperator(task_id="register", **arguments)
    with pytest.raises(airflow_operator.AirflowFailException, match=message):
        operator.execute({"ti": None})
    assert registrations(sim) == 0


# ---- dag.test() against the simulator ----------------------------------------------------------------------


def test_a_hundred_runs_of_one_image_use_one_revision(example: Any, sim: Simulator, where: dict[str, Any]) -> None:
    start = time.monotonic()
    runs = [run(example, where, IMAGE) for _ in range(RUNS)]
    took = time.monotonic() - start
    TIMINGS.append(f"{RUNS} dag.test() runs of {ex.DAG_ID} (tags store): {took:.1f}s, {took / RUNS:.2f}s a run")

    assert len(family_revisions(sim)) == 1
    assert registrations(sim) == 1
    [(revision, status)] = family_revisions(sim).items()
    assert status == "ACTIVE"
    arns = {dr.run_id: arn_of(dr) for dr in runs}
    assert set(arns.values()) == {f"arn:aws:ecs:us-east-1:{sim.account_id}:task-definition/{ex.FAMILY}:{revision}"}
    [arn] = set(arns.values())
    assert all(ran(dr) == arn for dr in runs)  # each run's own ECS task ran it
    assert every_task_ran({arn}) == {arn: RUNS}  # and those are all the tasks in the cluster
    tags = boto3.client("ecs").describe_task_definition(taskDefinition=arn, include=["TAGS"])["tags"]
    assert [t["key"] for t in tags] == [HASH_TAG]

    # A new image: new content, a new revision; the old one stays ACTIVE for tdgc's GC to retire.
    dr = run(example, where, NEW_IMAGE)
    new = arn_of(dr)
    assert new != arn
    assert ran(dr) == new
    assert family_revisions(sim) == {revision: "ACTIVE", revision + 1: "ACTIVE"}
    assert registrations(sim) == 2
    # And back to the first image: its revision again.
    assert arn_of(run(example, where, IMAGE)) == arn
    assert registrations(sim) == 2


def test_the_dynamodb_store_counts_every_use(example: Any, sim: Simulator, where: dict[str, Any]) -> None:
    runs = 10
    arns = {arn_of(run(example, where, IMAGE, f"dynamodb://{TABLE}")) for _ in range(runs)}
    assert len(arns) == 1 and len(family_revisions(sim)) == 1 and registrations(sim) == 1
    [arn] = arns
    store = DynamoStore(boto3.client("dynamodb"), TABLE, create_missing=False)  # created by the first run
    [record] = store.records()
    assert (record.arn, record.family, record.use_count) == (arn, ex.FAMILY, runs)
    uses = list(store.uses(record.hash))
    assert [u["how"] for u in uses] == ["registered"] + ["found"] * (runs - 1)
    assert {u["who"] for u in uses} == {f"airflow:{ex.DAG_ID}.register"}
    assert every_task_ran({arn}) == {arn: runs}

    new = arn_of(run(example, where, NEW_IMAGE, f"dynamodb://{TABLE}"))
    assert new != arn and len(family_revisions(sim)) == 2
    assert sorted((r.arn, r.use_count) for r in store.records()) == sorted([(arn, runs), (new, 1)])


def test_the_aws_connection_is_honoured(
    example: Any, sim: Simulator, tasks_end_at_once: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aws_default as an Airflow connection: its region wins over the worker's, for both steps."""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", '{"conn_type": "aws", "extra": {"region_name": "eu-west-1"}}')
    arn = arn_of(run(example, network("eu-west-1"), IMAGE))  # AWS_DEFAULT_REGION is us-east-1
    assert arn.startswith(f"arn:aws:ecs:eu-west-1:{sim.account_id}:task-definition/{ex.FAMILY}:")
    assert [td.family for td in sim.revisions(region="eu-west-1")] == [ex.FAMILY]
    assert family_revisions(sim) == {}  # nothing in us-east-1
