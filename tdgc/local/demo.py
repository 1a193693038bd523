"""`tdgc demo`: a believable account in the simulator, planned with the demo policy, in seconds."""

from __future__ import annotations

import contextlib
import json
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import IO, Any

import boto3

from tdgc.aws.pacing import AWS_BUCKETS, unpaced
from tdgc.collect.run import RunOptions, run
from tdgc.errors import EXIT_OK, UsageError
from tdgc.local.simulator import Simulator
from tdgc.policy import Overrides, load_policy
from tdgc.report.model import Writer
from tdgc.report.writers import TableWriter, make_writer

TWO_YEARS = timedelta(days=730)


def seed_demo_account(sim: Simulator, now: datetime, rng: random.Random) -> None:
    """Dozens of families, thousands of revisions over two years, as an account that grew them would have."""
    start = now - TWO_YEARS

    def orchestrated(family: str, every: timedelta, since: datetime) -> None:
        # The create → run → deregister pattern: a revision per run, deregistered minutes later.
        at = since
        while at < now - timedelta(hours=1):
            sim.seed(
                family, registered_at=at, status="INACTIVE", deregistered_at=at + timedelta(minutes=rng.randint(3, 50))
            )
            at += every * rng.uniform(0.8, 1.2)
        sim.seed(family, registered_at=at)  # the current run's revision, still ACTIVE

    def deployed(family: str, deploys: int, since: datetime, ci_deregisters: bool, golden: int | None = None) -> None:
        # A service: a revision per deploy; some CI pipelines deregister all but the newest few.
        times = sorted(since + (now - since) * rng.random() for _ in range(deploys))
        for n, at in enumerate(times):
            old = n < deploys - 8 and ci_deregisters
            tags = {"tdgc:keep": "true"} if n == golden else {"team": family.split("-")[0]}
            if old:
                gone = min(now - timedelta(minutes=5), times[min(n + 8, deploys - 1)])
                sim.seed(family, registered_at=at, status="INACTIVE", deregistered_at=gone, tags=tags)
            else:
                sim.seed(family, registered_at=at, tags=tags)

    orchestrated("airflow-dbt-daily", timedelta(days=1), now - timedelta(days=400))
    orchestrated("airflow-ingest-hourly", timedelta(hours=1), now - timedelta(days=15))
    orchestrated("airflow-reports-weekly", timedelta(days=7), start)
    orchestrated("dbt-models-nightly", timedelta(days=2), now - timedelta(days=400))
    for name in ("dbt-snapshot", "dbt-seed"):
        orchestrated(name, timedelta(days=rng.choice([2, 3, 5])), now - timedelta(days=rng.randint(200, 700)))
    deployed("web-api", 180, start, ci_deregisters=False, golden=40)
    deployed("checkout-svc", 140, start, ci_deregisters=True)
    deployed("worker-queue", 90, start, ci_deregisters=False)
    deployed("prod-payments", 120, start, ci_deregisters=True)
    deployed("prod-ledger", 60, start, ci_deregisters=False)
    teams = ("search", "billing", "identity", "growth", "data", "ml", "mobile", "ops")
    for n in range(27):
        family = f"{teams[n % len(teams)]}-svc-{n:02d}"
        deployed(
            family, rng.randint(3, 60), start + timedelta(days=rng.randint(0, 600)), ci_deregisters=rng.random() < 0.5
        )
    for n in range(6):  # one-off jobs, run a few times and abandoned
        at = start + timedelta(days=rng.randint(0, 700))
        for _ in range(rng.randint(1, 4)):
            sim.seed(
                f"oneoff-backfill-{n}", registered_at=at, status="INACTIVE", deregistered_at=at + timedelta(hours=1)
            )
            at += timedelta(hours=rng.randint(1, 48))
    for _ in range(12):  # registered before ECS kept timestamps
        sim.seed("legacy-cron", registered_at=None, status="INACTIVE")
    for _ in range(3):
        sim.seed("legacy-cron", registered_at=None)


def wire_references(sim: Simulator) -> None:
    """What keeps revisions in use: a service rolled back to an old revision, another's rollback target, a
    nightly rule that names an INACTIVE revision, a Step Functions workflow, an ECS task running right now, a
    Scheduler schedule that calls RunTask itself (a universal target), a pipe that starts a task per queued
    message, an Express service, a CodeDeploy blue/green deployment and the revision before it, and a
    Terraform state in S3."""
    account, region = sim.account_id, sim.region
    cluster = f"arn:aws:ecs:{region}:{account}:cluster/prod"
    role = f"arn:aws:iam::{account}:role/demo"
    ecs = boto3.client("ecs", region_name=region)
    ecs.create_cluster(clusterName="prod")
    ecs.create_service(cluster="prod", serviceName="web-api", taskDefinition="web-api:150", desiredCount=2)
    # A deploy of worker-queue:80 then :85: a rollback would return to :80, no longer in its deployments.
    ecs.create_service(cluster="prod", serviceName="worker", taskDefinition="worker-queue:80", desiredCount=1)
    ecs.update_service(cluster="prod", service="worker", taskDefinition="worker-queue:85")
    network: Any = {"awsvpcConfiguration": {"subnets": ["subnet-demo"]}}
    ecs.run_task(cluster="prod", taskDefinition="worker-queue:60", launchType="FARGATE", networkConfiguration=network)
    events = boto3.client("events", region_name=region)
    events.put_rule(Name="nightly-reconcile", ScheduleExpression="cron(0 3 * * ? *)")
    old_checkout = f"arn:aws:ecs:{region}:{account}:task-definition/checkout-svc:20"
    target = {"Id": "ecs", "Arn": cluster, "RoleArn": role, "EcsParameters": {"TaskDefinitionArn": old_checkout}}
    events.put_targets(Rule="nightly-reconcile", Targets=[target])
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::ecs:runTask.sync",
        "End": True,
        "Parameters": {"Cluster": cluster, "TaskDefinition": "search-svc-16:30"},
    }
    boto3.client("stepfunctions", region_name=region).create_state_machine(
        name="search-reindex", roleArn=role, definition=json.dumps({"StartAt": "Run", "States": {"Run": state}})
    )
    run_task = {"Cluster": cluster, "TaskDefinition": f"arn:aws:ecs:{region}:{account}:task-definition/worker-queue:45"}
    boto3.client("scheduler", region_name=region).create_schedule(
        Name="weekly-drain",
        ScheduleExpression="cron(0 4 ? * MON *)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": "arn:aws:scheduler:::aws-sdk:ecs:runTask", "RoleArn": role, "Input": json.dumps(run_task)},
    )
    pipe_target = {
        "EcsTaskParameters": {"TaskDefinitionArn": f"arn:aws:ecs:{region}:{account}:task-definition/worker-queue:40"}
    }
    boto3.client("pipes", region_name=region).create_pipe(
        Name="orders-to-worker",
        Source=f"arn:aws:sqs:{region}:{account}:orders",
        Target=cluster,
        RoleArn=role,
        TargetParameters=pipe_target,
    )
    sim.express_service("docs-site", "web-api:160", cluster="prod")
    _codedeploy(region, account)
    _terraform_state(region, account)


def _codedeploy(region: str, account: str) -> None:
    """checkout-svc deployed blue/green by CodeDeploy: :133, then :134; a redeploy of the previous revision
    would return to :133."""
    codedeploy = boto3.client("codedeploy", region_name=region)
    codedeploy.create_application(applicationName="checkout", computePlatform="ECS")
    codedeploy.create_deployment_group(
        applicationName="checkout",
        deploymentGroupName="prod",
        serviceRoleArn=f"arn:aws:iam::{account}:role/codedeploy",
        ecsServices=[{"serviceName": "checkout", "clusterName": "prod"}],
    )
    for revision in (133, 134):
        properties = {"TaskDefinition": f"arn:aws:ecs:{region}:{account}:task-definition/checkout-svc:{revision}"}
        appspec = {
            "version": 0.0,
            "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": properties}}],
        }
        codedeploy.create_deployment(
            applicationName="checkout",
            deploymentGroupName="prod",
            revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(appspec)}},
        )


TERRAFORM_STATE = "s3://demo-terraform-state/prod/"


def _terraform_state(region: str, account: str) -> None:
    """web-api's service and task definition managed by Terraform, in a module: the state in S3 names :120."""
    service = f"arn:aws:ecs:{region}:{account}:service/prod/web-api"
    provider = 'provider["registry.terraform.io/hashicorp/aws"]'
    resources = [
        {
            "module": "module.web",
            "mode": "managed",
            "type": "aws_ecs_service",
            "name": "api",
            "provider": provider,
            "instances": [{"schema_version": 0, "attributes": {"id": service, "task_definition": "web-api:120"}}],
        },
    ]
    state = {
        "version": 4,
        "terraform_version": "1.9.8",
        "serial": 42,
        "lineage": "demo",
        "outputs": {},
        "resources": resources,
    }
    s3 = boto3.client("s3", region_name=region)
    s3.create_bucket(Bucket="demo-terraform-state")
    s3.put_object(Bucket="demo-terraform-state", Key="prod/terraform.tfstate", Body=json.dumps(state).encode())


def demo_policy_path() -> Path:
    return Path(str(resources.files("tdgc.local") / "demo_policy.toml"))


SHORT_TOP = 10  # families in the short report: with its notes and legend it fits a 50-line terminal
SERVE_NEXT = "Try plan, apply and restore on it: `tdgc demo --serve`."
ENDPOINT_LINE = "export AWS_ENDPOINT_URL="


def _demo_account(sim: Simulator, now: datetime, seed: int, err: IO[str]) -> None:
    seed_demo_account(sim, now, random.Random(seed))
    wire_references(sim)
    revisions = sum(1 for _ in sim.revisions())
    families = len({td.family for td in sim.revisions()})
    err.write(
        f"Simulated account (no AWS account, no network): {families} families, {revisions:,} revisions\n"
        f"registered over two years. Policy: {demo_policy_path()}\n"
    )


def run_demo(output: str, seed: int, out: IO[str], err: IO[str], *, full: bool = False) -> int:
    """Plan the demo account with the demo policy. A table is the short form (see `SHORT_TOP`) unless `full`;
    the machine formats are always whole."""
    now = datetime.now(UTC).replace(microsecond=0)
    if output in ("table", "markdown"):
        top = None if full else SHORT_TOP
        writer: Writer = TableWriter(out, markdown=output == "markdown", top=top, legend=True, next_step=SERVE_NEXT)
    else:
        writer = make_writer(output, out)
    with Simulator() as sim:
        _demo_account(sim, now, seed, err)
        policy = load_policy(str(demo_policy_path()), Overrides(terraform_state=(TERRAFORM_STATE,)))
        # The simulated account has no throttling, so the demo does not pace itself.
        result = run(RunOptions(policy=policy), [writer], now=now, pacer_factory=lambda _: unpaced())
    return result.exit_code


def serve_demo(seed: int, port: int, out: IO[str], err: IO[str], wait: Callable[[], object] | None = None) -> int:
    """The demo account over HTTP on loopback until Ctrl-C or SIGTERM (or `wait` returns), with the lines to
    paste into another shell to plan, apply and restore against it."""
    with Simulator() as sim, contextlib.ExitStack() as serving:
        try:  # before the account is built: a port that cannot be had is said at once
            url = serving.enter_context(sim.serve(port))
        except ImportError as exc:
            raise UsageError(f"--serve needs moto's server ({exc}): pip install 'tdgc[demo]'") from None
        except OSError as exc:
            raise UsageError(
                f"--port {port}: cannot listen there ({exc.strerror or exc}); --port 0 takes any free one"
            ) from None
        _demo_account(sim, datetime.now(UTC).replace(microsecond=0), seed, err)
        # Ctrl-C, or SIGTERM by tdgc.signals, is what was asked for once the lines are out: from the moment they
        # are written, or a signal sent on reading them could land before the wait.
        with contextlib.suppress(KeyboardInterrupt):
            out.write(_instructions(url, sim.region, sim.account_id))
            out.flush()
            (wait or threading.Event().wait)()
    err.write("\nStopped serving; the simulated account is gone. Bye.\n")
    return EXIT_OK


def _instructions(url: str, region: str, account: str) -> str:
    # The simulator does not throttle: the highest rates tdgc accepts (AWS's bursts) make a plan take a minute,
    # not the default's several.
    rates = " ".join(f"--rate {c}={AWS_BUCKETS[c][0]:g}" for c in ("read", "modify", "delete"))
    policy = f"{demo_policy_path()} --terraform-state {TERRAFORM_STATE} {rates}"
    return (
        f"Serving the simulated account at {url} until Ctrl-C. In another shell, paste:\n\n"
        f"{ENDPOINT_LINE}{url}\n"
        "export AWS_ACCESS_KEY_ID=testing\n"
        "export AWS_SECRET_ACCESS_KEY=testing\n"
        f"export AWS_DEFAULT_REGION={region}\n\n"
        "then try these (the demo's policy and Terraform state; the rates are the highest, as nothing throttles):\n\n"
        f"tdgc plan {policy}\n"
        f"tdgc apply {policy} --archive ./archive\n"
        f"tdgc restore ./archive/{account}/{region}/airflow-dbt-daily/1.json\n"
        "aws ecs list-task-definitions --family-prefix airflow-dbt-daily\n\n"
    )
