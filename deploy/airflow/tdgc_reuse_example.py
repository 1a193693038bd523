"""Example DAG: the classic register -> run -> deregister DAG, in its reuse shape (Airflow 2.10+ and 3.1+).

The classic shape registers a new task-definition revision for every run, runs it, and deregisters it:

    EcsRegisterTaskDefinitionOperator ─> EcsRunTaskOperator ─> EcsDeregisterTaskDefinitionOperator

Revision numbers are never reused, so a daily DAG adds 365 revisions a year to its family (deregistered,
but there until deleted), and a busy one marches toward ECS's 1,000,000-revision limit. In the reuse shape
the register step is tdgc's drop-in operator and the deregister step is gone:

    register (TdgcRegisterTaskDefinitionOperator) ─> run (EcsRunTaskOperator)

`register` returns the ARN of the ACTIVE revision with this content, registering one only when the content
is new (a new image, new settings), and pushes it to XCom under `task_definition_arn`, as the provider's
operator does; `run` takes it from there unchanged. A hundred runs with the same image use one revision.
The revision stays ACTIVE for the next run; tdgc's garbage collection retires revisions nobody uses any
more (`unused_for` with the DynamoDB store, or the family's keep_last / deregister_after rules).

Needs tdgc and apache-airflow-providers-amazon in the Airflow environment. Params: the container `image`,
where the content hashes are kept (`store`: "tags", or "dynamodb://TABLE" to also count uses), and where
the task runs (`cluster`, `subnet`, `security_group`: a Fargate task in awsvpc mode).
"""

from __future__ import annotations

from datetime import datetime

try:  # Airflow 3.x: the Task SDK
    from airflow.sdk import DAG, Param
except ImportError:  # Airflow 2.x
    from airflow import DAG
    from airflow.models.param import Param

from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator

from tdgc.airflow_operator import TdgcRegisterTaskDefinitionOperator

DAG_ID = "tdgc_reuse_example"
FAMILY = "tdgc-reuse-example"
IMAGE = "public.ecr.aws/docker/library/busybox:1.36"
ARN = "{{ ti.xcom_pull(task_ids='register', key='task_definition_arn') }}"

with DAG(
    DAG_ID,
    description="register-or-reuse a task definition (tdgc), then run it on ECS: no deregister step",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["tdgc", "ecs"],
    params={
        "image": Param(IMAGE, type="string", minLength=1, description="the container image: a new one, a new revision"),
        "store": Param(
            "tags",
            type="string",
            pattern=r"^(tags|dynamodb://[A-Za-z0-9_.-]{3,255})$",
            description='where content hashes are found again: "tags", or "dynamodb://TABLE"',
        ),
        "cluster": Param("default", type="string", minLength=1, description="the ECS cluster to run in"),
        "subnet": Param("", type="string", description="the subnet the Fargate task runs in (subnet-...)"),
        "security_group": Param("", type="string", description="its security group (sg-...)"),
    },
) as dag:
    register = TdgcRegisterTaskDefinitionOperator(
        task_id="register",
        family=FAMILY,
        container_definitions=[
            {
                "name": "job",
                "image": "{{ params.image }}",
                "essential": True,
                "command": ["echo", "hello"],
                "memory": 512,
            },
        ],
        register_task_kwargs={
            "cpu": "256",
            "memory": "512",
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
        },
        store="{{ params.store }}",
    )
    run = EcsRunTaskOperator(
        task_id="run",
        task_definition=ARN,
        cluster="{{ params.cluster }}",
        launch_type="FARGATE",
        overrides={},
        network_configuration={
            "awsvpcConfiguration": {
                "subnets": ["{{ params.subnet }}"],
                "securityGroups": ["{{ params.security_group }}"],
                "assignPublicIp": "DISABLED",
            }
        },
    )
    register >> run
