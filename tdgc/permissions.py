"""The IAM actions tdgc calls, by purpose: the one list the README, SAM template and Terraform module agree with.

`python -m tdgc.permissions` prints the policy document (tests hold the templates to this module);
`python -m tdgc.permissions --terraform-json` prints deploy/terraform/permissions.json.

What each ECS action can be scoped to is the Service Authorization Reference's ("Actions, resources, and
condition keys for Amazon Elastic Container Service"):

| action | resource types | condition keys |
|---|---|---|
| `ecs:DeregisterTaskDefinition` | none: `*` only | none |
| `ecs:DeleteTaskDefinitions` | `task-definition*` | `aws:ResourceTag/${TagKey}`, `ecs:ResourceTag/${TagKey}` |
| `ecs:RegisterTaskDefinition` | `task-definition*` | `aws:RequestTag/${TagKey}`, `aws:TagKeys`, ... |
| `ecs:TagResource` | `task-definition` (among others) | `ecs:CreateAction`, `aws:RequestTag/${TagKey}`, ... |
| `ecs:ListTaskDefinitions`, `ecs:DescribeTaskDefinition`, ... | none: `*` only | none |

So a deregistration cannot be scoped nor refused by tag; a delete is scoped to the account's task definitions
and refused, by an explicit Deny, for a revision tagged with tdgc's protect tag; tagging is allowed only as
part of RegisterTaskDefinition.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

# Statement id -> actions. Read-only: `plan` needs only SCAN and REFERENCES (REGIONS for --all-regions).
SCAN = ("ecs:ListTaskDefinitionFamilies", "ecs:ListTaskDefinitions", "ecs:DescribeTaskDefinition")
REFERENCES = (
    "ecs:ListClusters",
    "ecs:ListServices",
    "ecs:DescribeServices",
    "ecs:ListTasks",
    "ecs:DescribeTasks",
    "ecs:ListServiceDeployments",
    "ecs:DescribeServiceDeployments",
    "ecs:DescribeServiceRevisions",
    "ecs:DescribeExpressGatewayService",
    "events:ListEventBuses",
    "events:ListRules",
    "events:ListTargetsByRule",
    "scheduler:ListSchedules",
    "scheduler:GetSchedule",
    "pipes:ListPipes",
    "pipes:DescribePipe",
    "states:ListStateMachines",
    "states:ListStateMachineVersions",
    "states:DescribeStateMachine",
    "cloudformation:ListStacks",
    "cloudformation:ListStackResources",
    "codedeploy:ListApplications",
    "codedeploy:BatchGetApplications",
    "codedeploy:ListDeploymentGroups",
    "codedeploy:BatchGetDeploymentGroups",
    "codedeploy:ListDeployments",
    "codedeploy:BatchGetDeployments",
    "codedeploy:GetApplicationRevision",
)
REGIONS = ("ec2:DescribeRegions",)  # --all-regions: the regions enabled in the account
READ_ONLY: Mapping[str, Sequence[str]] = {"Scan": SCAN, "References": REFERENCES, "Regions": REGIONS}

# The mutations (apply only), granted apart because the Service Authorization Reference scopes them apart.
# DeregisterTaskDefinition has no resource type and no condition key: only Resource "*" grants it.
DEREGISTER = ("ecs:DeregisterTaskDefinition",)
# DeleteTaskDefinitions takes the task-definition resource type, with aws:ResourceTag / ecs:ResourceTag.
DELETE = ("ecs:DeleteTaskDefinitions",)
APPLY = (*DEREGISTER, *DELETE)
# The built-in policy's protect tag (tdgc.policy.Rule.protect_tags): IAM refuses to delete a revision that
# carries it, whatever the policy says (a policy may protect more tags; IAM knows only this one).
PROTECT_TAG = ("tdgc:keep", "true")

# On the archive / report bucket: objects are written, then read back; each run first proves it may, on a
# probe object (PREFIX/.tdgc-probe) it overwrites. Never s3:DeleteObject: tdgc removes nothing there.
ARCHIVE_OBJECTS = ("s3:PutObject", "s3:GetObject")
# tdgc never lists the bucket, but the check before the first change (tdgc.aws.check_bucket) is a HeadBucket,
# which S3 authorises as s3:ListBucket. A HeadBucket carries no prefix, so an s3:prefix condition would refuse
# it: the grant is on the bucket, unconditioned.
ARCHIVE_BUCKET = ("s3:ListBucket",)
# Archives under a customer-managed KMS key (SSE-KMS): PutObject needs a data key, GetObject a decrypt.
ARCHIVE_KEY = ("kms:GenerateDataKey", "kms:Decrypt")
ARCHIVE_PREFIX = "tdgc/archive"  # the templates' defaults
REPORT_PREFIX = "tdgc/reports"
# A central run that assumes a role in each member account.
ASSUME = ("sts:AssumeRole",)
# The Lambda reading its policy from Parameter Store.
POLICY_PARAMETER = ("ssm:GetParameter",)
# A policy with `unused_for` reads the usage store (on the table only).
USAGE_READ = ("dynamodb:Scan",)
# The `terraform` reference source reads state files with the run's own credentials, never a member role's:
# read only, on the state buckets the operator names. Never PutObject, never the lock table.
TERRAFORM_STATE_OBJECTS = ("s3:GetObject",)
TERRAFORM_STATE_BUCKET = ("s3:ListBucket",)  # a PREFIX/ location lists its state files
# The `codedeploy` reference source reads an AppSpec kept in S3 (revisionType S3, such as a CodePipeline
# artifact bucket) with the target's credentials: the function's role in
# its own account, the member role in a member account. So it is an account statement, on the buckets the
# operator names: GetObject alone (the key comes from the deployment, nothing is listed).
CODEDEPLOY_APPSPEC_OBJECTS = ("s3:GetObject",)

# Not the scheduled run's: what `tdgc register` (and `restore`, and the Airflow operator) need, where the
# orchestrator runs. Tags go on in RegisterTaskDefinition itself, never by a TagResource call of their own.
REGISTER = ("ecs:RegisterTaskDefinition",)
REGISTER_TAG = ("ecs:TagResource",)  # only with ecs:CreateAction = RegisterTaskDefinition
REGISTER_READ = ("ecs:ListTaskDefinitions", "ecs:DescribeTaskDefinition")
USAGE_WRITE = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:CreateTable",
    "dynamodb:DescribeTable",
    "dynamodb:UpdateTimeToLive",
)

# Organisation mode (the state machine of deploy/sam and deploy/terraform; docs/design.md, "Organisation mode").
# The targets function lists the organisation's accounts, or those under OUs (ListAccountsForParent at each
# level, ListChildren for the OUs below). On "*": the OU and root ARNs hold the organisation's id, which a
# template does not know, and these reads show names and ids only. Nothing else of the organisation's.
ORGANISATION_LIST = (
    "organizations:ListAccounts",
    "organizations:ListAccountsForParent",
    "organizations:ListChildren",
)
# The state machine's own role: it invokes the three functions (targets, collector, merge), runs its Distributed
# Map's child executions (StartExecution on itself; Describe and Stop on its executions, as Step Functions
# requires of a Distributed Map), and hands a failed run to the dead-letter queue.
STATES_INVOKE = ("lambda:InvokeFunction",)
# An organisation run's objects beside its targets' reports, under REPORT_PREFIX/RUN_ID/: the targets function writes
# the target list (TARGETS_LIST: PutObject, through the report writer), the Distributed Map reads its items from it
# (ItemReader: GetObject) and writes its children's results under MAP_RESULTS_NAME/ (ResultWriter: PutObject, and
# for its multipart uploads GetObject, ListMultipartUploadParts and AbortMultipartUpload, as Step Functions'
# "IAM policies for using Distributed Map states" lists). So nothing about the organisation's size passes through
# the state machine's data, which Step Functions holds to 256 KiB. Under a KMS key, ARCHIVE_KEY for both roles.
TARGETS_NAME = "targets.json"
MAP_RESULTS_NAME = "map-results"
TARGETS_LIST = ("s3:PutObject",)
STATES_MAP_ITEMS = ("s3:GetObject",)
STATES_MAP_RESULTS = ("s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload")
STATES_MAP_START = ("states:StartExecution",)
STATES_MAP_EXECUTIONS = ("states:DescribeExecution", "states:StopExecution")
DEAD_LETTERS = ("sqs:SendMessage",)
# The schedule's role, in organisation mode: start the state machine, and feed the queue what it cannot start.
SCHEDULE_START = ("states:StartExecution",)

PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
_PARTITION = re.compile(r"aws(-[a-z]+)*")
_ACCOUNT = re.compile(r"\d{12}|\*")


def actions() -> list[str]:
    """Every action any part of tdgc's scheduled run may call, sorted."""
    every = (
        *SCAN,
        *REFERENCES,
        *APPLY,
        *REGIONS,
        *ARCHIVE_OBJECTS,
        *ARCHIVE_BUCKET,
        *ARCHIVE_KEY,
        *ASSUME,
        *POLICY_PARAMETER,
        *USAGE_READ,
        *TERRAFORM_STATE_OBJECTS,
        *TERRAFORM_STATE_BUCKET,
        *CODEDEPLOY_APPSPEC_OBJECTS,
    )
    return sorted(set(every))


def _check(partition: str, account: str) -> None:
    if not _PARTITION.fullmatch(partition):
        raise ValueError(f"{partition!r} is not an AWS partition (aws, aws-cn, aws-us-gov, ...)")
    if not _ACCOUNT.fullmatch(account):
        raise ValueError(f"{account!r} is not an account id (12 digits) or *")


def task_definitions_arn(partition: str = "aws", account: str = "*") -> str:
    """The account's task definitions, in every region. ECS has no resource-based policies, so `*` for the
    account still means the caller's own."""
    _check(partition, account)
    return f"arn:{partition}:ecs:*:{account}:task-definition/*"


def protect_condition() -> dict[str, Any]:
    key, value = PROTECT_TAG
    return {"StringEquals": {f"aws:ResourceTag/{key}": value}}


def account_statements(
    partition: str = "aws", account: str = "*", apply: bool = True, *, appspec_buckets: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """What a run needs in the account it collects: the reads (with `appspec_buckets`, of the CodeDeploy
    AppSpecs in them); with `apply`, the two mutations; and always the Deny that keeps a protected revision
    from being deleted (also against any other policy of the role)."""
    revisions = task_definitions_arn(partition, account)
    statements: list[dict[str, Any]] = [
        {"Sid": sid, "Effect": "Allow", "Action": list(acts), "Resource": "*"} for sid, acts in READ_ONLY.items()
    ]
    if appspec_buckets:
        statements.append(
            {
                "Sid": "CodeDeployAppSpecs",
                "Effect": "Allow",
                "Action": list(CODEDEPLOY_APPSPEC_OBJECTS),
                "Resource": [f"arn:{partition}:s3:::{name}/*" for name in appspec_buckets],
            }
        )
    if apply:
        statements += [
            # "*": DeregisterTaskDefinition supports no resource type (Service Authorization Reference).
            {"Sid": "ApplyDeregister", "Effect": "Allow", "Action": list(DEREGISTER), "Resource": "*"},
            {"Sid": "ApplyDelete", "Effect": "Allow", "Action": list(DELETE), "Resource": revisions},
        ]
    # Defence in depth: tdgc never deletes a protected revision; IAM refuses it too, whatever else the role is
    # granted. Only the delete: DeregisterTaskDefinition has no condition key, so a tag condition on it would
    # never match and refuse nothing.
    statements.append(
        {
            "Sid": "KeepProtected",
            "Effect": "Deny",
            "Action": list(DELETE),
            "Resource": "*",
            "Condition": protect_condition(),
        }
    )
    return statements


def _objects(partition: str, bucket: str, prefixes: Sequence[str]) -> list[str]:
    """`arn:PARTITION:s3:::BUCKET/PREFIX/*` for each prefix (the whole bucket for an empty one), no repeats."""
    arns = [
        f"arn:{partition}:s3:::{bucket}/{p.strip('/')}/*" if p.strip("/") else f"arn:{partition}:s3:::{bucket}/*"
        for p in prefixes
    ]
    return list(dict.fromkeys(arns))


def policy_document(
    bucket: str | None = None,
    role_arns: Sequence[str] = (),
    state_buckets: Sequence[str] = (),
    *,
    partition: str = "aws",
    account: str = "*",
    apply: bool = True,
    archive_prefix: str = ARCHIVE_PREFIX,
    report_prefix: str = REPORT_PREFIX,
    kms_key_arn: str | None = None,
    appspec_buckets: Sequence[str] = (),
) -> dict[str, Any]:
    """The least-privilege policy of a run: the account's statements (without the mutations when not
    `apply`; with the AppSpec buckets' read, as a member role has it), the bucket's two prefixes (and the
    archive key), the roles, and a read of the Terraform state buckets (the caller's own: member roles never
    read them)."""
    statements = account_statements(partition, account, apply, appspec_buckets=appspec_buckets)
    if bucket:
        statements += [
            {
                "Sid": "ArchiveObjects",
                "Effect": "Allow",
                "Action": list(ARCHIVE_OBJECTS),
                "Resource": _objects(partition, bucket, (archive_prefix, report_prefix)),
            },
            {
                "Sid": "ArchiveBucket",
                "Effect": "Allow",
                "Action": list(ARCHIVE_BUCKET),
                "Resource": f"arn:{partition}:s3:::{bucket}",
            },
        ]
    statements += _key_statement("ArchiveKey", partition, kms_key_arn)
    if role_arns:
        statements.append(
            {"Sid": "AssumeMemberRoles", "Effect": "Allow", "Action": list(ASSUME), "Resource": list(role_arns)}
        )
    if state_buckets:
        statements += [
            {
                "Sid": "TerraformStateObjects",
                "Effect": "Allow",
                "Action": list(TERRAFORM_STATE_OBJECTS),
                "Resource": [f"arn:{partition}:s3:::{name}/*" for name in state_buckets],
            },
            {
                "Sid": "TerraformStateBucket",
                "Effect": "Allow",
                "Action": list(TERRAFORM_STATE_BUCKET),
                "Resource": [f"arn:{partition}:s3:::{name}" for name in state_buckets],
            },
        ]
    return {"Version": "2012-10-17", "Statement": statements}


def register_policy_document(
    table_arn: str | None = None, *, partition: str = "aws", account: str = "*"
) -> dict[str, Any]:
    """What `tdgc register` / the Airflow operator needs: register revisions (tagged as they are registered,
    never afterwards), read them, and the store's table."""
    revisions = task_definitions_arn(partition, account)
    statements: list[dict[str, Any]] = [
        {"Sid": "Register", "Effect": "Allow", "Action": list(REGISTER), "Resource": revisions},
        {
            "Sid": "TagOnRegister",
            "Effect": "Allow",
            "Action": list(REGISTER_TAG),
            "Resource": revisions,
            "Condition": {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}},
        },
        {"Sid": "ReadTaskDefinitions", "Effect": "Allow", "Action": list(REGISTER_READ), "Resource": "*"},
    ]
    if table_arn:
        statements.append({"Sid": "UsageStore", "Effect": "Allow", "Action": list(USAGE_WRITE), "Resource": table_arn})
    return {"Version": "2012-10-17", "Statement": statements}


def member_role_arn(role_name: str, partition: str = "aws") -> str:
    """A role of this name in any account: what organisation mode's collector may assume (the account comes from
    the organisation's listing, so the template cannot name each; the role name narrows it)."""
    _check(partition, "*")
    return f"arn:{partition}:iam::*:role/{role_name.strip('/')}"


def targets_list_arn(bucket: str, partition: str = "aws", report_prefix: str = REPORT_PREFIX) -> str:
    """Every organisation run's target list: `BUCKET/REPORT_PREFIX/*/targets.json`."""
    _check(partition, "*")
    return f"arn:{partition}:s3:::{bucket}/{report_prefix.strip('/')}/*/{TARGETS_NAME}"


def map_results_arn(bucket: str, partition: str = "aws", report_prefix: str = REPORT_PREFIX) -> str:
    """Every organisation run's map results: `BUCKET/REPORT_PREFIX/*/map-results/*`."""
    _check(partition, "*")
    return f"arn:{partition}:s3:::{bucket}/{report_prefix.strip('/')}/*/{MAP_RESULTS_NAME}/*"


def _key_statement(sid: str, partition: str, kms_key_arn: str | None) -> list[dict[str, Any]]:
    """Use of the KMS key that encrypts tdgc's objects, if there is one (and it is a key of the partition)."""
    if not kms_key_arn:
        return []
    if not kms_key_arn.startswith(f"arn:{partition}:kms:"):
        raise ValueError(f"{kms_key_arn!r} is not a KMS key ARN in the {partition} partition")
    return [{"Sid": sid, "Effect": "Allow", "Action": list(ARCHIVE_KEY), "Resource": kms_key_arn}]


def targets_policy_document(
    bucket: str,
    list_organisation: bool = True,
    *,
    partition: str = "aws",
    report_prefix: str = REPORT_PREFIX,
    kms_key_arn: str | None = None,
) -> dict[str, Any]:
    """Organisation mode's targets function: write the run's target list (and the key that encrypts it), and the
    organisation's listing unless the targets are a list of role ARNs."""
    statements = [{"Sid": "ListOrganisation", "Effect": "Allow", "Action": list(ORGANISATION_LIST), "Resource": "*"}]
    return {
        "Version": "2012-10-17",
        "Statement": [
            *(statements if list_organisation else []),
            {
                "Sid": "TargetsList",
                "Effect": "Allow",
                "Action": list(TARGETS_LIST),
                "Resource": targets_list_arn(bucket, partition, report_prefix),
            },
            *_key_statement("ReportKey", partition, kms_key_arn),
        ],
    }


def merge_policy_document(
    bucket: str, *, partition: str = "aws", report_prefix: str = REPORT_PREFIX, kms_key_arn: str | None = None
) -> dict[str, Any]:
    """Organisation mode's merge function: the report prefix only (the targets' reports read, the merged one
    written, the probe), the bucket's HeadBucket, and the key. Never the archive prefix, never ECS."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReportObjects",
            "Effect": "Allow",
            "Action": list(ARCHIVE_OBJECTS),
            "Resource": _objects(partition, bucket, (report_prefix,)),
        },
        {
            "Sid": "ReportBucket",
            "Effect": "Allow",
            "Action": list(ARCHIVE_BUCKET),
            "Resource": f"arn:{partition}:s3:::{bucket}",
        },
    ]
    return {"Version": "2012-10-17", "Statement": [*statements, *_key_statement("ReportKey", partition, kms_key_arn)]}


def state_machine_policy_document(
    state_machine_arn: str,
    function_arns: Sequence[str],
    queue_arn: str,
    bucket: str,
    *,
    report_prefix: str = REPORT_PREFIX,
    kms_key_arn: str | None = None,
) -> dict[str, Any]:
    """Organisation mode's state machine role: invoke its functions (each ARN and its versions), run its
    Distributed Map's child executions, read the map's items from the run's target list and write its results
    beside it (and the key that encrypts them), send a failure to the queue."""
    arn = state_machine_arn.split(":")
    if len(arn) != 7 or arn[2] != "states" or arn[5] != "stateMachine":
        raise ValueError(f"{state_machine_arn!r} is not a state machine ARN")
    executions = ":".join([*arn[:5], "execution", arn[6]]) + "/*"
    partition = arn[1]
    functions = [f for arn in function_arns for f in (arn, f"{arn}:*")]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Invoke", "Effect": "Allow", "Action": list(STATES_INVOKE), "Resource": functions},
            {"Sid": "MapRun", "Effect": "Allow", "Action": list(STATES_MAP_START), "Resource": state_machine_arn},
            {
                "Sid": "MapRunExecutions",
                "Effect": "Allow",
                "Action": list(STATES_MAP_EXECUTIONS),
                "Resource": executions,
            },
            {
                "Sid": "MapItems",
                "Effect": "Allow",
                "Action": list(STATES_MAP_ITEMS),
                "Resource": targets_list_arn(bucket, partition, report_prefix),
            },
            {
                "Sid": "MapResults",
                "Effect": "Allow",
                "Action": list(STATES_MAP_RESULTS),
                "Resource": map_results_arn(bucket, partition, report_prefix),
            },
            *_key_statement("ReportKey", partition, kms_key_arn),
            {"Sid": "DeadLetters", "Effect": "Allow", "Action": list(DEAD_LETTERS), "Resource": queue_arn},
        ],
    }


def schedule_policy_document(state_machine_arn: str, queue_arn: str) -> dict[str, Any]:
    """Organisation mode's schedule role: start the state machine; what it cannot start goes to the queue."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Start", "Effect": "Allow", "Action": list(SCHEDULE_START), "Resource": state_machine_arn},
            {"Sid": "DeadLetters", "Effect": "Allow", "Action": list(DEAD_LETTERS), "Resource": queue_arn},
        ],
    }


def terraform_json() -> dict[str, Any]:
    """deploy/terraform/permissions.json: this module's lists, for a module that must stay self-contained."""
    key, value = PROTECT_TAG
    return {
        "description": "The IAM actions tdgc calls, by purpose: generated by `python -m tdgc.permissions "
        "--terraform-json` from tdgc/permissions.py, which tests/deploy/test_iam.py holds this file to. register, "
        "register_tag, register_read and usage_write are the orchestrator's (tdgc register), not the function's. "
        "terraform_state_objects and terraform_state_bucket are the function's own read of the Terraform state "
        "buckets, never a member role's. codedeploy_appspec_objects is the read of the AppSpec buckets, an account "
        "statement (a member role's too, deploy/stackset). organisation_list, targets_list, states_*, dead_letters and "
        "schedule_start are organisation mode's (its targets function, state machine and schedule).",
        "read_only": {sid: list(acts) for sid, acts in READ_ONLY.items()},
        "apply_deregister": list(DEREGISTER),
        "apply_delete": list(DELETE),
        "protect_tag": {"key": key, "value": value},
        "archive_objects": list(ARCHIVE_OBJECTS),
        "archive_bucket": list(ARCHIVE_BUCKET),
        "archive_key": list(ARCHIVE_KEY),
        "assume": list(ASSUME),
        "policy_parameter": list(POLICY_PARAMETER),
        "usage_read": list(USAGE_READ),
        "terraform_state_objects": list(TERRAFORM_STATE_OBJECTS),
        "terraform_state_bucket": list(TERRAFORM_STATE_BUCKET),
        "codedeploy_appspec_objects": list(CODEDEPLOY_APPSPEC_OBJECTS),
        "register": list(REGISTER),
        "register_tag": list(REGISTER_TAG),
        "register_read": list(REGISTER_READ),
        "usage_write": list(USAGE_WRITE),
        "organisation_list": list(ORGANISATION_LIST),
        "states_invoke": list(STATES_INVOKE),
        "states_map_start": list(STATES_MAP_START),
        "states_map_executions": list(STATES_MAP_EXECUTIONS),
        "states_map_items": list(STATES_MAP_ITEMS),
        "states_map_results": list(STATES_MAP_RESULTS),
        "targets_list": list(TARGETS_LIST),
        "dead_letters": list(DEAD_LETTERS),
        "schedule_start": list(SCHEDULE_START),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tdgc.permissions", description=__doc__.splitlines()[0])
    parser.add_argument("--partition", default="aws", help="aws (default), aws-cn or aws-us-gov")
    parser.add_argument("--account", default="*", help="the account id the task definitions are in (default *)")
    parser.add_argument("--plan-only", action="store_true", help="without the mutations: a role for `plan` only")
    parser.add_argument("--terraform-json", action="store_true", help="print deploy/terraform/permissions.json")
    args = parser.parse_args(argv)
    if args.terraform_json:
        print(json.dumps(terraform_json(), indent=2))
        return
    try:
        document = policy_document(partition=args.partition, account=args.account, apply=not args.plan_only)
    except ValueError as exc:
        parser.error(str(exc))
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
