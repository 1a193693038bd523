"""Reference discovery: which revisions something still uses, found once per region before deciding.

Eleven sources (docs/design.md §2): services (their task definition, every deployment and task set), the
revisions they could roll back to (their deployment history), Express services (their active
configurations), running or pending tasks in every cluster; EventBridge rule targets on every event bus and
EventBridge Scheduler schedules (ECS parameters, or a task definition named in the target's Input, as a
universal aws-sdk:ecs:runTask target names it); EventBridge Pipes that run ECS tasks; Step Functions state
machines (their definitions, versions included); CloudFormation stacks that own an AWS::ECS::TaskDefinition;
CodeDeploy deployments of ECS applications (in flight, and each group's last successful one: the revision
and the one before it); Terraform and OpenTofu states. A reference by family name alone means the family's
newest ACTIVE revision. A source that cannot be read is recorded, never skipped silently: the run fails
closed on it.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import botocore.exceptions
import structlog

from tdgc.aws.connection import Connection
from tdgc.aws.errors import UNREACHABLE, error_text
from tdgc.aws.pacing import Pacer
from tdgc.collect.tfstate import StateError, States
from tdgc.policy import ROLLBACK_DEPTH

log = structlog.get_logger("tdgc.references")
SERVICES_PER_DESCRIBE = 10  # DescribeServices takes at most 10
TASKS_PER_DESCRIBE = 100  # DescribeTasks takes at most 100
DEPLOYMENTS_PER_DESCRIBE = 20  # DescribeServiceDeployments and DescribeServiceRevisions take at most 20
CODEDEPLOY_NAMES_PER_CALL = 100  # BatchGetApplications and BatchGetDeploymentGroups take at most 100
CODEDEPLOY_DEPLOYMENTS_PER_CALL = 25  # BatchGetDeployments takes at most 25
# A CodeDeploy deployment not yet finished: what it replaces is still what a rollback returns to.
_CODEDEPLOY_IN_FLIGHT = ["Created", "Queued", "InProgress", "Baking", "Ready"]
# An AppSpec in YAML: `TaskDefinition: VALUE`, quoted or not (its JSON form is read as JSON).
# A value on the key's own line, plain or quoted; a block scalar (`>-`), an anchor or a tag is not read.
_APPSPEC_KEY = re.compile(r"""^[ \t-]*["']?TaskDefinition["']?[ \t]*:""", re.MULTILINE)
_APPSPEC_VALUE = re.compile(
    r"""^[ \t-]*["']?TaskDefinition["']?[ \t]*:[ \t]*["']?([A-Za-z0-9_-][^"'\s#]*)""", re.MULTILINE
)
# A deployment in flight can still roll back to what it replaces.
_IN_FLIGHT = frozenset({"PENDING", "IN_PROGRESS", "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"})
_LONG_AGO = datetime.min.replace(tzinfo=UTC)
# Service ARN -> (its deployments as DescribeServices showed them, its rollback targets: (reference, use)).
History = dict[str, tuple[tuple[tuple[str, str, str], ...], list[tuple[str, str]]]]
# Stacks in these states own no resources any more.
_GONE_STACK = {"DELETE_COMPLETE"}
_STACK_STATES = [
    "CREATE_IN_PROGRESS",
    "CREATE_FAILED",
    "CREATE_COMPLETE",
    "ROLLBACK_IN_PROGRESS",
    "ROLLBACK_FAILED",
    "ROLLBACK_COMPLETE",
    "DELETE_IN_PROGRESS",
    "DELETE_FAILED",
    "UPDATE_IN_PROGRESS",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
    "UPDATE_COMPLETE",
    "UPDATE_FAILED",
    "UPDATE_ROLLBACK_IN_PROGRESS",
    "UPDATE_ROLLBACK_FAILED",
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
    "UPDATE_ROLLBACK_COMPLETE",
    "REVIEW_IN_PROGRESS",
    "IMPORT_IN_PROGRESS",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_IN_PROGRESS",
    "IMPORT_ROLLBACK_FAILED",
    "IMPORT_ROLLBACK_COMPLETE",
]
FIXES = {
    "services": "grant ecs:ListClusters, ecs:ListServices and ecs:DescribeServices",
    "rollback": "grant ecs:ListServiceDeployments, ecs:DescribeServiceDeployments and ecs:DescribeServiceRevisions "
    "(and what services needs), or set rollback_depth = 0",
    "tasks": "grant ecs:ListClusters, ecs:ListTasks and ecs:DescribeTasks",
    "rules": "grant events:ListEventBuses, events:ListRules and events:ListTargetsByRule",
    "schedules": "grant scheduler:ListSchedules and scheduler:GetSchedule",
    "state_machines": "grant states:ListStateMachines, states:ListStateMachineVersions and states:DescribeStateMachine",
    "stacks": "grant cloudformation:ListStacks and cloudformation:ListStackResources",
    "pipes": "grant pipes:ListPipes and pipes:DescribePipe",
    "express_services": "grant ecs:ListServices, ecs:DescribeServices and ecs:DescribeExpressGatewayService "
    "(where ECS Express is not offered, skip it)",
    "codedeploy": "grant codedeploy:ListApplications, BatchGetApplications, ListDeploymentGroups, "
    "BatchGetDeploymentGroups, ListDeployments, BatchGetDeployments and GetApplicationRevision, and s3:GetObject "
    "on the AppSpecs kept in S3 (the templates' CodeDeployAppSpecBuckets / codedeploy_appspec_buckets, and the "
    "member role's CodeDeployAppSpecBuckets; kms:Decrypt too under a customer-managed key)",
    "terraform": "grant s3:ListBucket and s3:GetObject on the state bucket, or correct the location",
}


class Unreadable(Exception):
    """A source's answer that tdgc cannot read (an AppSpec it cannot parse, a state): the source fails closed."""


@dataclass
class References:
    """What uses which revision in one region."""

    by_revision: dict[tuple[str, int], list[str]] = field(default_factory=lambda: defaultdict(list))
    by_family: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # newest ACTIVE
    failed: dict[str, str] = field(default_factory=dict)  # source -> the error that stopped it
    notes: list[str] = field(default_factory=list)

    def refresh_from(self, newer: References) -> None:
        """Take a newer reading's findings, in place, so that whoever holds this object sees them. The newer
        reading's containers are taken whole, never changed after: a lane reading `uses` outside the guard's lock
        while another thread refreshes sees the old reading's or the new one's, never half of one."""
        self.by_revision, self.by_family = newer.by_revision, newer.by_family
        self.failed, self.notes = newer.failed, newer.notes

    def uses(self, family: str, revision: int, newest_active: bool) -> tuple[str, ...]:
        found = list(self.by_revision.get((family, revision), ()))
        if newest_active:
            found += [f"{use} (by family name)" for use in self.by_family.get(family, ())]
        return tuple(found)

    def add(self, reference: str | None, use: str, region: str) -> None:
        parsed = parse_reference(reference, region) if reference else None
        if parsed is None:
            return
        family, revision = parsed
        target = self.by_family[family] if revision is None else self.by_revision[(family, revision)]
        if use not in target:
            target.append(use)

    def failure_text(self) -> str:
        return "; ".join(f"{src}: {error} (fix: {FIXES[src]}, or skip it)" for src, error in self.failed.items())


def parse_reference(text: str, region: str) -> tuple[str, int | None] | None:
    """(family, revision or None) of a task-definition reference: an ARN, FAMILY:REVISION or FAMILY.

    A reference to another region's revision is not this region's business: None.
    """
    text = text.strip()
    if text.startswith("arn:"):
        parts = text.split(":", 5)
        if len(parts) < 6 or not parts[5].startswith("task-definition/") or parts[3] != region:
            return None
        text = parts[5].removeprefix("task-definition/")
    family, sep, rev = text.partition(":")
    if not family or "/" in family:
        return None
    if not sep:
        return family, None
    return (family, int(rev)) if rev.isdigit() else None


class _Context:
    """What the finders share in one region: clients, the cluster list (listed once), the findings."""

    def __init__(
        self,
        target: Connection,
        pacer: Pacer,
        refs: References,
        rollback_depth: int,
        history: History,
        states: States | None,
    ) -> None:
        self.target, self.pacer, self.refs, self.region = target, pacer, refs, target.region
        self.rollback_depth, self.history, self.states = rollback_depth, history, states
        self._clients: dict[str, Any] = {}
        self._clusters: list[str] | None = None
        self._services: list[tuple[str, dict[str, Any]]] | None = None
        # Express services, listed apart (whether ListServices without a filter shows them is not documented)
        self.express: list[tuple[str, dict[str, Any]]] = []
        self.appspecs: dict[str, str | None] = {}  # a CodeDeploy revision -> its AppSpec, asked for once

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.target.client(service, self.pacer)
        return self._clients[service]

    def clusters(self) -> list[str]:
        if self._clusters is None:
            ecs = self.client("ecs")
            self._clusters = list(_pages(ecs, "list_clusters", "clusterArns", PaginationConfig={"PageSize": 100}))
        return self._clusters

    def services(self) -> list[tuple[str, dict[str, Any]]]:
        """(cluster, service) for every service, described once for the sources that need them."""
        if self._services is None:
            found = {svc["serviceArn"]: (c, svc) for c, svc in _described(self, "services", SERVICES_PER_DESCRIBE)}
            self._services = [*found.values(), *(e for e in self.express if e[1]["serviceArn"] not in found)]
        return self._services


def discover(
    target: Connection,
    sources: Iterable[str],
    pacer: Pacer,
    rollback_depth: int = ROLLBACK_DEPTH,
    history: History | None = None,
    states: States | None = None,
) -> References:
    """What uses which revision in the target's region. `history` carries each service's rollback targets
    from one reading to the next (the caller keeps it for the run); without it, every history is read.
    `states` are the Terraform states to read (the caller keeps them for the run: they remember ETags)."""
    refs = References()
    context = _Context(target, pacer, refs, rollback_depth, {} if history is None else history, states)
    wanted = set(sources)
    for name, source in SOURCES.items():
        if name not in wanted:
            continue
        try:
            source.find(context)
        except UNREACHABLE:
            raise  # not a source's failure: the whole target is out of reach
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, Unreadable) as exc:
            refs.failed[name] = error_text(exc)
            log.warning("reference source unreadable", source=name, region=target.region, error=error_text(exc))
    found = sum(map(len, refs.by_revision.values())) + sum(map(len, refs.by_family.values()))
    log.info("references found", region=target.region, references=found, failed=sorted(refs.failed))
    return refs


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
    if client.can_paginate(operation):
        for page in client.get_paginator(operation).paginate(**kwargs):
            yield from page.get(key, [])
        return
    # botocore has no paginator for a few calls (ListEventBuses, ListStateMachineVersions): follow the token.
    token_name = "NextToken" if client.meta.service_model.service_name == "events" else "nextToken"
    call, token = getattr(client, operation), None
    while True:
        page = call(**kwargs, **({token_name: token} if token else {}))
        yield from page.get(key, [])
        token = page.get(token_name)
        if not token:
            return


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _short(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _described(ctx: _Context, kind: str, batch: int, **list_kwargs: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(cluster, service or task) for every one in every cluster: listed 100 a page, described `batch` a call."""
    ecs = ctx.client("ecs")
    for cluster in ctx.clusters():
        arns = list(
            _pages(
                ecs,
                f"list_{kind}",
                f"{kind[:-1]}Arns",
                cluster=cluster,
                PaginationConfig={"PageSize": 100},
                **list_kwargs,
            )
        )
        for chunk in _chunks(arns, batch):
            answer = getattr(ecs, f"describe_{kind}")(cluster=cluster, **{kind: chunk})
            _complete(answer, f"Describe{kind.title()}")
            for item in answer.get(kind, []):
                yield cluster, item


def _service_name(cluster: str, svc: dict[str, Any]) -> str:
    return f"service {_short(cluster)}/{svc.get('serviceName', _short(svc.get('serviceArn', '')))}"


def _services(ctx: _Context) -> None:
    for cluster, svc in ctx.services():
        name = _service_name(cluster, svc)
        ctx.refs.add(svc.get("taskDefinition"), name, ctx.region)
        for deployment in svc.get("deployments", []):
            ctx.refs.add(deployment.get("taskDefinition"), f"{name} (deployment)", ctx.region)
        for task_set in svc.get("taskSets", []):
            ctx.refs.add(task_set.get("taskDefinition"), f"{name} (task set)", ctx.region)


def _express_services(ctx: _Context) -> None:
    """Express services' active configurations (one each, two while a deployment shifts traffic). They are
    listed with resourceManagementType=ECS, so the services and rollback sources see them too."""
    ecs = ctx.client("ecs")
    if "DescribeExpressGatewayService" not in ecs.meta.service_model.operation_names:
        ctx.refs.notes.append("express_services: this botocore predates ECS Express; upgrade it to read them")
        return
    ctx.express = list(_described(ctx, "services", SERVICES_PER_DESCRIBE, resourceManagementType="ECS"))
    for cluster, svc in ctx.express:
        answer = ecs.describe_express_gateway_service(serviceArn=svc["serviceArn"])
        for configuration in (answer.get("service") or {}).get("activeConfigurations", []):
            use = f"express {_service_name(cluster, svc)}"
            ctx.refs.add(configuration.get("taskDefinitionArn"), use, ctx.region)


def _rollback(ctx: _Context) -> None:
    """What each service could roll back to, which is no longer in its `deployments` once a deployment has
    completed: the source revisions of every deployment in flight, and of its newest `rollback_depth`
    completed ones (what they replaced). Older history is the policy's to decide.

    A service whose `deployments` are as they were at the last reading has the same rollback targets, so
    a refresh during a long apply reads the history of only the services deployed since (`ctx.history`).
    """
    ecs = ctx.client("ecs")
    fresh: History = {}  # the services read this time; kept only once every read has succeeded
    uses: dict[str, tuple[str, str]] = {}  # deployment ARN -> (service ARN, how the report names the use)
    for cluster, svc in ctx.services():
        arn, state = svc["serviceArn"], _deployments_state(svc)
        if (svc.get("deploymentController") or {}).get("type", "ECS") != "ECS":
            continue  # service deployments are the rolling (ECS) type's; blue/green and external keep task sets
        if arn in ctx.history and ctx.history[arn][0] == state:
            continue
        fresh[arn] = (state, [])
        deployments = list(_pages(ecs, "list_service_deployments", "serviceDeployments", cluster=cluster, service=arn))
        completed = [d for d in deployments if d.get("status") == "SUCCESSFUL"]
        completed.sort(key=lambda d: d.get("createdAt") or d.get("startedAt") or _LONG_AGO, reverse=True)
        in_flight = [d for d in deployments if d.get("status") in _IN_FLIGHT]
        for d in [*in_flight, *completed[: ctx.rollback_depth]]:
            deployment = d["serviceDeploymentArn"]
            uses[deployment] = (
                arn,
                f"rollback target of {_service_name(cluster, svc)} (deployment {_short(deployment)})",
            )
    sources: dict[str, list[tuple[str, str]]] = defaultdict(list)  # service revision ARN -> (service, use)
    for chunk in _chunks(list(uses), DEPLOYMENTS_PER_DESCRIBE):
        answer = ecs.describe_service_deployments(serviceDeploymentArns=chunk)
        _complete(answer, "DescribeServiceDeployments")
        for deployment in answer.get("serviceDeployments", []):
            for source in deployment.get("sourceServiceRevisions", []):
                sources[source["arn"]].append(uses[deployment["serviceDeploymentArn"]])
    for chunk in _chunks(list(sources), DEPLOYMENTS_PER_DESCRIBE):
        answer = ecs.describe_service_revisions(serviceRevisionArns=chunk)
        _complete(answer, "DescribeServiceRevisions")
        for revision in answer.get("serviceRevisions", []):
            for service, use in sources[revision["serviceRevisionArn"]]:
                fresh[service][1].append((revision.get("taskDefinition", ""), use))
    ctx.history.update(fresh)
    for _, svc in ctx.services():
        for reference, use in ctx.history.get(svc["serviceArn"], ((), []))[1]:
            ctx.refs.add(reference, use, ctx.region)


def _deployments_state(svc: dict[str, Any]) -> tuple[tuple[str, str, str], ...]:
    """What changes whenever a service starts, finishes or rolls back a deployment."""
    return tuple((str(d.get("id")), str(d.get("status")), str(d.get("updatedAt"))) for d in svc.get("deployments", []))


def _tasks(ctx: _Context) -> None:
    # desiredStatus RUNNING lists pending tasks as well as running ones.
    for cluster, task in _described(ctx, "tasks", TASKS_PER_DESCRIBE, desiredStatus="RUNNING"):
        ctx.refs.add(task.get("taskDefinitionArn"), f"task {_short(cluster)}/{_short(task['taskArn'])}", ctx.region)


def _rules(ctx: _Context) -> None:
    events, refs = ctx.client("events"), ctx.refs
    for bus in [b["Name"] for b in _pages(events, "list_event_buses", "EventBuses")]:
        for rule in _pages(events, "list_rules", "Rules", EventBusName=bus):
            for t in _pages(events, "list_targets_by_rule", "Targets", Rule=rule["Name"], EventBusName=bus):
                use = f"rule {bus}/{rule['Name']}"
                ecs_parameters = t.get("EcsParameters") or {}
                refs.add(ecs_parameters.get("TaskDefinitionArn"), use, ctx.region)
                _add_from_input(ctx, t.get("Input"), f"{use} (input)")


def _schedules(ctx: _Context) -> None:
    scheduler, refs = ctx.client("scheduler"), ctx.refs
    for item in _pages(scheduler, "list_schedules", "Schedules"):
        # Only GetSchedule shows the target's parameters, so fetch only the schedules that can run a task: an
        # ECS target (EcsParameters), or the universal target arn:aws:scheduler:::aws-sdk:ecs:runTask (Input).
        if ":ecs:" not in item.get("Target", {}).get("Arn", ""):
            continue
        group = item.get("GroupName", "default")
        target = scheduler.get_schedule(Name=item["Name"], GroupName=group).get("Target", {})
        use = f"schedule {group}/{item['Name']}"
        refs.add((target.get("EcsParameters") or {}).get("TaskDefinitionArn"), use, ctx.region)
        _add_from_input(ctx, target.get("Input"), use)


def _add_from_input(ctx: _Context, text: str | None, use: str) -> None:
    """The task definitions a target's Input JSON names (a universal target's RunTask request, say)."""
    if not text:
        return
    parsed = _json(text, use)
    if parsed is _NOT_JSON:
        return  # an Input that is not JSON names no parameter
    for reference, dynamic in _task_definitions_in(parsed):
        if not dynamic:
            ctx.refs.add(reference, use, ctx.region)


def _pipes(ctx: _Context) -> None:
    pipes, refs = ctx.client("pipes"), ctx.refs
    for item in _pages(pipes, "list_pipes", "Pipes"):
        if ":ecs:" not in item.get("Target", ""):
            continue  # only DescribePipe shows the target's parameters, so fetch only the pipes that run tasks
        pipe = pipes.describe_pipe(Name=item["Name"])
        ecs_parameters = (pipe.get("TargetParameters") or {}).get("EcsTaskParameters") or {}
        refs.add(ecs_parameters.get("TaskDefinitionArn"), f"pipe {item['Name']}", ctx.region)


def _state_machines(ctx: _Context) -> None:
    sfn, refs = ctx.client("stepfunctions"), ctx.refs
    for machine in _pages(sfn, "list_state_machines", "stateMachines"):
        latest = machine["stateMachineArn"]
        # Published versions are immutable and an alias may route runs to an old one.
        versions = _pages(sfn, "list_state_machine_versions", "stateMachineVersions", stateMachineArn=latest)
        for arn in [latest, *(v["stateMachineVersionArn"] for v in versions)]:
            definition = sfn.describe_state_machine(stateMachineArn=arn).get("definition", "{}")
            version = "" if arn == latest else f" (version {arn.rsplit(':', 1)[-1]})"
            use = f"state machine {machine['name']}{version}"
            parsed = _json(definition, use)
            if parsed is _NOT_JSON:
                refs.notes.append(f"{use}: definition is not JSON; not searched")
                continue
            for reference, dynamic in _task_definitions_in(parsed):
                if dynamic:
                    refs.notes.append(f"{use} chooses its task definition at run time ({reference}); not protected")
                else:
                    refs.add(reference, use, ctx.region)


# Where a JSON document names a task definition: RunTask's parameter as Step Functions' ECS integration and
# its aws-sdk:ecs:runTask integration spell it, and as the SDK and EventBridge spell it.
_TASK_DEFINITION_KEYS = frozenset({"TaskDefinition", "taskDefinition", "TaskDefinitionArn", "taskDefinitionArn"})


_NOT_JSON = object()


def _json(text: str, what: str) -> Any:
    """A JSON document, or _NOT_JSON; one nested too deeply to read may still name a revision: Unreadable."""
    try:
        return json.loads(text)
    except RecursionError:
        raise Unreadable(f"{what}: JSON nested too deeply to read") from None
    except ValueError:
        return _NOT_JSON


def _task_definitions_in(node: Any) -> Iterator[tuple[str, bool]]:
    """Every task-definition parameter in a JSON document (a state machine definition, a target's Input), and
    whether it is a run-time path. A walk with its own stack: a document's depth is whatever its author made."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in reversed(item.items()):
                if key.removesuffix(".$") in _TASK_DEFINITION_KEYS and isinstance(value, str):
                    yield value, key.endswith(".$") or value.startswith(("$", "{%"))
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _stacks(ctx: _Context) -> None:
    cfn, refs = ctx.client("cloudformation"), ctx.refs
    for stack in _pages(cfn, "list_stacks", "StackSummaries", StackStatusFilter=_STACK_STATES):
        if stack.get("StackStatus") in _GONE_STACK:
            continue
        for resource in _pages(cfn, "list_stack_resources", "StackResourceSummaries", StackName=stack["StackId"]):
            if resource.get("ResourceType") == "AWS::ECS::TaskDefinition":
                refs.add(resource.get("PhysicalResourceId"), f"stack {stack['StackName']}", ctx.region)


def _codedeploy(ctx: _Context) -> None:
    """CodeDeploy's ECS deployments: those in flight, and each deployment group's last successful one. Both
    the revision each deploys and its previous one (what a rollback or a redeploy returns to) are in use."""
    cd = ctx.client("codedeploy")
    names = list(_pages(cd, "list_applications", "applications"))
    applications: list[str] = []
    for chunk in _chunks(names, CODEDEPLOY_NAMES_PER_CALL):
        for app in cd.batch_get_applications(applicationNames=chunk).get("applicationsInfo", []):
            if app.get("computePlatform") == "ECS":
                applications.append(app["applicationName"])
    # In flight: one listing for the whole account (its other platforms' are dropped once described).
    wanted = dict.fromkeys(_pages(cd, "list_deployments", "deployments", includeOnlyStatuses=_CODEDEPLOY_IN_FLIGHT))
    for app in applications:
        groups = list(_pages(cd, "list_deployment_groups", "deploymentGroups", applicationName=app))
        for chunk in _chunks(groups, CODEDEPLOY_NAMES_PER_CALL):
            answer = cd.batch_get_deployment_groups(applicationName=app, deploymentGroupNames=chunk)
            for group in answer.get("deploymentGroupsInfo", []):
                last = (group.get("lastSuccessfulDeployment") or {}).get("deploymentId")
                if last:
                    wanted[last] = None
    for chunk in _chunks(list(wanted), CODEDEPLOY_DEPLOYMENTS_PER_CALL):
        for deployment in cd.batch_get_deployments(deploymentIds=chunk).get("deploymentsInfo", []):
            if deployment.get("computePlatform") != "ECS":
                continue
            app = deployment.get("applicationName", "")
            use = (
                f"codedeploy {app}/{deployment.get('deploymentGroupName', '')} (deployment {deployment['deploymentId']}"
            )
            for key, label in (("revision", ")"), ("previousRevision", ", previous revision)")):
                for reference in _appspec_task_definitions(_appspec(ctx, cd, app, deployment.get(key))):
                    ctx.refs.add(reference, use + label, ctx.region)


def _appspec(ctx: _Context, cd: Any, app: str, revision: dict[str, Any] | None) -> str:
    """The AppSpec text a revision location holds: inline, as CodeDeploy keeps it, or in S3."""
    if not revision:
        return ""
    kind = revision.get("revisionType")
    if kind in ("AppSpecContent", "String"):
        field_name = "appSpecContent" if kind == "AppSpecContent" else "string"
        content = (revision.get(field_name) or {}).get("content")
        if content is None:  # BatchGetDeployments may give only the hash: ask for the revision itself, once
            key = json.dumps([app, revision], sort_keys=True)
            if key not in ctx.appspecs:
                stored = cd.get_application_revision(applicationName=app, revision=revision).get("revision") or {}
                ctx.appspecs[key] = (stored.get(field_name) or {}).get("content")
            content = ctx.appspecs[key]
        if content is None:
            raise Unreadable(f"CodeDeploy gave no AppSpec content for a revision of {app}")
        return str(content)
    if kind == "S3":
        location = revision.get("s3Location") or {}
        if location.get("bundleType") not in ("YAML", "JSON"):
            raise Unreadable(f"{app}: an AppSpec bundled as {location.get('bundleType')} cannot be read")
        bucket, name = location.get("bucket"), location.get("key")
        extra = {"VersionId": location["version"]} if location.get("version") else {}
        try:
            body = ctx.client("s3").get_object(Bucket=bucket, Key=name, **extra)["Body"]
        except botocore.exceptions.ClientError as exc:  # which object, for the operator to grant or fix
            raise Unreadable(f"{app}: AppSpec s3://{bucket}/{name}: {error_text(exc)}") from None
        return str(body.read().decode("utf-8", errors="replace"))
    return ""  # GitHub revisions belong to EC2 deployments


def _appspec_task_definitions(content: str) -> list[str]:
    """The task definitions an AppSpec (JSON or YAML) names; Unreadable where a key's value cannot be found."""
    if not content.strip():
        return []
    parsed = _json(content, "an AppSpec")
    if parsed is _NOT_JSON:
        found = _APPSPEC_VALUE.findall(content)
        if len(found) < len(_APPSPEC_KEY.findall(content)):
            raise Unreadable("an AppSpec names a TaskDefinition in a form tdgc cannot read") from None
        return found
    return [reference for reference, _ in _task_definitions_in(parsed)]


def _terraform(ctx: _Context) -> None:
    if ctx.states is None:
        return
    try:
        named = ctx.states.read()
    except StateError as exc:
        raise Unreadable(str(exc)) from None
    for name, where in named:
        if name.region is None or name.region == ctx.region:
            ctx.refs.add(name.reference, f"terraform state {where} ({name.address})", ctx.region)


def _complete(answer: dict[str, Any], operation: str) -> None:
    """Raise for a describe's failure, except MISSING: gone between list and describe."""
    for failure in answer.get("failures", []):
        if failure.get("reason") != "MISSING":
            raise _incomplete(operation, failure)


def _incomplete(operation: str, failure: dict[str, Any]) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": "Failure", "Message": f"{failure.get('arn', '?')}: {failure.get('reason', '?')}"}},
        operation,
    )


@dataclass(frozen=True)
class Source:
    """A reference source: how it finds references, and the AWS services it reads (whose models a parallel run
    loads once, before its targets start)."""

    find: Callable[[_Context], None]
    services: tuple[str, ...]


# In the order they run: the express services first, so that the services and rollback sources see what it lists.
SOURCES: dict[str, Source] = {
    "express_services": Source(_express_services, ("ecs",)),
    "services": Source(_services, ("ecs",)),
    "rollback": Source(_rollback, ("ecs",)),
    "tasks": Source(_tasks, ("ecs",)),
    "rules": Source(_rules, ("events",)),
    "schedules": Source(_schedules, ("scheduler",)),
    "pipes": Source(_pipes, ("pipes",)),
    "state_machines": Source(_state_machines, ("stepfunctions",)),
    "stacks": Source(_stacks, ("cloudformation",)),
    "codedeploy": Source(_codedeploy, ("codedeploy", "s3")),
    "terraform": Source(_terraform, ("s3",)),
}
