"""The IAM actions are listed once (tdgc.permissions); the README's policy is that list, scoped as the Service
Authorization Reference allows each ECS action, in any partition."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tdgc import permissions
from tdgc.policy import Rule

README = Path(__file__).resolve().parents[2] / "README.md"
ACCOUNT = "111122223333"
KEY = "arn:{partition}:kms:eu-west-1:111122223333:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
MUTATIONS = set(permissions.APPLY)


def _by_sid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {statement["Sid"]: statement for statement in document["Statement"]}


def _allowed(document: dict[str, Any]) -> set[str]:
    return {a for st in document["Statement"] if st["Effect"] == "Allow" for a in st["Action"]}


def _readme_policy() -> dict[str, Any]:
    section = README.read_text().split("## IAM permissions", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block, "the README's IAM section has a JSON policy"
    loaded: dict[str, Any] = json.loads(block.group(1))
    return loaded


def test_the_readme_policy_is_the_policy_document() -> None:
    assert _readme_policy() == permissions.policy_document()


def test_the_readme_says_which_mutations_can_be_refused_by_tag() -> None:
    section = README.read_text().split("## IAM permissions", 1)[1].split("\n## ", 1)[0]
    assert "ecs:DeleteTaskDefinitions" in section and "aws:ResourceTag" in section
    assert "`ecs:DeregisterTaskDefinition` has no resource type and no condition key" in section


def test_the_deregistration_is_granted_on_star_and_the_delete_on_the_accounts_task_definitions() -> None:
    """What the Service Authorization Reference allows: DeregisterTaskDefinition no resource type, so "*";
    DeleteTaskDefinitions the task-definition resource type."""
    by_sid = _by_sid(permissions.policy_document(account=ACCOUNT))
    assert by_sid["ApplyDeregister"] == {
        "Sid": "ApplyDeregister",
        "Effect": "Allow",
        "Action": ["ecs:DeregisterTaskDefinition"],
        "Resource": "*",
    }
    assert by_sid["ApplyDelete"] == {
        "Sid": "ApplyDelete",
        "Effect": "Allow",
        "Action": ["ecs:DeleteTaskDefinitions"],
        "Resource": f"arn:aws:ecs:*:{ACCOUNT}:task-definition/*",
    }
    on_star = {a for st in by_sid.values() if st["Effect"] == "Allow" and st["Resource"] == "*" for a in st["Action"]}
    assert on_star & MUTATIONS == {"ecs:DeregisterTaskDefinition"}


def test_a_protected_revision_cannot_be_deleted_whatever_else_is_granted() -> None:
    """An explicit Deny on the built-in protect tag (the only mutation with a tag condition key), with the
    mutations or without them."""
    assert dict(Rule().protect_tags) == dict([permissions.PROTECT_TAG])  # the built-in policy's protect tag
    for apply in (True, False):
        [deny] = [st for st in permissions.policy_document(apply=apply)["Statement"] if st["Effect"] == "Deny"]
        assert deny == {
            "Sid": "KeepProtected",
            "Effect": "Deny",
            "Action": ["ecs:DeleteTaskDefinitions"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceTag/tdgc:keep": "true"}},
        }


def test_a_plan_only_policy_allows_no_mutation() -> None:
    document = permissions.policy_document("b", apply=False)
    assert _allowed(document) & MUTATIONS == set()
    assert not any(a in ("*", "ecs:*") for a in _allowed(document))
    assert [st["Sid"] for st in document["Statement"]] == [
        "Scan",
        "References",
        "Regions",
        "KeepProtected",
        "ArchiveObjects",
        "ArchiveBucket",
    ]
    assert _allowed(permissions.policy_document()) & MUTATIONS == MUTATIONS


def test_the_policy_document_scopes_the_bucket_to_its_two_prefixes_and_the_roles() -> None:
    doc = permissions.policy_document(bucket="b", role_arns=["arn:aws:iam::111111111111:role/tdgc"])
    by_sid = _by_sid(doc)
    assert by_sid["ArchiveObjects"]["Action"] == ["s3:PutObject", "s3:GetObject"]
    assert by_sid["ArchiveObjects"]["Resource"] == ["arn:aws:s3:::b/tdgc/archive/*", "arn:aws:s3:::b/tdgc/reports/*"]
    # HeadBucket (tdgc.aws.check_bucket) is authorised as s3:ListBucket and carries no prefix: no condition.
    assert by_sid["ArchiveBucket"] == {
        "Sid": "ArchiveBucket",
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": "arn:aws:s3:::b",
    }
    assert by_sid["AssumeMemberRoles"]["Resource"] == ["arn:aws:iam::111111111111:role/tdgc"]
    assert "ArchiveKey" not in by_sid
    unused = {*permissions.POLICY_PARAMETER, *permissions.USAGE_READ, *permissions.ARCHIVE_KEY}
    assert {a for st in doc["Statement"] for a in st["Action"]} == set(permissions.actions()) - unused
    other = _by_sid(permissions.policy_document(bucket="b", archive_prefix="a/", report_prefix="/r"))
    assert other["ArchiveObjects"]["Resource"] == ["arn:aws:s3:::b/a/*", "arn:aws:s3:::b/r/*"]
    same = _by_sid(permissions.policy_document(bucket="b", archive_prefix="x", report_prefix="x"))
    assert same["ArchiveObjects"]["Resource"] == ["arn:aws:s3:::b/x/*"]
    root = _by_sid(permissions.policy_document(bucket="b", archive_prefix="", report_prefix="r"))
    assert root["ArchiveObjects"]["Resource"] == ["arn:aws:s3:::b/*", "arn:aws:s3:::b/r/*"]


def test_the_archive_key_is_granted_data_keys_and_decrypt_on_that_key_only() -> None:
    key = KEY.format(partition="aws")
    by_sid = _by_sid(permissions.policy_document("b", kms_key_arn=key))
    assert by_sid["ArchiveKey"] == {
        "Sid": "ArchiveKey",
        "Effect": "Allow",
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": key,
    }
    with pytest.raises(ValueError, match="not a KMS key ARN in the aws-cn partition"):
        permissions.policy_document("b", partition="aws-cn", kms_key_arn=key)


@pytest.mark.parametrize("partition", permissions.PARTITIONS)
def test_the_policy_document_renders_in_each_partition(partition: str) -> None:
    """Every ARN in the partition's spelling, none in another's; the same statements otherwise."""
    document = permissions.policy_document(
        "b",
        ["arn:aws:iam::111111111111:role/tdgc"],
        ["tf-state"],
        partition=partition,
        account=ACCOUNT,
        kms_key_arn=KEY.format(partition=partition),
    )
    arns = [
        r
        for st in document["Statement"]
        for r in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])
        if r != "*" and st["Sid"] != "AssumeMemberRoles"
    ]
    assert arns and all(arn.startswith(f"arn:{partition}:") for arn in arns), arns
    by_sid = _by_sid(document)
    assert by_sid["ApplyDelete"]["Resource"] == f"arn:{partition}:ecs:*:{ACCOUNT}:task-definition/*"
    assert by_sid["ArchiveBucket"]["Resource"] == f"arn:{partition}:s3:::b"
    assert by_sid["TerraformStateObjects"]["Resource"] == [f"arn:{partition}:s3:::tf-state/*"]
    # Nothing but the partition differs from the aws rendering.
    aws = permissions.policy_document(
        "b",
        ["arn:aws:iam::111111111111:role/tdgc"],
        ["tf-state"],
        account=ACCOUNT,
        kms_key_arn=KEY.format(partition="aws"),
    )
    text = json.dumps(aws).replace("arn:aws:", f"arn:{partition}:").replace(f"arn:{partition}:iam:", "arn:aws:iam:")
    assert json.loads(text) == document
    register = permissions.register_policy_document(partition=partition, account=ACCOUNT)
    assert _by_sid(register)["Register"]["Resource"] == f"arn:{partition}:ecs:*:{ACCOUNT}:task-definition/*"


@pytest.mark.parametrize(("partition", "account"), [("aws-cnn ", "*"), ("gcp", "*"), ("aws", "1234"), ("aws", "")])
def test_a_bad_partition_or_account_is_refused(partition: str, account: str) -> None:
    with pytest.raises(ValueError):
        permissions.policy_document(partition=partition, account=account)


def test_the_register_policy_tags_only_as_part_of_the_registration() -> None:
    """ecs:TagResource carries ecs:CreateAction (a TagResource condition key in the Service Authorization
    Reference): tdgc register and restore tag in RegisterTaskDefinition itself, never afterwards."""
    document = permissions.register_policy_document("arn:aws:dynamodb:eu-west-1:111122223333:table/t")
    by_sid = _by_sid(document)
    assert by_sid["TagOnRegister"] == {
        "Sid": "TagOnRegister",
        "Effect": "Allow",
        "Action": ["ecs:TagResource"],
        "Resource": "arn:aws:ecs:*:*:task-definition/*",
        "Condition": {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}},
    }
    assert by_sid["Register"]["Action"] == ["ecs:RegisterTaskDefinition"]
    assert by_sid["ReadTaskDefinitions"] == {
        "Sid": "ReadTaskDefinitions",
        "Effect": "Allow",
        "Resource": "*",
        "Action": ["ecs:ListTaskDefinitions", "ecs:DescribeTaskDefinition"],
    }
    assert by_sid["UsageStore"]["Resource"] == "arn:aws:dynamodb:eu-west-1:111122223333:table/t"
    assert "UsageStore" not in _by_sid(permissions.register_policy_document())


def test_the_policy_document_reads_the_terraform_state_buckets_and_nothing_else() -> None:
    """The terraform reference source reads state, scoped to the bucket named: no write, no lock table."""
    doc = permissions.policy_document(state_buckets=["tf-state"])
    by_sid = _by_sid(doc)
    assert by_sid["TerraformStateObjects"] == {
        "Sid": "TerraformStateObjects",
        "Effect": "Allow",
        "Action": ["s3:GetObject"],
        "Resource": ["arn:aws:s3:::tf-state/*"],
    }
    assert by_sid["TerraformStateBucket"] == {
        "Sid": "TerraformStateBucket",
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": ["arn:aws:s3:::tf-state"],
    }
    # Beside the account's statements, those two alone.
    assert doc["Statement"] == [
        *permissions.policy_document()["Statement"],
        by_sid["TerraformStateObjects"],
        by_sid["TerraformStateBucket"],
    ]
    two = permissions.policy_document(state_buckets=["a", "b"])["Statement"][-2:]
    assert [st["Resource"] for st in two] == [
        ["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"],
        ["arn:aws:s3:::a", "arn:aws:s3:::b"],
    ]


@pytest.mark.parametrize("partition", permissions.PARTITIONS)
def test_the_account_statements_read_the_appspec_buckets_objects_and_nothing_else(partition: str) -> None:
    """The codedeploy source reads AppSpecs with the target's credentials, so the read is an account statement:
    the function's role and a member role hold it alike. GetObject on the named buckets' objects, no listing."""
    read = {
        "Sid": "CodeDeployAppSpecs",
        "Effect": "Allow",
        "Action": ["s3:GetObject"],
        "Resource": [f"arn:{partition}:s3:::codepipeline-eu-west-1-1/*", f"arn:{partition}:s3:::artifacts.eu/*"],
    }
    buckets = ["codepipeline-eu-west-1-1", "artifacts.eu"]
    for apply in (True, False):
        without = permissions.account_statements(partition, ACCOUNT, apply)
        member = permissions.account_statements(partition, ACCOUNT, apply, appspec_buckets=buckets)
        assert [st for st in member if st not in without] == [read] and len(member) == len(without) + 1
        document = permissions.policy_document(
            partition=partition, account=ACCOUNT, apply=apply, appspec_buckets=buckets
        )
        assert document["Statement"] == member
    assert "CodeDeployAppSpecs" not in _by_sid(permissions.policy_document())


def test_the_command_prints_the_policy_for_a_partition_and_account(capsys: pytest.CaptureFixture[str]) -> None:
    permissions.main(["--partition", "aws-us-gov", "--account", ACCOUNT, "--plan-only"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == permissions.policy_document(partition="aws-us-gov", account=ACCOUNT, apply=False)
    permissions.main([])
    assert json.loads(capsys.readouterr().out) == permissions.policy_document()
    with pytest.raises(SystemExit):
        permissions.main(["--account", "nope"])
