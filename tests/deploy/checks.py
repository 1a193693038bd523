"""What every deployment of tdgc as a scheduled Lambda must be, whichever tool made it (SAM, Terraform):
the same assertions run against each, so the two cannot drift apart."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tdgc import lambda_handler, package, permissions
from tdgc.collect.usage import last_uses
from tdgc.job import MERGE_DISK_MB, Job, options_for, target_report
from tdgc.report import destination
from tdgc.reuse.dynamodb import DynamoStore
from tdgc.reuse.store import Claim
from tests.helpers import HANDLER_ENVIRONMENT

# The handler's contract: the environment it reads (tests.helpers) and the keys it accepts in a schedule's Input.
HANDLER_INPUT = {
    "schedule",
    "scheduled_time",
    "execution_id",
    "attempt",
    "dry_run",
    "regions",
    "families",
    "account",
    "run_id",
    "time_budget",
}
HANDLER = "tdgc.lambda_handler.handler"
LAMBDA_MAX_TIMEOUT = 900
SQS_MAX_RETENTION = 14 * 24 * 3600
# Lambda's own needs, beside what tdgc calls: its log streams, and the queue its failed invocations go to.
PLUMBING = {"logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage"}
# What a dry run's role must not be allowed, by any statement of any of its policies.
MUTATIONS = {*permissions.APPLY, "ecs:*", "*"}
ACCOUNT = "123456789012"  # moto's

# (Effect, actions, resources, condition as canonical JSON or "")
Statement = tuple[str, frozenset[str], frozenset[str], str]
Statements = set[Statement]
Client = Callable[[str], Any]  # service name -> boto3 client, wherever the deployment lives


def _as_set(value: str | list[str]) -> frozenset[str]:
    return frozenset([value] if isinstance(value, str) else value)


def statements(document: Any) -> Statements:
    """A policy's statements as (effect, actions, resources, condition), however strings and lists spell them."""
    if isinstance(document, str):
        document = json.loads(document)
    return {
        (
            s["Effect"],
            _as_set(s["Action"]),
            _as_set(s["Resource"]),
            json.dumps(s["Condition"], sort_keys=True) if s.get("Condition") else "",
        )
        for s in document["Statement"]
    }


def allowed(document: Any) -> set[str]:
    """Every action an Allow statement of the policy names."""
    return {action for effect, actions, _, _ in statements(document) if effect == "Allow" for action in actions}


def role_policies(client: Client, role_arn: str) -> dict[str, Any]:
    iam = client("iam")
    name = role_arn.rsplit("/", 1)[1]
    return {
        policy: iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
    }


def _rate_seconds(expression: str) -> int | None:
    found = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", expression)
    if not found:
        return None
    return int(found.group(1)) * {"minute": 60, "hour": 3600, "day": 86400}[found.group(2)]


@dataclass
class Deployment:
    function: dict[str, Any]  # GetFunction's Configuration
    schedule: dict[str, Any]  # GetSchedule
    queue_arn: str
    tdgc_policy: Any  # the function role's policy document that is not plumbing
    job: Job  # what the handler makes of the schedule's event and the function's environment


def check_deployment(client: Client, function_name: str, log_group_name: str) -> Deployment:
    """Assert what holds of any tdgc deployment; return what a test checks further against its inputs."""
    function, queue_arn, tdgc_policy = _check_collector(client, function_name, log_group_name, concurrency=1)
    # The scheduler's role may invoke this function and feed the queue.
    invoke = {
        ("Allow", frozenset({"lambda:InvokeFunction"}), frozenset({function["FunctionArn"]}), ""),
        ("Allow", frozenset({"sqs:SendMessage"}), frozenset({queue_arn}), ""),
    }
    schedule = _check_schedule(client, function["FunctionArn"], queue_arn, invoke)
    event = json.loads(schedule["Target"]["Input"])
    assert set(event) <= HANDLER_INPUT
    # The handler accepts the event as Scheduler fills it in, with the environment as deployed: a job whose
    # every option checks out (the policy read, from Parameter Store if the deployment names a parameter).
    job = lambda_handler.job_from({key: "filled in" for key in event}, function["Environment"]["Variables"], 600.0)
    options_for(job)
    return Deployment(function, schedule, queue_arn, tdgc_policy, job)


def _check_collector(
    client: Client, function_name: str, log_group_name: str, concurrency: int
) -> tuple[dict[str, Any], str, Any]:
    """The function that runs tdgc, its failure queue and its role; returns GetFunction's Configuration, the
    queue's ARN and the role's tdgc policy."""
    lam = client("lambda")
    function: dict[str, Any] = lam.get_function(FunctionName=function_name)["Configuration"]
    assert function["Runtime"] == package.RUNTIME  # the zip is built for this runtime
    assert function["Architectures"] == [package.ARCHITECTURE]
    assert function["Handler"] == HANDLER
    assert function["Timeout"] == LAMBDA_MAX_TIMEOUT
    assert 128 <= function["MemorySize"] <= 512  # tdgc is I/O-bound at ~60 MB: no CPU to buy with memory
    assert set(function["Environment"]["Variables"]) <= HANDLER_ENVIRONMENT
    assert function["Environment"]["Variables"]["TDGC_DRY_RUN"] in {"true", "false"}
    assert lam.get_function_concurrency(FunctionName=function_name)["ReservedConcurrentExecutions"] == concurrency

    invoke = lam.get_function_event_invoke_config(FunctionName=function_name)
    assert invoke["MaximumRetryAttempts"] == 0  # the next scheduled run is the retry
    # A queued event gives up long before a running invocation could end: runs never stack up.
    assert invoke["MaximumEventAgeInSeconds"] < function["Timeout"]
    queue_arn: str = invoke["DestinationConfig"]["OnFailure"]["Destination"]
    sqs = client("sqs")
    queue_url = sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[1])["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["QueueArn"] == queue_arn
    assert int(attributes["MessageRetentionPeriod"]) == SQS_MAX_RETENTION  # time to notice

    [tdgc_policy] = _function_policies(client, function, log_group_name, queue_arn)
    return function, queue_arn, tdgc_policy


def _function_policies(
    client: Client, function: dict[str, Any], log_group_name: str, queue_arn: str | None
) -> list[Any]:
    """A function's log group (not kept forever) and role (Lambda's alone, no managed policy: the orchestrator's,
    when there is a usage store, is for another role); the plumbing only on this log group and queue. Returns
    the role's other policies, tdgc's."""
    groups = client("logs").describe_log_groups(logGroupNamePrefix=log_group_name)["logGroups"]
    [group] = [g for g in groups if g["logGroupName"] == log_group_name]  # not NAME-targets' too
    assert group.get("retentionInDays", 0) > 0  # not kept forever
    streams = group["arn"] if group["arn"].endswith(":*") else f"{group['arn']}:*"
    documents = []
    for document in _role(client, function["Role"], "lambda.amazonaws.com").values():
        granted = statements(document)
        if set().union(*(actions for _, actions, _, _ in granted)) <= PLUMBING:
            assert {effect for effect, _, _, _ in granted} == {"Allow"}
            assert set().union(*(resources for _, _, resources, _ in granted)) <= {streams, queue_arn}
        else:
            documents.append(document)
    return documents


def _role(client: Client, role_arn: str, service: str) -> dict[str, Any]:
    """A role that `service` alone may assume, holding inline policies only: returns them by name."""
    iam = client("iam")
    name = role_arn.rsplit("/", 1)[1]
    trust = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
    trusted = {p for s in trust["Statement"] for p in _as_set(s["Principal"]["Service"])}
    assert trusted == {service}
    assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []
    return role_policies(client, role_arn)


def _granted(client: Client, role_arn: str, service: str) -> Statements:
    return set().union(*(statements(document) for document in _role(client, role_arn, service).values()))


def _schedules(client: Client) -> list[dict[str, Any]]:
    scheduler = client("scheduler")
    return [
        scheduler.get_schedule(Name=s["Name"], GroupName=s["GroupName"])
        for s in scheduler.list_schedules()["Schedules"]
    ]


def _check_schedule(client: Client, target_arn: str, queue_arn: str, granted: Statements) -> dict[str, Any]:
    """The one schedule that starts `target_arn`: on time, losing nothing to the queue, retrying only before the
    next event, with a role Scheduler alone assumes granting exactly `granted`. Returns GetSchedule's answer."""
    [schedule] = [found for found in _schedules(client) if found["Target"]["Arn"] == target_arn]
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule.get("State", "ENABLED") == "ENABLED"
    target = schedule["Target"]
    assert target["DeadLetterConfig"]["Arn"] == queue_arn
    # Scheduler retries only a hand-over the target refused, and all its retries end before the next event.
    interval = _rate_seconds(schedule["ScheduleExpression"])
    assert interval is None or target["RetryPolicy"]["MaximumEventAgeInSeconds"] < interval
    # Scheduler's context attributes, to trace a run to its schedule.
    event = json.loads(target["Input"])
    assert event and all(re.fullmatch(r"<aws\.scheduler\.[a-z-]+>", value) for value in event.values())
    assert _granted(client, target["RoleArn"], "scheduler.amazonaws.com") == granted
    return schedule


def expected_tdgc_statements(
    bucket: str | None = None,
    role_arns: list[str] | None = None,
    parameter_arn: str | None = None,
    table_arn: str | None = None,
    state_buckets: list[str] | None = None,
    *,
    apply: bool = False,
    kms_key_arn: str | None = None,
    appspec_buckets: list[str] | None = None,
) -> Statements:
    """tdgc.permissions' statements for these options in moto's account, the Parameter Store and usage store
    reads included."""
    expected = statements(
        permissions.policy_document(
            bucket,
            role_arns or (),
            state_buckets or (),
            account=ACCOUNT,
            apply=apply,
            kms_key_arn=kms_key_arn,
            appspec_buckets=appspec_buckets or (),
        )
    )
    if parameter_arn:
        expected.add(("Allow", frozenset(permissions.POLICY_PARAMETER), frozenset({parameter_arn}), ""))
    if table_arn:
        expected.add(("Allow", frozenset(permissions.USAGE_READ), frozenset({table_arn}), ""))
    return expected


def check_dry_run_role(deployed: Deployment) -> None:
    """A dry run's role, as IAM answers it: no statement allows a deregistration or a delete (check_deployment
    has made sure the role holds no other policy than tdgc's and the plumbing), and the Deny that keeps a
    protected revision is there."""
    assert deployed.function["Environment"]["Variables"]["TDGC_DRY_RUN"] == "true"
    assert allowed(deployed.tdgc_policy) & MUTATIONS == set()
    denied = {(e, a, c) for e, a, _, c in statements(deployed.tdgc_policy) if e == "Deny"}
    key, value = permissions.PROTECT_TAG
    condition = json.dumps({"StringEquals": {f"aws:ResourceTag/{key}": value}})
    assert denied == {("Deny", frozenset(permissions.DELETE), condition)}


def check_defaults(deployed: Deployment) -> None:
    """Nothing optional set: an hourly dry run, with the read-only permissions alone (and the Deny)."""
    assert deployed.function["Environment"]["Variables"] == {"TDGC_DRY_RUN": "true"}
    assert deployed.job == Job(time_budget=deployed.job.time_budget)  # the safe defaults: plan, built-in policy
    assert deployed.job.parallel == 1  # no TDGC_PARALLEL: one target after another
    assert deployed.schedule["ScheduleExpression"] == "rate(1 hour)"
    assert statements(deployed.tdgc_policy) == expected_tdgc_statements()
    check_dry_run_role(deployed)


# Every option set, as both tests deploy it (each in its tool's spelling).
BUCKET = "org-tdgc"
PARAMETER = "/tdgc/policy"
PARAMETER_POLICY = '[defaults]\nkeep_last = 10\ndelete_after = "90 days"\n'
REGIONS = ["eu-west-1", "us-east-1"]
PARALLEL = 8  # targets at once (TDGC_PARALLEL)
MEMBER_ROLES = ["arn:aws:iam::111111111111:role/tdgc-member", "arn:aws:iam::222222222222:role/tdgc-member"]
EXTERNAL_ID = "tdgc-external"
CRON = "cron(0 3 * * ? *)"
USAGE_TABLE = "tdgc-usage"  # created by the deployment
EXISTING_TABLE = "tdgc-usage-existing"  # named only: the deployment grants on it, and creates nothing
STATE_BUCKETS = ["org-tf-state", "org-tf-state.eu"]  # the terraform reference source's, read only
APPSPEC_BUCKETS = ["codepipeline-us-east-1-1", "org-artifacts.eu"]  # the codedeploy source's AppSpecs, read only


def table_arn(region: str, account: str, table: str) -> str:
    return f"arn:aws:dynamodb:{region}:{account}:table/{table}"


def put_policy_parameter(client: Client) -> None:
    """The parameter the every-option deployment names, which the handler reads its policy from."""
    client("ssm").put_parameter(Name=PARAMETER, Value=PARAMETER_POLICY, Type="String")


def check_every_option(deployed: Deployment, region: str, account: str, kms_key_arn: str) -> None:
    """Each option reaches the handler's environment, and scopes the permissions it needs to its resources."""
    environment = deployed.function["Environment"]["Variables"]
    assert environment["TDGC_DRY_RUN"] == "false"
    assert environment["TDGC_ARCHIVE_KMS_KEY"] == kms_key_arn
    assert environment["TDGC_POLICY_PARAMETER"] == PARAMETER
    assert environment["TDGC_REGIONS"].split(",") == REGIONS
    assert environment["TDGC_PARALLEL"] == str(PARALLEL)
    assert environment["TDGC_ROLE_ARNS"].split(",") == MEMBER_ROLES
    assert environment["TDGC_EXTERNAL_ID"] == EXTERNAL_ID
    assert environment["TDGC_ARCHIVE"].startswith(f"s3://{BUCKET}/")
    # Each run's report is an object of its own in the bucket, apart from the archive.
    first, second = (destination.resolve(environment["TDGC_REPORT"], name) for name in ("1.json", "2.json"))
    assert first != second and first.startswith(f"s3://{BUCKET}/")
    assert not first.startswith(environment["TDGC_ARCHIVE"].rstrip("/") + "/")
    assert deployed.schedule["ScheduleExpression"] == CRON
    job = deployed.job
    assert job.apply and job.policy_text == PARAMETER_POLICY
    assert (job.regions, job.role_arns, job.external_id) == (tuple(REGIONS), tuple(MEMBER_ROLES), EXTERNAL_ID)
    assert job.parallel == PARALLEL
    assert (job.archive, job.report) == (environment["TDGC_ARCHIVE"], environment["TDGC_REPORT"])
    parameter_arn = f"arn:aws:ssm:{region}:{account}:parameter{PARAMETER}"
    table = table_arn(region, account, USAGE_TABLE)  # the policy names the table: not the environment
    assert statements(deployed.tdgc_policy) == expected_tdgc_statements(
        BUCKET,
        MEMBER_ROLES,
        parameter_arn,
        table,
        STATE_BUCKETS,
        apply=True,
        kms_key_arn=kms_key_arn,
        appspec_buckets=APPSPEC_BUCKETS,
    )
    assert allowed(deployed.tdgc_policy) >= set(permissions.APPLY)


def check_existing_table(deployed: Deployment, region: str, account: str) -> None:
    """A table named but not created: the function may scan it, and nothing else changes."""
    assert deployed.function["Environment"]["Variables"] == {"TDGC_DRY_RUN": "true"}
    table = table_arn(region, account, EXISTING_TABLE)
    assert statements(deployed.tdgc_policy) == expected_tdgc_statements(table_arn=table)
    check_dry_run_role(deployed)


def check_register_policy(client: Client, policy_arn: str, table: str) -> None:
    """The orchestrator's managed policy is tdgc.permissions.register_policy_document on the table."""
    iam = client("iam")
    version = iam.get_policy(PolicyArn=policy_arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=policy_arn, VersionId=version)["PolicyVersion"]["Document"]
    assert statements(document) == statements(permissions.register_policy_document(table, account=ACCOUNT))


def check_usage_table(client: Client, table: str, region: str, account: str) -> None:
    """The created table is the one tdgc register would create on first use (tdgc.reuse.dynamodb.DynamoStore),
    kept safe besides (point-in-time recovery, deletion protection); tdgc reads and writes it."""
    dynamodb = client("dynamodb")
    reference_name = f"{table}-as-tdgc-creates-it"
    DynamoStore(dynamodb, reference_name).create()
    try:
        reference = dynamodb.describe_table(TableName=reference_name)["Table"]
        reference_ttl = dynamodb.describe_time_to_live(TableName=reference_name)["TimeToLiveDescription"]
    finally:
        dynamodb.delete_table(TableName=reference_name)

    described = dynamodb.describe_table(TableName=table)["Table"]
    assert described["TableArn"] == table_arn(region, account, table)
    for key in ("KeySchema", "AttributeDefinitions"):
        assert sorted(described[key], key=str) == sorted(reference[key], key=str), key
    assert described["BillingModeSummary"]["BillingMode"] == reference["BillingModeSummary"]["BillingMode"]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert not described.get("GlobalSecondaryIndexes") and not described.get("LocalSecondaryIndexes")
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl == reference_ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    assert "SSEDescription" not in described  # DynamoDB's default: the AWS owned key
    # The usage history cannot be rebuilt.
    assert described["DeletionProtectionEnabled"] is True
    backups = dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"

    # tdgc register records a registration in it; the run's reader (no create) finds its last use there.
    store = DynamoStore(dynamodb, table, create_missing=False)
    claim = store.claim("sha256:" + "0" * 64, "web")
    assert isinstance(claim, Claim)
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    arn = f"arn:aws:ecs:{region}:{account}:task-definition/web:1"
    store.fill(claim, arn, 1, now=now, who="deploy-check", how="registered")
    assert last_uses(DynamoStore(dynamodb, table, create_missing=False)) == {arn: now}


def check_archive_bucket(
    client: Client,
    bucket: str,
    kms_key_arn: str | None,
    retention_days: int = 400,
    archive_prefix: str = permissions.ARCHIVE_PREFIX,
    report_prefix: str = permissions.REPORT_PREFIX,
) -> None:
    """The bucket a deployment made, read back: encrypted (SSE-S3, or SSE-KMS under the key with a bucket key),
    every public access blocked, TLS only, versioned, archives expiring after `retention_days` (and what is
    overwritten under either prefix too), ACLs off."""
    s3 = client("s3")
    [rule] = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    if kms_key_arn:
        assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key_arn}
        assert rule.get("BucketKeyEnabled") is True
    else:
        assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
        assert not rule.get("BucketKeyEnabled")
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    [tls] = policy["Statement"]
    arn = f"arn:aws:s3:::{bucket}"
    assert (tls["Effect"], tls["Principal"], tls["Action"]) == ("Deny", "*", "s3:*")
    assert sorted(_as_set(tls["Resource"])) == [arn, f"{arn}/*"]
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert set(rules) == {"expire-archives", "expire-overwritten-reports"}
    archives, reports = rules["expire-archives"], rules["expire-overwritten-reports"]
    for found, prefix in ((archives, archive_prefix), (reports, report_prefix)):
        assert found["Status"] == "Enabled"
        assert found.get("Filter", {}).get("Prefix", found.get("Prefix")) == f"{prefix}/"
        assert found["NoncurrentVersionExpiration"]["NoncurrentDays"] == retention_days
        assert found["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert archives["Expiration"] == {"Days": retention_days}
    assert "Expiration" not in reports  # reports are kept
    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]
    assert ownership == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def check_alarms(client: Client, function_name: str, threshold: float, topic: str | None) -> None:
    """Two alarms on the metrics the handler logs in Embedded Metric Format (tdgc.report.metrics), each on its
    deployment's own series (dimension Function), notifying `topic` when one is given."""
    from tdgc.report.metrics import NAMESPACE, emf

    alarms = client("cloudwatch").describe_alarms()["MetricAlarms"]
    mine = {a["MetricName"]: a for a in alarms if {"Name": "Function", "Value": function_name} in a["Dimensions"]}
    assert set(mine) == {"QuotaHeadroomMin", "Failed"}
    # The metrics and dimension the alarms watch are those the handler's run document carries.
    (run,) = emf({"generated_at": "2026-06-01T12:00:00+00:00", "summary": {"results": {}}}, function_name)
    directive = run["_aws"]["CloudWatchMetrics"][0]
    assert directive["Dimensions"] == [["Function"]] and directive["Namespace"] == NAMESPACE
    assert {"Failed"} <= {m["Name"] for m in directive["Metrics"]}
    headroom, failed = mine["QuotaHeadroomMin"], mine["Failed"]
    assert (headroom["Namespace"], failed["Namespace"]) == (NAMESPACE, NAMESPACE)
    assert (headroom["Statistic"], headroom["ComparisonOperator"], headroom["Threshold"]) == (
        "Minimum",
        "LessThanThreshold",
        threshold,
    )
    assert (failed["Statistic"], failed["ComparisonOperator"], failed["Threshold"]) == (
        "Sum",
        "GreaterThanThreshold",
        0,
    )
    assert headroom["TreatMissingData"] == "ignore" and failed["TreatMissingData"] == "notBreaching"
    for alarm in (headroom, failed):
        assert alarm["AlarmActions"] == ([topic] if topic else [])
        assert alarm["OKActions"] == ([topic] if topic else [])


# --- organisation mode ----------------------------------------------------------------------------------------

# Organisation mode as both tests deploy it (each in its tool's spelling), besides REGIONS and a bucket.
MEMBER_ROLE_NAME = "tdgc-member"
ORGANIZATIONAL_UNITS = ["ou-abcd-abcdefgh"]
MAX_CONCURRENCY = 25
TARGETS_HANDLER = "tdgc.lambda_handler.targets_handler"
MERGE_HANDLER = "tdgc.lambda_handler.merge_handler"


def every_state(states: Mapping[str, Any]) -> dict[str, Any]:
    """A state machine's states by name, those of each Map's item processor included."""
    found = dict(states)
    for state in states.values():
        if "ItemProcessor" in state:
            found |= every_state(state["ItemProcessor"]["States"])
    return found


def check_graph(machine: Mapping[str, Any]) -> None:
    """Every Next, Default and Catch names a state of the same machine; every state is reachable from StartAt;
    every non-terminal state has a way on; each item processor is a machine of its own, checked the same."""
    states = machine["States"]
    assert machine["StartAt"] in states
    reached, pending = set(), [machine["StartAt"]]
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        reached.add(name)
        state = states[name]
        nexts = [
            state.get("Next"),
            state.get("Default"),
            *(c["Next"] for c in state.get("Catch", [])),
            *(c["Next"] for c in state.get("Choices", [])),
        ]
        for target in filter(None, nexts):
            assert target in states, f"{name} goes to {target}, which is not a state"
            pending.append(target)
        assert state["Type"] in ("Succeed", "Fail") or state.get("End") or state.get("Next"), name
        if "ItemProcessor" in state:
            check_graph(state["ItemProcessor"])
    assert reached == set(states), f"unreachable: {set(states) - reached}"


@dataclass
class Organisation:
    definition: dict[str, Any]  # the state machine's, parsed
    functions: dict[str, dict[str, Any]]  # GetFunction's Configuration of each function it invokes, by handler
    schedule: dict[str, Any]  # GetSchedule of the one that starts it
    collector_schedules: list[dict[str, Any]]  # GetSchedule of each that targets the collector (all disabled)


def check_organisation(
    client: Client,
    state_machine_arn: str,
    queue_url: str,
    log_groups: tuple[str, str, str],
    bucket: str,
    kms_key_arn: str | None = None,
) -> Organisation:
    """Organisation mode deployed with MEMBER_ROLE_NAME, ORGANIZATIONAL_UNITS, REGIONS and MAX_CONCURRENCY: the
    state machine invokes three functions that exist (the targets', the collector, the merge's; `log_groups`
    are theirs, in that order), its failures go to the deployment's queue, and every role holds exactly what
    tdgc.permissions renders for it; one schedule starts the state machine, and none the collector."""
    machine = client("stepfunctions").describe_state_machine(stateMachineArn=state_machine_arn)
    definition: dict[str, Any] = json.loads(machine["definition"])
    check_graph(definition)
    partition = state_machine_arn.split(":")[1]
    states = every_state(definition["States"])
    invoked = [
        s["Parameters"]["FunctionName"]
        for s in states.values()
        if s.get("Resource") == f"arn:{partition}:states:::lambda:invoke"
    ]
    configurations = [client("lambda").get_function(FunctionName=arn)["Configuration"] for arn in invoked]
    functions = {f["Handler"]: f for f in configurations}
    assert [f["FunctionArn"] for f in configurations] == invoked  # each named by its ARN, none by a version
    assert sorted(functions) == sorted([TARGETS_HANDLER, HANDLER, MERGE_HANDLER]) and len(invoked) == 3
    targets, collector, merge = (functions[h] for h in (TARGETS_HANDLER, HANDLER, MERGE_HANDLER))
    [collect] = [s for s in states.values() if s["Type"] == "Map"]
    assert collect["MaxConcurrency"] == MAX_CONCURRENCY
    _, queue_arn, tdgc_policy = _check_collector(client, collector["FunctionName"], log_groups[1], MAX_CONCURRENCY)
    [dead_letters] = [s for s in states.values() if s.get("Resource") == f"arn:{partition}:states:::sqs:sendMessage"]
    assert dead_letters["Parameters"]["QueueUrl"] == queue_url
    # One queue for every way a run is lost: the collector's invocations, the schedule's and the states' failures.
    attributes = client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    assert attributes["QueueArn"] == queue_arn
    _check_organisation_functions(
        targets, collector, merge, collect["ItemSelector"]["time_budget"], bucket, kms_key_arn
    )

    # Each role: exactly tdgc.permissions' document for it, beside the functions' logs and queue.
    member_roles = [permissions.member_role_arn(MEMBER_ROLE_NAME, partition)]
    assert statements(tdgc_policy) == expected_tdgc_statements(bucket, member_roles, kms_key_arn=kms_key_arn)
    merge_document = permissions.merge_policy_document(bucket, partition=partition, kms_key_arn=kms_key_arn)
    for function, log_group, document in (
        (
            targets,
            log_groups[0],
            permissions.targets_policy_document(bucket, partition=partition, kms_key_arn=kms_key_arn),
        ),
        (merge, log_groups[2], merge_document),
    ):
        granted = set().union(*map(statements, _function_policies(client, function, log_group, None)))
        assert granted == statements(document), function["FunctionName"]
    states_document = permissions.state_machine_policy_document(
        state_machine_arn, invoked, queue_arn, bucket, kms_key_arn=kms_key_arn
    )
    assert _granted(client, machine["roleArn"], "states.amazonaws.com") == statements(states_document)
    start = statements(permissions.schedule_policy_document(state_machine_arn, queue_arn))
    schedule = _check_schedule(client, state_machine_arn, queue_arn, start)
    # The collector runs for the state machine only: a schedule of its own, if the deployment keeps one, is off.
    collector_schedules = [s for s in _schedules(client) if s["Target"]["Arn"] == collector["FunctionArn"]]
    assert {s["State"] for s in collector_schedules} <= {"DISABLED"}
    return Organisation(definition, functions, schedule, collector_schedules)


def _check_organisation_functions(
    targets: dict[str, Any],
    collector: dict[str, Any],
    merge: dict[str, Any],
    time_budget: int,
    bucket: str,
    kms_key_arn: str | None,
) -> None:
    """Each function's environment: the targets' lists the organisation under the OUs; the collector assumes the
    member role in the account each of the map's items names, and writes its report where the merge reads it."""
    for function in (targets, merge):  # the collector's code, the zip built for this runtime
        assert (function["Runtime"], function["Architectures"]) == (package.RUNTIME, [package.ARCHITECTURE])
    report = f"s3://{bucket}/{permissions.REPORT_PREFIX}/"
    key = {"TDGC_ARCHIVE_KMS_KEY": kms_key_arn} if kms_key_arn else {}
    assert targets["Environment"]["Variables"] == {
        "TDGC_REGIONS": ",".join(REGIONS),
        "TDGC_MEMBER_ROLE_NAME": MEMBER_ROLE_NAME,
        "TDGC_ORGANIZATIONAL_UNITS": ",".join(ORGANIZATIONAL_UNITS),
        "TDGC_REPORT": report,
        **key,
    }
    assert merge["Environment"]["Variables"] == {"TDGC_REPORT": report, **key}
    # The merged report is spooled to the merge's /tmp: Lambda's most, not its default.
    assert (merge["EphemeralStorage"]["Size"], targets["EphemeralStorage"]["Size"]) == (MERGE_DISK_MB, 512)
    environment = collector["Environment"]["Variables"]
    assert environment["TDGC_MEMBER_ROLE_NAME"] == MEMBER_ROLE_NAME and environment["TDGC_REPORT"] == report
    item = {"account": "111122223333", "regions": REGIONS[0], "run_id": "exec-1", "time_budget": time_budget}
    job = lambda_handler.job_from(item, environment, float(LAMBDA_MAX_TIMEOUT))
    options_for(job)
    assert job.role_arns == (f"arn:aws:iam::111122223333:role/{MEMBER_ROLE_NAME}",)
    assert job.report == target_report(report, "exec-1", "111122223333", REGIONS[0])
