"""The StackSet member role: lints clean, trusts only the central role with the external id, and grants exactly
tdgc.permissions.account_statements: read-only unless AllowApply is "true"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from cfnlint.api import lint_file
from moto import mock_aws
from moto.cloudformation import parsing
from moto.iam.models import Role

from tdgc import permissions
from tests.deploy.test_iam import _CloudFormationLoader, resolve
from tests.deploy.test_sam import _documents_as_json, _no_value_dropped

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "stackset" / "member-role.yaml"
CENTRAL = "arn:aws:iam::999999999999:role/tdgc"
APPSPEC_BUCKETS = ["codepipeline-us-east-1-1", "org-artifacts.eu"]  # the codedeploy source's AppSpecs
ACCOUNT = "123456789012"  # moto's


def test_cfn_lint_finds_nothing() -> None:
    assert [str(match) for match in lint_file(TEMPLATE)] == []


def _template() -> dict[str, Any]:
    template: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=_CloudFormationLoader)  # a SafeLoader
    return template


def test_member_roles_are_read_only_unless_apply_is_allowed() -> None:
    assert _template()["Parameters"]["AllowApply"]["Default"] == "false"


@pytest.mark.parametrize("partition", permissions.PARTITIONS)
@pytest.mark.parametrize("allow_apply", ["true", "false"])
@pytest.mark.parametrize("appspec_buckets", [[""], APPSPEC_BUCKETS])  # a CommaDelimitedList's default: [""]
def test_the_role_grants_exactly_the_account_statements(
    partition: str, allow_apply: str, appspec_buckets: list[str]
) -> None:
    template = _template()
    [policy] = template["Resources"]["MemberRole"]["Properties"]["Policies"]
    known = {"AllowApply": allow_apply, "AWS::Partition": partition, "AWS::AccountId": ACCOUNT}
    known |= {"CodeDeployAppSpecBuckets": appspec_buckets}
    granted = resolve(policy["PolicyDocument"], known, template["Conditions"])
    expected = permissions.account_statements(
        partition, ACCOUNT, apply=allow_apply == "true", appspec_buckets=[b for b in appspec_buckets if b]
    )
    assert {st["Sid"]: st for st in granted["Statement"]} == {st["Sid"]: st for st in expected}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto, with the two gaps tests/deploy/test_sam.py fills for the same reason: a conditional statement that
    resolves to AWS::NoValue is dropped, and the role's policies come back as JSON."""
    with mock_aws():
        monkeypatch.setattr(parsing, "clean_json", _no_value_dropped(parsing.clean_json))
        create_role = Role.create_from_cloudformation_json
        monkeypatch.setattr(Role, "create_from_cloudformation_json", _documents_as_json(create_role))
        yield


def _deploy(parameters: dict[str, str]) -> dict[str, Any]:
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    cfn.create_stack(
        StackName="tdgc-member",
        TemplateBody=TEMPLATE.read_text(),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[
            {"ParameterKey": "CentralRoleArn", "ParameterValue": CENTRAL},
            {"ParameterKey": "ExternalId", "ParameterValue": "ext-123"},
            *({"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()),
        ],
    )
    [stack] = cfn.describe_stacks(StackName="tdgc-member")["Stacks"]
    return stack


def _role_statements() -> list[dict[str, Any]]:
    """Every statement of every policy of the deployed role, as IAM answers it."""
    iam = boto3.client("iam", region_name="us-east-1")
    assert iam.list_attached_role_policies(RoleName="tdgc-member")["AttachedPolicies"] == []
    found = []
    for name in iam.list_role_policies(RoleName="tdgc-member")["PolicyNames"]:
        document = iam.get_role_policy(RoleName="tdgc-member", PolicyName=name)["PolicyDocument"]
        found += (json.loads(document) if isinstance(document, str) else document)["Statement"]
    return found


def _allowed(statements: list[dict[str, Any]]) -> set[str]:
    return {
        a
        for st in statements
        if st["Effect"] == "Allow"
        for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
    }


def test_the_stack_creates_a_role_only_the_central_role_can_assume_with_the_external_id(aws: None) -> None:
    stack = _deploy({"AllowApply": "false"})
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["MemberRoleArn"].endswith(":role/tdgc-member")
    role = boto3.client("iam", region_name="us-east-1").get_role(RoleName="tdgc-member")["Role"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": CENTRAL}
    assert trust["Condition"]["StringEquals"] == {"sts:ExternalId": "ext-123"}


def test_a_role_deployed_without_allow_apply_cannot_change_the_account(aws: None) -> None:
    """The deployed role's policies, read back: no statement allows a deregistration or a delete; the Deny on a
    protected revision is there."""
    _deploy({})
    statements = _role_statements()
    assert _allowed(statements) & set(permissions.APPLY) == set()
    assert not {"*", "ecs:*"} & _allowed(statements)
    assert [st["Sid"] for st in statements if st["Effect"] == "Deny"] == ["KeepProtected"]


def test_a_role_deployed_with_allow_apply_deregisters_anywhere_and_deletes_its_accounts_task_definitions(
    aws: None,
) -> None:
    _deploy({"AllowApply": "true"})
    by_sid = {st["Sid"]: st for st in _role_statements()}
    assert by_sid["ApplyDeregister"]["Resource"] == "*"
    assert by_sid["ApplyDelete"]["Resource"] == f"arn:aws:ecs:*:{ACCOUNT}:task-definition/*"
    assert by_sid["KeepProtected"]["Condition"] == {"StringEquals": {"aws:ResourceTag/tdgc:keep": "true"}}


def test_a_role_deployed_with_appspec_buckets_reads_their_objects_and_nothing_more(aws: None) -> None:
    """The codedeploy source reads an AppSpec kept in S3 through this role: GetObject on the named buckets'
    objects; without the parameter, no S3 action at all."""
    _deploy({})
    assert {a for a in _allowed(_role_statements()) if a.startswith("s3:")} == set()
    boto3.client("cloudformation", region_name="us-east-1").delete_stack(StackName="tdgc-member")
    _deploy({"CodeDeployAppSpecBuckets": ",".join(APPSPEC_BUCKETS)})
    granted = [st for st in _role_statements() if any(a.startswith("s3:") for a in _allowed([st]))]
    assert granted == [
        {
            "Sid": "CodeDeployAppSpecs",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{name}/*" for name in APPSPEC_BUCKETS],
        }
    ]
