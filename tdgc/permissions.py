"""The IAM actions tdgc calls, by purpose: the one list the README, SAM template and Terraform module agree with.

`python -m tdgc.permissions` prints the policy document (tests hold the templates to this list).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

# Statement id -> actions. Read-only first: `plan` needs only SCAN and REFERENCES.
SCAN = ("ecs:ListTaskDefinitionFamilies", "ecs:ListTaskDefinitions", "ecs:DescribeTaskDefinition")
REFERENCES = (
    "ecs:ListClusters", "ecs:ListServices", "ecs:DescribeServices", "ecs:ListTasks", "ecs:DescribeTasks",
    "ecs:ListServiceDeployments", "ecs:DescribeServiceDeployments", "ecs:DescribeServiceRevisions",
    "ecs:DescribeExpressGatewayService",
    "events:ListEventBuses", "events:ListRules", "events:ListTargetsByRule",
    "scheduler:ListSchedules", "scheduler:GetSchedule", "pipes:ListPipes", "pipes:DescribePipe",
    "states:ListStateMachines", "states:ListStateMachineVersions", "states:DescribeStateMachine",
    "cloudformation:ListStacks", "cloudformation:ListStackResources",
    "codedeploy:ListApplications", "codedeploy:BatchGetApplications", "codedeploy:ListDeploymentGroups",
    "codedeploy:BatchGetDeploymentGroups", "codedeploy:ListDeployments", "codedeploy:BatchGetDeployments",
    "codedeploy:GetApplicationRevision",
)  # fmt: skip
APPLY = ("ecs:DeregisterTaskDefinition", "ecs:DeleteTaskDefinitions")
REGIONS = ("ec2:DescribeRegions",)  # --all-regions: the regions enabled in the account
# On the archive / report bucket: objects are written, then read back; each run first proves it may, on a
# probe object (PREFIX/.tdgc-probe) it overwrites. Never s3:DeleteObject: tdgc removes nothing there.
ARCHIVE_OBJECTS = ("s3:PutObject", "s3:GetObject")
ARCHIVE_BUCKET = ("s3:ListBucket",)
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

# Not the scheduled run's: what `tdgc register` and the Airflow operator need, where the orchestrator runs.
REGISTER = ("ecs:RegisterTaskDefinition", "ecs:TagResource", "ecs:ListTaskDefinitions", "ecs:DescribeTaskDefinition")
USAGE_WRITE = (
    "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:Scan",
    "dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:UpdateTimeToLive",
)  # fmt: skip

ACCOUNT_WIDE: Mapping[str, Sequence[str]] = {
    "Scan": SCAN, "References": REFERENCES, "Apply": APPLY, "Regions": REGIONS,
}  # fmt: skip


def actions() -> list[str]:
    """Every action any part of tdgc's scheduled run may call, sorted."""
    every = (*SCAN, *REFERENCES, *APPLY, *REGIONS, *ARCHIVE_OBJECTS, *ARCHIVE_BUCKET, *ASSUME, *POLICY_PARAMETER,
             *USAGE_READ, *TERRAFORM_STATE_OBJECTS, *TERRAFORM_STATE_BUCKET)  # fmt: skip
    return sorted(set(every))


def register_policy_document(table_arn: str | None = None) -> dict[str, Any]:
    """What `tdgc register` / the Airflow operator needs: register and tag revisions, and the store's table."""
    statements: list[dict[str, Any]] = [
        {"Sid": "Register", "Effect": "Allow", "Action": list(REGISTER), "Resource": "*"}
    ]
    if table_arn:
        statements.append({"Sid": "UsageStore", "Effect": "Allow", "Action": list(USAGE_WRITE), "Resource": table_arn})
    return {"Version": "2012-10-17", "Statement": statements}


def policy_document(
    bucket: str | None = None, role_arns: Sequence[str] = (), state_buckets: Sequence[str] = ()
) -> dict[str, Any]:
    """The least-privilege policy of a run: account-wide reads and mutations, the bucket, the roles, and a
    read of the Terraform state buckets (the caller's own: member roles never read them)."""
    statements: list[dict[str, Any]] = [
        {"Sid": sid, "Effect": "Allow", "Action": list(acts), "Resource": "*"} for sid, acts in ACCOUNT_WIDE.items()
    ]
    if bucket:
        statements += [
            {"Sid": "ArchiveObjects", "Effect": "Allow", "Action": list(ARCHIVE_OBJECTS),
             "Resource": f"arn:aws:s3:::{bucket}/*"},
            {"Sid": "ArchiveBucket", "Effect": "Allow", "Action": list(ARCHIVE_BUCKET),
             "Resource": f"arn:aws:s3:::{bucket}"},
        ]  # fmt: skip
    if role_arns:
        statements.append({"Sid": "AssumeMemberRoles", "Effect": "Allow", "Action": list(ASSUME),
                           "Resource": list(role_arns)})  # fmt: skip
    if state_buckets:
        statements += [
            {"Sid": "TerraformStateObjects", "Effect": "Allow", "Action": list(TERRAFORM_STATE_OBJECTS),
             "Resource": [f"arn:aws:s3:::{name}/*" for name in state_buckets]},
            {"Sid": "TerraformStateBucket", "Effect": "Allow", "Action": list(TERRAFORM_STATE_BUCKET),
             "Resource": [f"arn:aws:s3:::{name}" for name in state_buckets]},
        ]  # fmt: skip
    return {"Version": "2012-10-17", "Statement": statements}


if __name__ == "__main__":
    print(json.dumps(policy_document(), indent=2))
