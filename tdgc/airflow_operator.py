"""An Airflow operator that registers a task definition only when its content is new (tdgc.reuse.register).

A drop-in for the register step of the classic create -> run -> deregister DAG, whose register step is the
Amazon provider's `EcsRegisterTaskDefinitionOperator`:

    from tdgc.airflow_operator import TdgcRegisterTaskDefinitionOperator

    register = TdgcRegisterTaskDefinitionOperator(
        task_id="register",
        family="etl",
        container_definitions=[{"name": "etl", "image": "{{ params.image }}", "essential": True}],
        register_task_kwargs={"cpu": "256", "memory": "512", "networkMode": "awsvpc",
                              "requiresCompatibilities": ["FARGATE"]},
        store="tags",  # or "dynamodb://TABLE"
    )
    run = EcsRunTaskOperator(
        task_id="run", task_definition="{{ ti.xcom_pull(task_ids='register', key='task_definition_arn') }}", ...
    )
    register >> run  # and no deregister task

The same arguments as the provider's operator (`family`, `container_definitions`, `register_task_kwargs`,
`aws_conn_id`, `region_name`), the same templated fields, and the same result: the ARN is pushed to XCom
under `task_definition_arn` and returned (so `return_value` holds it too). The difference: the request's
content is hashed, and the ARN of an ACTIVE revision with that content is returned when there is one; a
revision is registered only for new content (see tdgc.reuse.register). The task's log says which it was.

No deregister step is needed, and there must be none: the revision is what the next run with the same
content reuses. Revisions nobody uses any more are retired by tdgc's garbage collection: with the DynamoDB
store, the policy rule `unused_for` deregisters a revision whose last use is older than that; with either
store, the usual rules (keep_last, deregister_after) apply to the family.

`store`: "tags" (no infrastructure: the hash is a tag on the revision, found among the family's newest
ACTIVE revisions) or "dynamodb://TABLE" (a table, created on first use, that also counts uses and records
each one: who is `airflow:DAG_ID.TASK_ID`). tdgc.reuse.store says what each can and cannot do.

Credentials: `aws_conn_id` is resolved as the provider resolves it, through its AwsBaseHook, when
apache-airflow-providers-amazon is installed (a connection's `endpoint_url` extra is honoured, per service
too). Without the provider, only the default `aws_default` is accepted and means the worker's own
credentials (boto3's default chain), as it does in the provider when no such connection exists;
`aws_conn_id=None` always means that. The provider's `verify` and `botocore_config` are not supported:
tdgc's clients use tdgc's retry mode and pacing (tdgc.aws.CLIENT_CONFIG).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

try:  # Airflow 3.x: the Task SDK
    from airflow.sdk import BaseOperator
except ImportError:  # Airflow 2.x
    from airflow.models import BaseOperator

try:  # Airflow 3.x
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 2.x, and 3.0 where the Task SDK did not have it yet
    from airflow.exceptions import AirflowFailException

from tdgc.aws import connection as aws
from tdgc.aws.pacing import Pacer
from tdgc.collect import restore
from tdgc.errors import UsageError
from tdgc.policy import DEFAULT_RATES
from tdgc.reuse.backends import open_store
from tdgc.reuse.register import How, register_or_reuse
from tdgc.reuse.tags import TagStore

XCOM_KEY = "task_definition_arn"  # the key EcsRegisterTaskDefinitionOperator pushes the ARN under
DEFAULT_CONN_ID = "aws_default"
_SAID = {
    How.FOUND: "Reused %s: an ACTIVE revision with the same content (%s)",
    How.JOINED: "Reused %s: registered a moment ago by another caller with the same content (%s)",
    How.REGISTERED: "Registered %s: new content (%s)",
    How.REPLACED: "Registered %s: the stored revision for this content (%s) was deregistered or deleted since, "
    "or is not this content",
}


class TdgcRegisterTaskDefinitionOperator(BaseOperator):  # type: ignore[misc]  # untyped outside Airflow
    """Register a task definition on ECS, or reuse the ACTIVE revision with the same content.

    :param family: the task definition's family (templated)
    :param container_definitions: its containerDefinitions, a list of dicts (templated)
    :param register_task_kwargs: RegisterTaskDefinition's other arguments (cpu, memory, networkMode,
        executionRoleArn, tags, ...) (templated)
    :param store: "tags" or "dynamodb://TABLE": where the content hash is found again (templated)
    :param aws_conn_id: the Airflow AWS connection; None: the worker's own credentials
    :param region_name: the region; None: the connection's, else the worker's default region (templated)

    Pushes the revision's ARN to XCom under `task_definition_arn` and returns it.
    """

    template_fields: Sequence[str] = ("family", "container_definitions", "register_task_kwargs", "store", "region_name")
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "container_definitions": "json",
        "register_task_kwargs": "json",
    }
    ui_color = "#c6e6d0"

    def __init__(
        self,
        *,
        family: str,
        container_definitions: list[dict[str, Any]],
        register_task_kwargs: dict[str, Any] | None = None,
        store: str = "tags",
        aws_conn_id: str | None = DEFAULT_CONN_ID,
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.family = family
        self.container_definitions = container_definitions
        self.register_task_kwargs = register_task_kwargs or {}
        self.store = store
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def execute(self, context: Any) -> str:
        try:
            args = request(self.family, self.container_definitions, self.register_task_kwargs)
            # As `tdgc register` checks its file: botocore's model, and what tdgc itself reads (cpu, memory).
            restore.check_arguments(args, f"task {self.task_id}")
            spec = str(self.store).strip()
            ecs_target, store_target = self._targets(spec)
            ecs = ecs_target.ecs(Pacer(dict(DEFAULT_RATES)))
            # One ECS client for both (a client costs ~0.1 s to make); open_store parses dynamodb://TABLE.
            store = TagStore(ecs) if spec == "tags" else open_store(spec, store_target)
            found = register_or_reuse(ecs, args, store, who=f"airflow:{self.dag_id}.{self.task_id}")
        except (UsageError, ValueError) as exc:  # bad arguments, store, credentials or region: a retry cannot help
            raise AirflowFailException(f"tdgc register: {exc}") from exc
        self.log.info(_SAID[found.how], f"{found.family}:{found.revision}", found.hash)
        self.log.info("Task definition ARN: %s (store: %s)", found.arn, self.store)
        context["ti"].xcom_push(key=XCOM_KEY, value=found.arn)
        return found.arn

    def _targets(self, spec: str) -> tuple[aws.Connection, aws.Connection]:
        """Where to reach ECS, and where the store is (they differ only in a per-service endpoint_url)."""
        hook = self._hook()
        if hook is None:
            session = aws.session(None)
            ecs_endpoint = store_endpoint = None
            region = self.region_name or session.region_name
        else:
            session = hook.get_session(region_name=self.region_name)
            config = hook.conn_config
            ecs_endpoint = config.get_service_endpoint_url("ecs")
            store_endpoint = config.get_service_endpoint_url("dynamodb")
            region = self.region_name or config.region_name or session.region_name
        if not region:
            raise UsageError("no AWS region: set region_name, the connection's region_name, or AWS_DEFAULT_REGION")
        ecs_target = aws.Connection(session, region, ecs_endpoint)
        dynamodb = spec.startswith("dynamodb://")
        return ecs_target, aws.Connection(session, region, store_endpoint) if dynamodb else ecs_target

    def _hook(self) -> Any:
        """The Amazon provider's hook for `aws_conn_id`, or None: the worker's own credentials."""
        if self.aws_conn_id is None:
            return None
        try:
            from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
        except ImportError:
            if self.aws_conn_id == DEFAULT_CONN_ID:
                return None
            raise UsageError(
                f"aws_conn_id={self.aws_conn_id!r} needs apache-airflow-providers-amazon; without it, "
                f"leave aws_conn_id at {DEFAULT_CONN_ID!r} or None (the worker's own credentials)"
            ) from None
        return AwsBaseHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, client_type="ecs")


def request(family: str, container_definitions: Any, register_task_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """RegisterTaskDefinition's arguments, as the provider's operator sends them."""
    extra = dict(register_task_kwargs or {})
    clash = {"family", "containerDefinitions"} & set(extra)
    if clash:
        raise ValueError(f"register_task_kwargs: {', '.join(sorted(clash))} is given by its own argument")
    if not isinstance(container_definitions, list) or not all(isinstance(c, dict) for c in container_definitions):
        raise ValueError(f"container_definitions: expected a list of dicts, got {type(container_definitions).__name__}")
    return {"family": family, "containerDefinitions": container_definitions, **extra}
