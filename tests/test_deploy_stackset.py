"""The StackSet member role: lints clean, trusts only the central role with the external id, and grants
exactly tdgc.permissions' account-wide actions (apply only when allowed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import yaml
from cfnlint.api import lint_file
from moto import mock_aws

from tdgc import permissions

from .test_deploy_iam import _CloudFormationLoader

TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "stackset" / "member-role.yaml"
CENTRAL = "arn:aws:iam::999999999999:role/tdgc"


def test_cfn_lint_finds_nothing() -> None:
    assert [str(match) for match in lint_file(TEMPLATE)] == []


def test_the_role_grants_the_account_wide_actions_and_apply_only_when_allowed() -> None:
    template: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=_CloudFormationLoader)  # a SafeLoader
    [policy] = template["Resources"]["MemberRole"]["Properties"]["Policies"]
    plain = {s["Sid"]: s["Action"] for s in policy["PolicyDocument"]["Statement"] if "Fn::If" not in s}
    [conditional] = [s["Fn::If"] for s in policy["PolicyDocument"]["Statement"] if "Fn::If" in s]
    assert conditional[0] == "Apply" and conditional[2] == {"Ref": "AWS::NoValue"}
    granted = {**plain, conditional[1]["Sid"]: conditional[1]["Action"]}
    assert granted == {sid: list(actions) for sid, actions in permissions.ACCOUNT_WIDE.items()}
    assert "Apply" not in plain


@mock_aws
def test_the_stack_creates_a_role_only_the_central_role_can_assume_with_the_external_id() -> None:
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    cfn.create_stack(
        StackName="tdgc-member", TemplateBody=TEMPLATE.read_text(), Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": "CentralRoleArn", "ParameterValue": CENTRAL},
                    {"ParameterKey": "ExternalId", "ParameterValue": "ext-123"},
                    {"ParameterKey": "AllowApply", "ParameterValue": "false"}],
    )  # fmt: skip
    [stack] = cfn.describe_stacks(StackName="tdgc-member")["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["MemberRoleArn"].endswith(":role/tdgc-member")
    role = boto3.client("iam", region_name="us-east-1").get_role(RoleName="tdgc-member")["Role"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": CENTRAL}
    assert trust["Condition"]["StringEquals"] == {"sts:ExternalId": "ext-123"}
