"""Revisions in use, referenced in each way tdgc reads: plan names the reference, apply touches none."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest

from tdgc.aws.connection import Connection, Role
from tdgc.aws.pacing import Pacer
from tdgc.collect.references import SOURCES, History, discover, parse_reference
from tdgc.collect.run import RunOptions, run
from tdgc.local.simulator import Simulator
from tdgc.policy import REFERENCE_SOURCES, load_policy
from tdgc.report.writers import JsonWriter
from tests.helpers import EVERY_BEHAVIOUR, FAST, write_policy

POLICY = '[defaults]\nkeep_last = 1\ndelete_after = "0 days"\nprotect_tags = {}\n'
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/tdgc-test"
CLUSTER = f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/prod"
CONTAINERS = [{"name": "app", "image": "busybox", "memory": 128}]


def td(n: int, family: str = "web") -> str:
    return f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/{family}:{n}"


def build(sim: Simulator) -> dict[str, str]:
    """The account; returns ARN -> the in_use_by text expected for it."""
    ecs = boto3.client("ecs", region_name="us-east-1")
    for _ in range(18):
        ecs.register_task_definition(family="web", containerDefinitions=CONTAINERS)
    for _ in range(3):
        ecs.register_task_definition(family="canary", containerDefinitions=CONTAINERS)
    ecs.create_cluster(clusterName="prod")
    ecs.create_service(cluster="prod", serviceName="web-svc", taskDefinition=td(1), desiredCount=1)
    # Deployed web:2, then web:1: web:2 is no longer in `deployments`, but a rollback would return to it.
    ecs.create_service(cluster="prod", serviceName="rolling", taskDefinition=td(2), desiredCount=1)
    ecs.update_service(cluster="prod", service="rolling", taskDefinition=td(1))
    # web:15, web:16, web:17: with rollback_depth 1 only web:16 may be rolled back to; web:15 is history.
    ecs.create_service(cluster="prod", serviceName="history", taskDefinition=td(15), desiredCount=1)
    for n in (16, 17):
        ecs.update_service(cluster="prod", service="history", taskDefinition=td(n))
    # canary:1, canary:2 completed, canary:3 still rolling out: a rollback may return to canary:2 or canary:1.
    ecs.create_service(cluster="prod", serviceName="canary", taskDefinition=td(1, "canary"), desiredCount=1)
    ecs.update_service(cluster="prod", service="canary", taskDefinition=td(2, "canary"))
    sim.deployments_complete = False
    ecs.update_service(cluster="prod", service="canary", taskDefinition=td(3, "canary"))
    sim.deployments_complete = True

    def deployment(service: str, newest: int = 0) -> str:
        listed = ecs.list_service_deployments(cluster="prod", service=service)["serviceDeployments"]
        arns = [d["serviceDeploymentArn"] for d in sorted(listed, key=lambda d: d["createdAt"], reverse=True)]
        return f"rollback target of service prod/{service} (deployment {arns[newest].rsplit('/', 1)[1]})"

    ecs.create_service(cluster="prod", serviceName="ext", deploymentController={"type": "EXTERNAL"}, desiredCount=0)
    ecs.create_task_set(cluster="prod", service="ext", taskDefinition=td(3))
    network = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
    task = ecs.run_task(cluster="prod", taskDefinition=td(4), launchType="FARGATE", networkConfiguration=network)
    inactive_task = ecs.run_task(
        cluster="prod", taskDefinition=td(9), launchType="FARGATE", networkConfiguration=network
    )
    for n in (9, 10):
        ecs.deregister_task_definition(taskDefinition=td(n))  # web:9 INACTIVE but running; web:10 INACTIVE, unused

    events = boto3.client("events", region_name="us-east-1")
    events.create_event_bus(Name="ops")
    events.put_rule(Name="nightly", EventBusName="ops", EventPattern=json.dumps({"source": ["ops.deploys"]}))
    events.put_targets(
        Rule="nightly",
        EventBusName="ops",
        Targets=[{"Id": "1", "Arn": CLUSTER, "RoleArn": ROLE, "EcsParameters": {"TaskDefinitionArn": td(5)}}],
    )
    events.put_rule(Name="latest", ScheduleExpression="rate(1 hour)")
    events.put_targets(
        Rule="latest",
        Targets=[
            {
                "Id": "1",
                "Arn": CLUSTER,
                "RoleArn": ROLE,
                "EcsParameters": {"TaskDefinitionArn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/web"},
            }
        ],
    )

    scheduler = boto3.client("scheduler", region_name="us-east-1")
    scheduler.create_schedule_group(Name="reports")
    target = {"Arn": CLUSTER, "RoleArn": ROLE, "EcsParameters": {"TaskDefinitionArn": td(6)}}
    scheduler.create_schedule(
        Name="weekly",
        GroupName="reports",
        ScheduleExpression="rate(7 days)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
    )
    # The universal target: Scheduler calls RunTask itself, with the request as the target's Input.
    universal = {
        "Arn": "arn:aws:scheduler:::aws-sdk:ecs:runTask",
        "RoleArn": ROLE,
        "Input": json.dumps({"Cluster": CLUSTER, "TaskDefinition": td(11), "Count": 1}),
    }
    scheduler.create_schedule(
        Name="sdk-nightly", ScheduleExpression="cron(0 2 * * ? *)", FlexibleTimeWindow={"Mode": "OFF"}, Target=universal
    )
    # A rule whose target (an orchestrator's Lambda) is handed the revision to run in its Input.
    events.put_rule(Name="adhoc", ScheduleExpression="rate(1 day)")
    events.put_targets(
        Rule="adhoc",
        Targets=[
            {
                "Id": "1",
                "Arn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:run",
                "Input": json.dumps({"taskDefinitionArn": td(13)}),
            }
        ],
    )

    pipes = boto3.client("pipes", region_name="us-east-1")
    pipes.create_pipe(
        Name="orders",
        Source=f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders",
        Target=CLUSTER,
        RoleArn=ROLE,
        TargetParameters={"EcsTaskParameters": {"TaskDefinitionArn": td(14)}},
    )
    pipes.create_pipe(
        Name="audit",
        Source=f"arn:aws:sqs:us-east-1:{ACCOUNT}:audit",
        RoleArn=ROLE,
        Target=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:audit",
    )  # not ECS: never described

    sfn = boto3.client("stepfunctions", region_name="us-east-1")

    def definition(reference: str) -> str:
        state = {
            "Type": "Task",
            "Resource": "arn:aws:states:::ecs:runTask.sync",
            "End": True,
            "Parameters": {"Cluster": CLUSTER, "TaskDefinition": reference},
        }
        return json.dumps({"StartAt": "Run", "States": {"Run": state}})

    machine = sfn.create_state_machine(name="etl", definition=definition("web:8"), roleArn=ROLE, publish=True)
    sfn.update_state_machine(stateMachineArn=machine["stateMachineArn"], definition=definition(td(7)))
    sdk = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:ecs:runTask",
        "End": True,
        "Parameters": {"Cluster": CLUSTER, "TaskDefinition": td(12)},
    }
    sfn.create_state_machine(
        name="etl-sdk", definition=json.dumps({"StartAt": "Run", "States": {"Run": sdk}}), roleArn=ROLE
    )

    cfn = boto3.client("cloudformation", region_name="us-east-1")
    template = {
        "Resources": {
            "TD": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    "Family": "stackfam",
                    "ContainerDefinitions": [{"Name": "a", "Image": "b", "Memory": 64}],
                },
            }
        }
    }
    cfn.create_stack(StackName="app-stack", TemplateBody=json.dumps(template))
    ecs.register_task_definition(family="stackfam", containerDefinitions=CONTAINERS)  # stackfam:1 is beyond keep_last

    # An Express service (ECS-managed): its active configuration runs express:1; express:2 is the newest.
    for _ in range(2):
        ecs.register_task_definition(family="express", containerDefinitions=CONTAINERS)
    sim.express_service("api", td(1, "express"), cluster="prod")

    codedeploy = build_codedeploy(sim)
    states = build_terraform_states()

    task_id = task["tasks"][0]["taskArn"].rsplit("/", 1)[1]
    inactive_id = inactive_task["tasks"][0]["taskArn"].rsplit("/", 1)[1]
    return {
        td(1): "service prod/web-svc",
        td(2): deployment("rolling"),
        td(16): deployment("history"),
        td(17): "service prod/history",
        td(1, "canary"): deployment("canary", 1),
        td(2, "canary"): deployment("canary", 0),
        td(3, "canary"): "service prod/canary",
        td(3): "service prod/ext (task set)",
        td(4): f"task prod/{task_id}",
        td(5): "rule ops/nightly",
        td(6): "schedule reports/weekly",
        td(7): "state machine etl",
        td(8): "state machine etl (version 1)",
        td(9): f"task prod/{inactive_id}",
        td(11): "schedule default/sdk-nightly",
        td(12): "state machine etl-sdk",
        td(13): "rule default/adhoc (input)",
        td(14): "pipe orders",
        td(18): "rule default/latest (by family name)",
        td(1, "stackfam"): "stack app-stack",
        td(1, "express"): "express service prod/api",
        **codedeploy,
        **states,
    }


def appspec(reference: str, *, yaml: bool = False) -> str:
    """An ECS AppSpec, as CodeDeploy keeps it: JSON, or YAML."""
    if yaml:
        return (
            f"version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n"
            f'        TaskDefinition: "{reference}"  # the revision to shift traffic to\n'
            f"        LoadBalancerInfo:\n          ContainerName: app\n          ContainerPort: 80\n"
        )
    properties = {"TaskDefinition": reference, "LoadBalancerInfo": {"ContainerName": "app", "ContainerPort": 80}}
    return json.dumps(
        {"version": 0.0, "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": properties}}]}
    )


def build_codedeploy(sim: Simulator) -> dict[str, str]:
    """Blue/green deployments of bg (bg:1, then bg:2 done; bg:3 in flight; bg:4 newest and unused), one whose
    AppSpec is in S3 (bgs:1), and an EC2 application's deployment in flight, which is not ECS's business."""
    ecs = boto3.client("ecs", region_name="us-east-1")
    for family, count in (("bg", 4), ("bgs", 2)):
        for _ in range(count):
            ecs.register_task_definition(family=family, containerDefinitions=CONTAINERS)
    cd = boto3.client("codedeploy", region_name="us-east-1")
    role = f"arn:aws:iam::{ACCOUNT}:role/codedeploy"
    for app, platform in (("bg-app", "ECS"), ("s3-app", "ECS"), ("ec2-app", "Server")):
        cd.create_application(applicationName=app, computePlatform=platform)
        cd.create_deployment_group(
            applicationName=app,
            deploymentGroupName="blue-green",
            serviceRoleArn=role,
            ecsServices=[{"serviceName": "web-svc", "clusterName": "prod"}],
        )

    def deploy(app: str, revision: dict[str, Any]) -> str:
        return str(
            cd.create_deployment(applicationName=app, deploymentGroupName="blue-green", revision=revision)[
                "deploymentId"
            ]
        )

    def inline(content: str) -> dict[str, Any]:
        return {"revisionType": "AppSpecContent", "appSpecContent": {"content": content}}

    deploy("bg-app", inline(appspec(td(1, "bg"))))
    done = deploy("bg-app", inline(appspec(td(2, "bg"), yaml=True)))
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="appspecs")
    s3.put_object(Bucket="appspecs", Key="bgs.yaml", Body=appspec(td(1, "bgs"), yaml=True).encode())
    from_s3 = deploy(
        "s3-app", {"revisionType": "S3", "s3Location": {"bucket": "appspecs", "key": "bgs.yaml", "bundleType": "YAML"}}
    )
    sim.deployments_complete = False
    flying = deploy("bg-app", inline(appspec(td(3, "bg"))))
    deploy(
        "ec2-app", {"revisionType": "S3", "s3Location": {"bucket": "appspecs", "key": "app.zip", "bundleType": "zip"}}
    )
    sim.deployments_complete = True
    return {
        td(1, "bg"): f"codedeploy bg-app/blue-green (deployment {done}, previous revision)",
        td(2, "bg"): f"codedeploy bg-app/blue-green (deployment {done})",
        td(3, "bg"): f"codedeploy bg-app/blue-green (deployment {flying})",
        td(1, "bgs"): f"codedeploy s3-app/blue-green (deployment {from_s3})",
    }


STATE = ("--terraform-state", "s3://tf-state/prod/")


def terraform_state(resources: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {
            "version": 4,
            "terraform_version": "1.9.5",
            "serial": 7,
            "lineage": "4b1c",
            "outputs": {},
            "resources": resources,
            "check_results": None,
        }
    ).encode()


def build_terraform_states() -> dict[str, str]:
    """A state in S3 whose module holds a task definition (tf:1) and a service on tf:2 (by FAMILY:REVISION); its
    staging workspace's copy runs tf:3; tf:4 is the newest. A state elsewhere in the bucket is not read."""
    ecs = boto3.client("ecs", region_name="us-east-1")
    for _ in range(4):
        ecs.register_task_definition(family="tf", containerDefinitions=CONTAINERS)
    provider = 'provider["registry.terraform.io/hashicorp/aws"]'
    service_arn = f"arn:aws:ecs:us-east-1:{ACCOUNT}:service/prod/tf-web"
    prod = terraform_state(
        [
            {
                "module": "module.app",
                "mode": "managed",
                "type": "aws_ecs_task_definition",
                "name": "web",
                "provider": provider,
                "instances": [
                    {
                        "schema_version": 1,
                        "attributes": {
                            "arn": td(1, "tf"),
                            "arn_without_revision": td(1, "tf").rsplit(":", 1)[0],
                            "family": "tf",
                            "revision": 1,
                            "container_definitions": json.dumps(CONTAINERS),
                        },
                    }
                ],
            },
            {
                "module": "module.app",
                "mode": "managed",
                "type": "aws_ecs_service",
                "name": "web",
                "provider": provider,
                "instances": [
                    {
                        "schema_version": 0,
                        "attributes": {"id": service_arn, "cluster": CLUSTER, "task_definition": "tf:2"},
                    }
                ],
            },
            {
                "mode": "managed",
                "type": "aws_ecs_service",
                "name": "elsewhere",
                "provider": provider,
                "instances": [
                    {"attributes": {"id": f"arn:aws:ecs:eu-west-1:{ACCOUNT}:service/prod/x", "task_definition": "tf:3"}}
                ],
            },  # another region's tf:3
        ]
    )
    staging = terraform_state(
        [
            {
                "module": "module.app",
                "mode": "managed",
                "type": "aws_ecs_service",
                "name": "web",
                "provider": provider,
                "instances": [{"index_key": "blue", "attributes": {"id": service_arn, "task_definition": td(3, "tf")}}],
            },
        ]
    )
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="tf-state")
    s3.put_object(Bucket="tf-state", Key="prod/terraform.tfstate", Body=prod)
    s3.put_object(Bucket="tf-state", Key="env:/staging/prod/terraform.tfstate", Body=staging)
    s3.put_object(Bucket="tf-state", Key="dev/terraform.tfstate", Body=b"not read: not under the prefix")
    s3.put_object(Bucket="tf-state", Key="prod/terraform.tfstate.backup", Body=b"not a *.tfstate")
    where = "terraform state s3://tf-state/prod/terraform.tfstate"
    return {
        td(1, "tf"): f"{where} (module.app.aws_ecs_task_definition.web)",
        td(2, "tf"): f"{where} (module.app.aws_ecs_service.web)",
        td(
            3, "tf"
        ): 'terraform state s3://tf-state/env:/staging/prod/terraform.tfstate (module.app.aws_ecs_service.web["blue"])',
    }


@pytest.fixture
def used(sim: Simulator) -> dict[str, str]:
    return build(sim)


@EVERY_BEHAVIOUR
def test_plan_keeps_every_referenced_revision_and_names_the_reference(
    tdgc: Any, sim: Simulator, used: dict[str, str], tmp_path: Path
) -> None:
    setup_mutations = sim.mutating_calls()
    ran = tdgc("plan", write_policy(tmp_path, POLICY), "--output", "json", *STATE, *FAST)
    assert ran.code == 0, ran.err
    report = ran.json()
    decisions = {d["arn"]: d for d in report["decisions"]}
    for arn, use in used.items():
        assert decisions[arn]["action"] == "keep", arn
        assert use in decisions[arn]["in_use_by"], (arn, decisions[arn]["in_use_by"])
        assert decisions[arn]["reason"].startswith("in use by ")
    # Everything else the policy releases is still released.
    assert {a for a, d in decisions.items() if d["action"] == "deregister"} == {td(15)}
    assert {a for a, d in decisions.items() if d["action"] == "delete"} == {td(10)}
    assert report["incomplete"] == [] and report["summary"]["protected"] == len(used)
    assert sim.mutating_calls() == setup_mutations
    assert sim.count("DescribePipe") == 1, "only the pipe that runs a task is described"
    # Three AppSpecs only hashed (bg:1, bg:2, bg:3; bg:2 is both one deployment's and the next's previous).
    assert sim.count("GetApplicationRevision") == (0 if sim.behaviour.appspec_in_deployment else 3)
    assert sim.count("DescribeExpressGatewayService") == 1


def test_apply_touches_no_referenced_revision(tdgc: Any, sim: Simulator, used: dict[str, str], tmp_path: Path) -> None:
    before = {t.arn: t.status for t in sim.revisions()}
    mutations_before = len(sim.mutations)
    ran = tdgc("apply", write_policy(tmp_path, POLICY), "--yes", "--output", "json", *STATE, *FAST)
    assert ran.code == 0, ran.err
    after = {t.arn: t.status for t in sim.revisions()}
    assert all(after[arn] == before[arn] for arn in used)
    assert {a for a, s in after.items() if s != before[a]} == {td(10), td(15)}
    touched = [p.get("taskDefinition") or p.get("taskDefinitions") for _, p in sim.mutations[mutations_before:]]
    assert not {json.dumps(t) for t in touched} & {json.dumps(a) for a in used}


@pytest.mark.parametrize(
    ("source", "freed"),
    [
        ("services", [td(1), td(3)]),
        ("rollback", [td(2), td(16)]),
        ("tasks", [td(4)]),
        ("rules", [td(5), td(13)]),
        ("schedules", [td(6), td(11)]),
        ("pipes", [td(14)]),
        ("state_machines", [td(7), td(8), td(12)]),
        ("stacks", [td(1, "stackfam")]),
        ("express_services", [td(1, "express")]),
        ("codedeploy", [td(1, "bg"), td(2, "bg"), td(3, "bg"), td(1, "bgs")]),
        ("terraform", [td(1, "tf"), td(2, "tf"), td(3, "tf")]),
    ],
)
def test_each_source_can_be_switched_off(
    source: str, freed: list[str], tdgc: Any, used: dict[str, str], tmp_path: Path
) -> None:
    by_flag = tdgc(
        "plan", write_policy(tmp_path, POLICY), "--skip-reference", source, "--output", "json", *STATE, *FAST
    )
    in_policy = tdgc(
        "plan", write_policy(tmp_path, POLICY + f"[references]\n{source} = false\n"), "--output", "json", *STATE, *FAST
    )
    for ran in (by_flag, in_policy):
        actions = {d["arn"]: d["action"] for d in ran.json()["decisions"]}
        assert {arn: actions[arn] for arn in freed} == dict.fromkeys(freed, "deregister")
        assert source not in ran.json()["policy"]["safety"]["references"]


def test_skip_all_references(tdgc: Any, sim: Simulator, used: dict[str, str], tmp_path: Path) -> None:
    before = sim.calls.copy()
    ran = tdgc("plan", write_policy(tmp_path, POLICY), "--skip-reference", "all", "--output", "json", *FAST)
    assert ran.json()["summary"]["protected"] == 0
    made = set((sim.calls - before).keys()) - {"sts:GetCallerIdentity"}  # the target's first call, always made
    assert made and all(op.startswith("ecs:") and "TaskDefinition" in op for op in made), made


def test_a_dynamic_state_machine_reference_is_reported(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    sim.seed("job", registered_at=None)
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::ecs:runTask",
        "End": True,
        "Parameters": {"TaskDefinition.$": "$.taskdef"},
    }
    sfn.create_state_machine(name="dyn", roleArn=ROLE, definition=json.dumps({"StartAt": "R", "States": {"R": state}}))
    report = tdgc("plan", write_policy(tmp_path, POLICY), "--output", "json", *FAST).json()
    assert (
        "us-east-1: state machine dyn chooses its task definition at run time ($.taskdef); not protected"
        in report["notes"]
    )


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        (f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/web:3", ("web", 3)),
        (f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/web", ("web", None)),
        (f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task-definition/web:3", None),
        ("web:3", ("web", 3)),
        ("web", ("web", None)),
        ("web:latest", None),
        ("", None),
        (f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/prod", None),
    ],
)
def test_parse_reference(text: str, parsed: tuple[str, int | None] | None) -> None:
    assert parse_reference(text, "us-east-1") == parsed


@EVERY_BEHAVIOUR
@pytest.mark.parametrize(("max_age", "web_10"), [(0.0, "ACTIVE"), (3600.0, "INACTIVE")])
def test_references_are_read_again_during_a_long_apply(
    max_age: float, web_10: str, sim: Simulator, tmp_path: Path
) -> None:
    for _ in range(40):
        sim.seed("web", registered_at=None)
    sim.backend().create_cluster("prod")
    # Right after tdgc's first deregister, someone rolls a service back to web:10 (deregistered much later).
    sim.after(
        "DeregisterTaskDefinition",
        lambda: boto3.client("ecs", region_name="us-east-1").create_service(
            cluster="prod", serviceName="rollback", taskDefinition=td(10), desiredCount=1
        ),
    )
    policy = replace(load_policy(write_policy(tmp_path, POLICY)), rates={})
    out = io.StringIO()
    run(RunOptions(policy=policy, apply=True, references_max_age=max_age), [JsonWriter(out)])
    report = json.loads(out.getvalue())
    assert sim.backend().task_definitions["web"][10].status == web_10
    if web_10 == "ACTIVE":  # seen when deciding web:10, or else just before its deregister would have gone out
        decision = next(d for d in report["decisions"] if d["revision"] == 10)
        outcome = next((o for o in report["outcomes"] if o["arn"] == td(10)), None)
        if decision["action"] == "keep":
            assert decision["in_use_by"] == ["service prod/rollback", "service prod/rollback (deployment)"]
            assert outcome is None
        else:
            assert outcome is not None and outcome["result"] == "skipped"
            assert outcome["error"] == "in use by service prod/rollback (seen after the decision)"


@pytest.mark.parametrize(("depth", "kept", "freed"), [(0, [], [2, 15, 16]), (1, [2, 16], [15]), (2, [2, 15, 16], [])])
def test_rollback_depth_decides_how_far_back_rollback_targets_are_kept(
    depth: int, kept: list[int], freed: list[int], tdgc: Any, used: dict[str, str], tmp_path: Path
) -> None:
    ran = tdgc(
        "plan", write_policy(tmp_path, POLICY + f"[references]\nrollback_depth = {depth}\n"), "--output", "json", *FAST
    )
    decisions = {d["arn"]: d for d in ran.json()["decisions"]}
    assert all(decisions[td(n)]["in_use_by"][0].startswith("rollback target of service prod/") for n in kept)
    assert all(decisions[td(n)]["action"] == "deregister" for n in freed)
    assert ran.json()["policy"]["safety"]["rollback_depth"] == depth


def test_a_refresh_reads_the_history_of_only_the_services_deployed_since(sim: Simulator, used: dict[str, str]) -> None:
    target = Connection(boto3.Session(region_name="us-east-1"), "us-east-1")
    history: History = {}
    before = sim.count("ListServiceDeployments")  # what building the account asked
    first = discover(target, ["rollback"], Pacer({}), 1, history)
    listed = sim.count("ListServiceDeployments")
    assert listed - before == 4, "every service of the rolling (ECS) type, not prod/ext (EXTERNAL)"
    again = discover(target, ["rollback"], Pacer({}), 1, history)
    assert sim.count("ListServiceDeployments") == listed, "nothing deployed since: nothing read again"
    assert again.by_revision == first.by_revision and first.by_revision[("web", 16)]
    boto3.client("ecs", region_name="us-east-1").update_service(
        cluster="prod", service="history", taskDefinition=td(18)
    )
    third = discover(target, ["rollback"], Pacer({}), 1, history)
    assert sim.count("ListServiceDeployments") == listed + 1, "only the service deployed since"
    assert ("web", 17) in third.by_revision and ("web", 16) not in third.by_revision


APPSPEC_IN_S3 = {"revisionType": "S3", "s3Location": {"bucket": "appspecs", "key": "bg.yaml", "bundleType": "YAML"}}


@pytest.mark.parametrize(
    ("revision", "refused", "problem"),
    [
        (
            {
                "revisionType": "AppSpecContent",
                "appSpecContent": {
                    "content": (
                        "Resources:\n  - TargetService:\n      Properties:\n"
                        "        TaskDefinition: >-\n          web:1\n"
                    )
                },
            },
            False,
            "an AppSpec names a TaskDefinition in a form tdgc cannot read",
        ),
        (
            {"revisionType": "S3", "s3Location": {"bucket": "appspecs", "key": "bundle.zip", "bundleType": "zip"}},
            False,
            "an AppSpec bundled as zip cannot be read",
        ),
        (
            {"revisionType": "S3", "s3Location": {"bucket": "appspecs", "key": "missing.yaml", "bundleType": "YAML"}},
            False,
            "app: AppSpec s3://appspecs/missing.yaml: NoSuchKey",
        ),
        (APPSPEC_IN_S3, True, "app: AppSpec s3://appspecs/bg.yaml: AccessDenied: Access Denied"),
    ],
)
def test_a_codedeploy_appspec_tdgc_cannot_read_fails_the_source_closed(
    revision: dict[str, Any], refused: bool, problem: str, sim: Simulator
) -> None:
    """Each names what cannot be read; an AppSpec in S3 the caller may not read (`refused`: S3 refuses the
    GetObject, as without a grant on the artifact bucket) names the object, and the fix what to grant."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="appspecs")
    s3.put_object(Bucket="appspecs", Key="bg.yaml", Body=appspec(td(1)).encode())
    if refused:
        sim.inject("GetObject", "AccessDenied", times=-1, message="Access Denied")
    cd = boto3.client("codedeploy", region_name="us-east-1")
    cd.create_application(applicationName="app", computePlatform="ECS")
    cd.create_deployment_group(applicationName="app", deploymentGroupName="g", serviceRoleArn=ROLE)
    cd.create_deployment(applicationName="app", deploymentGroupName="g", revision=revision)
    refs = discover(Connection(boto3.Session(region_name="us-east-1"), "us-east-1"), ["codedeploy"], Pacer({}))
    assert list(refs.failed) == ["codedeploy"] and problem in refs.failed["codedeploy"]
    assert "(fix: grant codedeploy:ListApplications" in refs.failure_text()
    assert (
        "s3:GetObject on the AppSpecs kept in S3 (the templates' CodeDeployAppSpecBuckets / "
        "codedeploy_appspec_buckets, and the member role's CodeDeployAppSpecBuckets" in refs.failure_text()
    )


def test_an_appspec_in_s3_is_read_with_the_target_s_credentials_not_the_caller_s(sim: Simulator) -> None:
    """Unlike a Terraform state (the caller's own read), an AppSpec is read as the target: in a member account,
    through the member role, which is where tdgc.permissions' account statements grant it."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="appspecs")
    s3.put_object(Bucket="appspecs", Key="bg.yaml", Body=appspec(td(1)).encode())
    cd = boto3.client("codedeploy", region_name="us-east-1")
    cd.create_application(applicationName="app", computePlatform="ECS")
    cd.create_deployment_group(applicationName="app", deploymentGroupName="g", serviceRoleArn=ROLE)
    cd.create_deployment(applicationName="app", deploymentGroupName="g", revision=APPSPEC_IN_S3)
    member, caller = _Recording(region_name="us-east-1"), _Recording(region_name="us-east-1")
    target = Connection(member, "us-east-1", role=Role(f"arn:aws:iam::{ACCOUNT}:role/tdgc-member"), caller=caller)
    refs = discover(target, ["codedeploy"], Pacer({}))
    assert not refs.failed and refs.by_revision[("web", 1)]
    assert sim.count("GetObject") == 1
    assert "s3" in member.services and caller.services == set()


def test_a_document_nested_too_deeply_to_read_fails_its_source_closed(sim: Simulator) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    events = boto3.client("events", region_name="us-east-1")
    events.put_rule(Name="deep", ScheduleExpression="rate(1 day)")
    events.put_targets(
        Rule="deep", Targets=[{"Id": "1", "Arn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f", "Input": deep}]
    )
    # Deep, but within what json reads: walked without recursion.
    nested: Any = {"TaskDefinition": td(3)}
    for _ in range(900):
        nested = [nested]
    events.put_rule(Name="nested", ScheduleExpression="rate(1 day)")
    events.put_targets(
        Rule="nested",
        Targets=[{"Id": "1", "Arn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f", "Input": json.dumps(nested)}],
    )
    refs = discover(Connection(boto3.Session(region_name="us-east-1"), "us-east-1"), ["rules"], Pacer({}))
    assert refs.failed == {"rules": "rule default/deep (input): JSON nested too deeply to read"}


class _Recording(boto3.Session):
    """A session that notes which services its clients are for."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services: set[str] = set()

    def client(self, service_name: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.services.add(service_name)
        return super().client(service_name, *args, **kwargs)


@pytest.mark.parametrize("source", sorted(REFERENCE_SOURCES))
def test_each_source_reads_only_the_services_listed_for_it(source: str, sim: Simulator, used: dict[str, str]) -> None:
    """A source's services are what a parallel run parses the models of before its targets start: a source that
    reads a service not listed would parse it once per target, all at once."""
    assert set(SOURCES) == set(REFERENCE_SOURCES)
    session = _Recording(region_name="us-east-1")
    found = discover(Connection(session, "us-east-1"), [source], Pacer({}))
    assert not found.failed
    if source != "terraform":  # its states come from the run (none here): nothing to read
        assert session.services
    assert session.services <= set(SOURCES[source].services)
