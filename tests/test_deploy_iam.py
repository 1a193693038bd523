"""The SAM template and the Terraform module grant exactly the actions of tdgc/permissions.py, and deploy the
runtime the zip is built for. Files only: no terraform, no AWS, so this runs everywhere."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tdgc import package, permissions

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SAM = DEPLOY / "sam" / "template.yaml"
TERRAFORM = DEPLOY / "terraform"

# The statements that depend on an option (bucket, member roles, parameter, usage table, Terraform state
# buckets), beside the account-wide ones.
CONDITIONAL = [
    permissions.ARCHIVE_OBJECTS, permissions.ARCHIVE_BUCKET, permissions.ASSUME, permissions.POLICY_PARAMETER,
    permissions.USAGE_READ, permissions.TERRAFORM_STATE_OBJECTS, permissions.TERRAFORM_STATE_BUCKET,
]  # fmt: skip
# The usage store's table, whether the stack creates it or not.
SAM_TABLE_ARN = {"Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${UsageTable}"}


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !Sub, !If, ...) read as their long forms."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def _sam() -> dict[str, Any]:
    template: dict[str, Any] = yaml.load(SAM.read_text(), Loader=_CloudFormationLoader)  # a SafeLoader
    return template


def _sam_tdgc_statements() -> list[tuple[str | None, dict[str, Any]]]:
    """The function role's tdgc policy: (the condition it is under or None, statement)."""
    role = _sam()["Resources"]["Function"]["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = _sam()["Resources"][role]["Properties"]["Policies"]
    [document] = [p["PolicyDocument"] for p in policies if p["PolicyName"] == "tdgc"]
    found: list[tuple[str | None, dict[str, Any]]] = []
    for item in document["Statement"]:
        if "Fn::If" in item:
            condition, statement, otherwise = item["Fn::If"]
            assert otherwise == {"Ref": "AWS::NoValue"}, "an option adds a statement, or nothing"
            found.append((condition, statement))
        else:
            found.append((None, item))
    return found


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def test_sam_grants_account_wide_exactly_the_permissions_and_the_rest_only_when_asked() -> None:
    statements = _sam_tdgc_statements()
    account_wide = {s["Sid"]: _as_list(s["Action"]) for condition, s in statements if condition is None}
    assert account_wide == {sid: list(actions) for sid, actions in permissions.ACCOUNT_WIDE.items()}
    assert all(s["Resource"] == "*" for condition, s in statements if condition is None)

    optional = [(condition, s) for condition, s in statements if condition is not None]
    assert sorted(tuple(_as_list(s["Action"])) for _, s in optional) == sorted(tuple(a) for a in CONDITIONAL)
    conditions = _sam()["Conditions"]
    for condition, statement in optional:
        assert statement["Resource"] != "*", f"{statement['Sid']} is scoped to what its option names"
        assert condition in conditions
    assert {a for _, s in statements for a in _as_list(s["Action"])} == set(permissions.actions())
    [(condition, usage)] = [(c, s) for c, s in optional if _as_list(s["Action"]) == list(permissions.USAGE_READ)]
    assert (condition, usage["Resource"]) == ("HasUsageTable", SAM_TABLE_ARN)


def _resolve(value: Any, parameters: dict[str, Any], conditions: dict[str, Any]) -> Any:
    """A value as CloudFormation resolves it, for the functions the template's conditions and its state-bucket
    statements use (Ref, Condition, Fn::If, Fn::Join, Fn::Split, Fn::Sub, Fn::Equals, Fn::Not)."""
    if isinstance(value, list):
        return [_resolve(item, parameters, conditions) for item in value]
    if not isinstance(value, dict):
        return value
    [(function, arguments)] = value.items()
    if function == "Ref":
        return parameters[arguments]
    if function == "Condition":
        return _resolve(conditions[arguments], parameters, conditions)
    if function == "Fn::If":
        condition, when, otherwise = arguments
        chosen = when if _resolve(conditions[condition], parameters, conditions) else otherwise
        return _resolve(chosen, parameters, conditions)
    if function == "Fn::Join":
        delimiter, items = arguments
        assert isinstance(delimiter, str), "CloudFormation takes only a literal delimiter"
        return delimiter.join(_resolve(items, parameters, conditions))
    if function == "Fn::Split":
        delimiter, text = arguments
        assert isinstance(delimiter, str), "CloudFormation takes only a literal delimiter"
        split: list[str] = _resolve(text, parameters, conditions).split(delimiter)
        return split
    if function == "Fn::Sub":
        template, variables = arguments if isinstance(arguments, list) else (arguments, {})
        assert isinstance(template, str), "CloudFormation takes only a literal template"
        known = parameters | {name: _resolve(v, parameters, conditions) for name, v in variables.items()}
        return re.sub(r"\$\{([^}!]+)\}", lambda found: str(known[found.group(1)]), template)
    if function == "Fn::Equals":
        left, right = _resolve(arguments, parameters, conditions)
        return left == right
    if function == "Fn::Not":
        [operand] = _resolve(arguments, parameters, conditions)
        return not operand
    raise AssertionError(f"{function} is not resolved here")


def test_sam_grants_a_read_of_the_terraform_state_buckets_named_and_only_then() -> None:
    """Each state bucket, in the stack's partition, exactly as tdgc.permissions.policy_document scopes it."""
    conditions = _sam()["Conditions"]
    optional = {s["Sid"]: (c, s) for c, s in _sam_tdgc_statements() if c is not None}
    assert {optional[sid][0] for sid in ("TerraformStateObjects", "TerraformStateBucket")} == {
        "HasTerraformStateBuckets"
    }
    unnamed = {"TerraformStateBuckets": [""], "AWS::Partition": "aws"}  # the default, as CloudFormation splits it
    assert _resolve(conditions["HasTerraformStateBuckets"], unnamed, conditions) is False
    buckets = ["tf-state", "tf-state.eu"]
    for partition in ("aws", "aws-cn", "aws-us-gov"):
        parameters = {"TerraformStateBuckets": buckets, "AWS::Partition": partition}
        assert _resolve(conditions["HasTerraformStateBuckets"], parameters, conditions) is True
        expected = json.loads(
            json.dumps(permissions.policy_document(state_buckets=buckets)).replace("arn:aws:", f"arn:{partition}:")
        )
        for statement in expected["Statement"]:
            if statement["Sid"] in ("TerraformStateObjects", "TerraformStateBucket"):
                _, granted = optional[statement["Sid"]]
                resolved = {**granted, "Resource": _resolve(granted["Resource"], parameters, conditions)}
                assert resolved == statement, partition


def test_sam_offers_the_orchestrator_exactly_the_register_policy_on_the_same_table() -> None:
    resources = _sam()["Resources"]
    policy = resources["RegisterPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy" and policy["Condition"] == "HasUsageTable"
    assert "Roles" not in policy["Properties"]  # for the orchestrator's role, never the function's
    expected = permissions.register_policy_document("TABLE")
    for statement in expected["Statement"]:
        statement["Resource"] = SAM_TABLE_ARN if statement["Resource"] == "TABLE" else statement["Resource"]
    assert policy["Properties"]["PolicyDocument"] == expected
    table = resources["UsageStoreTable"]
    assert (table["Condition"], table["DeletionPolicy"], table["UpdateReplacePolicy"]) == (
        "CreatesUsageTable", "Retain", "Retain",
    )  # fmt: skip
    assert table["Properties"]["TableName"] == {"Ref": "UsageTable"}


def _terraform_permissions() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((TERRAFORM / "permissions.json").read_text())
    return loaded


def test_terraform_module_carries_exactly_the_permissions() -> None:
    carried = _terraform_permissions()
    assert carried["account_wide"] == {sid: list(actions) for sid, actions in permissions.ACCOUNT_WIDE.items()}
    optional = ("archive_objects", "archive_bucket", "assume", "policy_parameter", "usage_read",
                "terraform_state_objects", "terraform_state_bucket")  # fmt: skip
    assert [carried[key] for key in optional] == [list(actions) for actions in CONDITIONAL]
    # The orchestrator's, for the register policy the module offers.
    assert (carried["register"], carried["usage_write"]) == (list(permissions.REGISTER), list(permissions.USAGE_WRITE))
    assert set(carried) == {"description", "account_wide", *optional, "register", "usage_write"}


def _block(text: str, header: str) -> str:
    start = text.index(header)
    return text[start : text.index("\n}\n", start)]


def test_terraform_module_takes_its_actions_from_permissions_json_alone() -> None:
    """The tdgc and register policies are built from the file; the module spells no action that could drift."""
    main = (TERRAFORM / "main.tf").read_text()
    built = _block(main, "locals {")
    policy = _block(main, 'resource "aws_iam_role_policy" "tdgc" {')
    assert 'file("${path.module}/permissions.json")' in built
    assert "local.tdgc_statements" in policy
    for key in _terraform_permissions():
        if key != "description":
            assert f"local.permissions.{key}" in built, f"permissions.json's {key} is granted"
    assert [action for action in permissions.actions() if f'"{action}"' in built + policy] == []
    # Nor anywhere else in the module (the roles' trust policies name sts:AssumeRole: that one is theirs).
    spelled = {*permissions.actions(), *permissions.REGISTER, *permissions.USAGE_WRITE} - set(permissions.ASSUME)
    assert sorted(action for action in spelled if f'"{action}"' in main) == []


def test_sam_and_terraform_deploy_the_runtime_the_zip_is_built_for() -> None:
    function = _sam()["Resources"]["Function"]["Properties"]
    assert (function["Runtime"], function["Architectures"]) == (package.RUNTIME, [package.ARCHITECTURE])
    main = (TERRAFORM / "main.tf").read_text()
    assert re.findall(r'^\s*runtime\s*=\s*"([^"]+)"', main, re.MULTILINE) == [package.RUNTIME]
    assert re.findall(r'^\s*architectures\s*=\s*\["([^"]+)"\]', main, re.MULTILINE) == [package.ARCHITECTURE]
