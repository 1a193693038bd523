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

# The statements that depend on an option (bucket, member roles, parameter), beside the account-wide ones.
CONDITIONAL = [
    permissions.ARCHIVE_OBJECTS, permissions.ARCHIVE_BUCKET, permissions.ASSUME, permissions.POLICY_PARAMETER,
]  # fmt: skip


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


def _terraform_permissions() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((TERRAFORM / "permissions.json").read_text())
    return loaded


def test_terraform_module_carries_exactly_the_permissions() -> None:
    carried = _terraform_permissions()
    assert carried["account_wide"] == {sid: list(actions) for sid, actions in permissions.ACCOUNT_WIDE.items()}
    assert [carried[key] for key in ("archive_objects", "archive_bucket", "assume", "policy_parameter")] == [
        list(actions) for actions in CONDITIONAL
    ]


def _block(text: str, header: str) -> str:
    start = text.index(header)
    return text[start : text.index("\n}\n", start)]


def test_terraform_module_takes_its_actions_from_permissions_json_alone() -> None:
    """The tdgc policy is built from the file, and spells no action itself that could drift from it."""
    main = (TERRAFORM / "main.tf").read_text()
    built = _block(main, "locals {")
    policy = _block(main, 'resource "aws_iam_role_policy" "tdgc" {')
    assert 'file("${path.module}/permissions.json")' in built
    assert "local.tdgc_statements" in policy
    for key in _terraform_permissions():
        if key != "description":
            assert f"local.permissions.{key}" in built, f"permissions.json's {key} is granted"
    assert [action for action in permissions.actions() if f'"{action}"' in built + policy] == []


def test_sam_and_terraform_deploy_the_runtime_the_zip_is_built_for() -> None:
    function = _sam()["Resources"]["Function"]["Properties"]
    assert (function["Runtime"], function["Architectures"]) == (package.RUNTIME, [package.ARCHITECTURE])
    main = (TERRAFORM / "main.tf").read_text()
    assert re.findall(r'^\s*runtime\s*=\s*"([^"]+)"', main, re.MULTILINE) == [package.RUNTIME]
    assert re.findall(r'^\s*architectures\s*=\s*\["([^"]+)"\]', main, re.MULTILINE) == [package.ARCHITECTURE]
