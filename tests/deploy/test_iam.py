"""The SAM template and the Terraform module grant exactly tdgc/permissions.py's statements, and deploy the runtime
the zip is built for. Files only: no terraform, no AWS, so this runs everywhere.

The SAM template's policies are resolved as CloudFormation resolves them, for sets of parameters in each
partition, and compared with what tdgc.permissions renders for the same options."""

from __future__ import annotations

import functools
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tdgc import package, permissions

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SAM = DEPLOY / "sam" / "template.yaml"
TERRAFORM = DEPLOY / "terraform"
ACCOUNT = "111122223333"
REGION = "eu-west-1"
KEY = "arn:{partition}:kms:eu-west-1:111122223333:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
GENERATED_BUCKET = "tdgc-archivestore-1a2b3c4d5e6f"  # what CloudFormation names a bucket it names itself
NO_VALUE = object()


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


@functools.cache
def _sam() -> dict[str, Any]:
    """The template (cached: the callers only read it)."""
    template: dict[str, Any] = yaml.load(SAM.read_text(), Loader=_CloudFormationLoader)  # a SafeLoader
    return template


def resolve(value: Any, known: dict[str, Any], conditions: dict[str, Any]) -> Any:
    """A value as CloudFormation resolves it: `known` holds the parameters, the pseudo parameters and the
    resources' Ref and GetAtt values ("Logical.Attribute"). A list item that resolves to AWS::NoValue is
    dropped, as CloudFormation drops it."""
    if isinstance(value, list):
        items = [resolve(item, known, conditions) for item in value]
        return [item for item in items if item is not NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) != 1 or not next(iter(value)).startswith(("Fn::", "Ref", "Condition")):
        resolved = {key: resolve(item, known, conditions) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}
    [(function, arguments)] = value.items()
    if function == "Ref":
        return NO_VALUE if arguments == "AWS::NoValue" else known[arguments]
    if function == "Condition":
        return resolve(conditions[arguments], known, conditions)
    if function == "Fn::GetAtt":
        return known[".".join(arguments)]
    if function == "Fn::If":
        condition, when, otherwise = arguments
        chosen = when if resolve(conditions[condition], known, conditions) else otherwise
        return resolve(chosen, known, conditions)
    if function == "Fn::Join":
        delimiter, items = arguments
        assert isinstance(delimiter, str), "CloudFormation takes only a literal delimiter"
        return delimiter.join(resolve(items, known, conditions))
    if function == "Fn::Split":
        delimiter, text = arguments
        assert isinstance(delimiter, str), "CloudFormation takes only a literal delimiter"
        split: list[str] = resolve(text, known, conditions).split(delimiter)
        return split
    if function == "Fn::Sub":
        template, variables = arguments if isinstance(arguments, list) else (arguments, {})
        assert isinstance(template, str), "CloudFormation takes only a literal template"
        names = known | {name: resolve(v, known, conditions) for name, v in variables.items()}
        return re.sub(r"\$\{([^}!]+)\}", lambda found: str(names[found.group(1)]), template)
    if function == "Fn::Equals":
        left, right = resolve(arguments, known, conditions)
        return left == right
    if function == "Fn::Not":
        [operand] = resolve(arguments, known, conditions)
        return not operand
    if function == "Fn::Or":
        return any(resolve(arguments, known, conditions))
    if function == "Fn::And":
        return all(resolve(arguments, known, conditions))
    raise AssertionError(f"{function} is not resolved here")


def sam_known(partition: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """The template's parameter defaults (a CommaDelimitedList split as CloudFormation splits it) with these
    over them, the pseudo parameters, and the archive bucket's Ref and Arn had the stack created it."""
    template = _sam()
    known: dict[str, Any] = {}
    for name, spec in template["Parameters"].items():
        default = str(spec.get("Default", ""))
        known[name] = default.split(",") if spec["Type"] == "CommaDelimitedList" else default
    known |= parameters
    known |= {"AWS::Partition": partition, "AWS::AccountId": ACCOUNT, "AWS::Region": REGION}
    bucket = known["ArchiveBucket"] or GENERATED_BUCKET  # a name given, or CloudFormation's
    known |= {"ArchiveStore": bucket, "ArchiveStore.Arn": f"arn:{partition}:s3:::{bucket}"}
    known |= {"LogGroup": "/aws/lambda/tdgc", "DeadLetterQueue.Arn": f"arn:{partition}:sqs:{REGION}:{ACCOUNT}:dlq"}
    return known


def sam_policy(name: str, partition: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """The function role's policy `name`, resolved for these parameters."""
    template = _sam()
    role = template["Resources"]["Function"]["Properties"]["Role"]["Fn::GetAtt"][0]
    [document] = [
        p["PolicyDocument"] for p in template["Resources"][role]["Properties"]["Policies"] if p["PolicyName"] == name
    ]
    resolved: dict[str, Any] = resolve(document, sam_known(partition, parameters), template["Conditions"])
    return resolved


def _by_sid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    statements = document["Statement"]
    by_sid = {statement["Sid"]: statement for statement in statements}
    assert len(by_sid) == len(statements), "every statement has a Sid of its own"
    return by_sid


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


# Parameter sets: nothing set, every option, each option on its own (an existing bucket, a created one with or
# without a name and a key, member roles, parameter, usage table, state buckets, AppSpec buckets).
ROLES = ["arn:aws:iam::222222222222:role/tdgc-member", "arn:aws:iam::333333333333:role/tdgc-member"]
STATE = ["tf-state", "tf-state.eu"]
APPSPECS = ["codepipeline-eu-west-1-1", "artifacts.eu"]
CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "apply": {"DryRun": "false"},
    "existing bucket": {"ArchiveBucket": "org-tdgc"},
    "existing bucket, other prefixes, key": {
        "ArchiveBucket": "org-tdgc",
        "ArchivePrefix": "a/b",
        "ReportPrefix": "r",
        "ArchiveKmsKeyArn": KEY,
    },
    "created bucket, generated name": {"CreateArchiveBucket": "true"},
    "created bucket, named, key": {"CreateArchiveBucket": "true", "ArchiveBucket": "org-tdgc", "ArchiveKmsKeyArn": KEY},
    "everything": {
        "DryRun": "false",
        "ArchiveBucket": "org-tdgc",
        "CreateArchiveBucket": "true",
        "ArchiveKmsKeyArn": KEY,
        "MemberRoleArns": ROLES,
        "PolicyParameterName": "/tdgc/policy",
        "UsageTable": "tdgc-usage",
        "TerraformStateBuckets": STATE,
        "CodeDeployAppSpecBuckets": APPSPECS,
    },
    "AppSpec buckets": {"CodeDeployAppSpecBuckets": APPSPECS},
}


def expected_sam_policy(partition: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """tdgc.permissions for these parameters, with the two statements only a deployment has (the Parameter
    Store parameter, the usage table)."""
    known = sam_known(partition, parameters)
    created = known["CreateArchiveBucket"] == "true"
    bucket = known["ArchiveBucket"] or (GENERATED_BUCKET if created else None)
    document = permissions.policy_document(
        bucket,
        [r for r in known["MemberRoleArns"] if r],
        [b for b in known["TerraformStateBuckets"] if b],
        partition=partition,
        account=ACCOUNT,
        apply=known["DryRun"] == "false",
        archive_prefix=known["ArchivePrefix"],
        report_prefix=known["ReportPrefix"],
        kms_key_arn=known["ArchiveKmsKeyArn"] or None,
        appspec_buckets=[b for b in known["CodeDeployAppSpecBuckets"] if b],
    )
    if known["PolicyParameterName"]:
        document["Statement"].append(
            {
                "Sid": "PolicyParameter",
                "Effect": "Allow",
                "Action": list(permissions.POLICY_PARAMETER),
                "Resource": f"arn:{partition}:ssm:{REGION}:{ACCOUNT}:parameter{known['PolicyParameterName']}",
            }
        )
    if known["UsageTable"]:
        document["Statement"].append(
            {
                "Sid": "UsageRead",
                "Effect": "Allow",
                "Action": list(permissions.USAGE_READ),
                "Resource": f"arn:{partition}:dynamodb:{REGION}:{ACCOUNT}:table/{known['UsageTable']}",
            }
        )
    return document


def _with_key(parameters: dict[str, Any], partition: str) -> dict[str, Any]:
    if "ArchiveKmsKeyArn" not in parameters:
        return parameters
    return parameters | {"ArchiveKmsKeyArn": parameters["ArchiveKmsKeyArn"].format(partition=partition)}


def _normalised(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """By Sid, with every Action and Resource a list (YAML spells one item either way)."""
    return {
        sid: {**st, "Action": _as_list(st["Action"]), "Resource": _as_list(st["Resource"])}
        for sid, st in _by_sid(document).items()
    }


@pytest.mark.parametrize("partition", permissions.PARTITIONS)
@pytest.mark.parametrize("case", CASES)
def test_sam_grants_exactly_what_tdgc_permissions_renders(partition: str, case: str) -> None:
    parameters = _with_key(CASES[case], partition)
    granted = sam_policy("tdgc", partition, parameters)
    assert _normalised(granted) == _normalised(expected_sam_policy(partition, parameters))


def test_sam_dry_run_role_allows_no_mutation_and_keeps_the_deny() -> None:
    """DryRun=true (the default): no statement allows a deregistration or a delete, in any policy of the role."""
    for partition, case in itertools.product(permissions.PARTITIONS, ({}, CASES["everything"] | {"DryRun": "true"})):
        parameters = _with_key(case, partition)
        allowed = {
            a
            for name in ("tdgc", "runtime")
            for st in sam_policy(name, partition, parameters)["Statement"]
            if st["Effect"] == "Allow"
            for a in _as_list(st["Action"])
        }
        assert allowed & set(permissions.APPLY) == set() and not {"*", "ecs:*"} & allowed
        assert "KeepProtected" in _by_sid(sam_policy("tdgc", partition, parameters))


def test_sam_every_statement_but_the_reads_is_scoped() -> None:
    """`*` only where the Service Authorization Reference leaves nothing narrower: the reads, the
    deregistration, and the Deny (which refuses by tag, wherever)."""
    granted = _normalised(sam_policy("tdgc", "aws", _with_key(CASES["everything"], "aws")))
    on_star = {sid for sid, st in granted.items() if st["Resource"] == ["*"]}
    assert on_star == {*permissions.READ_ONLY, "ApplyDeregister", "KeepProtected"}


def test_sam_refuses_a_key_without_a_bucket() -> None:
    rule = _sam()["Rules"]["ArchiveKeyHasABucket"]
    [assertion] = [a["Assert"] for a in rule["Assertions"]]
    for parameters, passes in [
        ({}, True),
        ({"ArchiveKmsKeyArn": KEY}, False),
        ({"ArchiveKmsKeyArn": KEY, "ArchiveBucket": "b"}, True),
        ({"ArchiveKmsKeyArn": KEY, "CreateArchiveBucket": "true"}, True),
    ]:
        assert resolve(assertion, sam_known("aws", parameters), {}) is passes, parameters


def test_sam_creates_a_hardened_bucket_only_when_asked_and_keeps_it() -> None:
    resources = _sam()["Resources"]
    bucket, policy = resources["ArchiveStore"], resources["ArchiveStorePolicy"]
    for resource in (bucket, policy):
        assert resource["Condition"] == "CreatesArchiveBucket"
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")
    conditions = _sam()["Conditions"]
    for parameters, created in [({}, False), ({"ArchiveBucket": "b"}, False), ({"CreateArchiveBucket": "true"}, True)]:
        assert resolve(conditions["CreatesArchiveBucket"], sam_known("aws", parameters), conditions) is created


def test_sam_points_the_function_at_the_bucket_and_the_key() -> None:
    template = _sam()
    environment = template["Resources"]["Function"]["Properties"]["Environment"]["Variables"]
    for parameters, bucket in [
        ({"ArchiveBucket": "org"}, "org"),
        ({"CreateArchiveBucket": "true"}, GENERATED_BUCKET),
        ({"CreateArchiveBucket": "true", "ArchiveBucket": "org"}, "org"),
    ]:
        parameters = parameters | {"ArchiveKmsKeyArn": KEY.format(partition="aws")}
        resolved = resolve(environment, sam_known("aws", parameters), template["Conditions"])
        assert resolved["TDGC_ARCHIVE"] == f"s3://{bucket}/tdgc/archive"
        assert resolved["TDGC_REPORT"] == f"s3://{bucket}/tdgc/reports/"
        assert resolved["TDGC_ARCHIVE_KMS_KEY"] == KEY.format(partition="aws")
    nothing = resolve(environment, sam_known("aws", {}), template["Conditions"])
    assert set(nothing) == {"TDGC_DRY_RUN"}


@pytest.mark.parametrize("partition", permissions.PARTITIONS)
def test_sam_offers_the_orchestrator_exactly_the_register_policy_on_the_same_table(partition: str) -> None:
    template = _sam()
    policy = template["Resources"]["RegisterPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy" and policy["Condition"] == "HasUsageTable"
    assert "Roles" not in policy["Properties"]  # for the orchestrator's role, never the function's
    known = sam_known(partition, {"UsageTable": "tdgc-usage"})
    resolved = resolve(policy["Properties"]["PolicyDocument"], known, template["Conditions"])
    table = f"arn:{partition}:dynamodb:{REGION}:{ACCOUNT}:table/tdgc-usage"
    expected = permissions.register_policy_document(table, partition=partition, account=ACCOUNT)
    assert _normalised(resolved) == _normalised(expected)
    table_resource = template["Resources"]["UsageStoreTable"]
    assert (table_resource["Condition"], table_resource["DeletionPolicy"], table_resource["UpdateReplacePolicy"]) == (
        "CreatesUsageTable",
        "Retain",
        "Retain",
    )
    assert table_resource["Properties"]["TableName"] == {"Ref": "UsageTable"}


def _terraform_permissions() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((TERRAFORM / "permissions.json").read_text())
    return loaded


def test_terraform_module_carries_exactly_the_permissions() -> None:
    """permissions.json is tdgc.permissions.terraform_json(), as `python -m tdgc.permissions --terraform-json`
    prints it."""
    assert (TERRAFORM / "permissions.json").read_text() == json.dumps(permissions.terraform_json(), indent=2) + "\n"
    carried = _terraform_permissions()
    assert carried["read_only"] == {sid: list(actions) for sid, actions in permissions.READ_ONLY.items()}
    assert carried["apply_deregister"] == list(permissions.DEREGISTER)
    assert carried["apply_delete"] == list(permissions.DELETE)
    assert carried["protect_tag"] == {"key": "tdgc:keep", "value": "true"}


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
    spelled = {
        *permissions.actions(),
        *permissions.REGISTER,
        *permissions.REGISTER_TAG,
        *permissions.REGISTER_READ,
        *permissions.USAGE_WRITE,
    } - set(permissions.ASSUME)
    assert sorted(action for action in spelled if f'"{action}"' in main) == []
    # The mutations only when the module applies, the Deny always.
    assert re.search(r"var\.dry_run \? \[\] : \[\s*\{ Sid = \"ApplyDeregister\"", built)
    assert 'Sid       = "KeepProtected", Effect = "Deny"' in built


def test_sam_and_terraform_deploy_the_runtime_the_zip_is_built_for() -> None:
    function = _sam()["Resources"]["Function"]["Properties"]
    assert (function["Runtime"], function["Architectures"]) == (package.RUNTIME, [package.ARCHITECTURE])
    main = (TERRAFORM / "main.tf").read_text()
    assert re.findall(r'^\s*runtime\s*=\s*"([^"]+)"', main, re.MULTILINE) == [package.RUNTIME]
    assert re.findall(r'^\s*architectures\s*=\s*\["([^"]+)"\]', main, re.MULTILINE) == [package.ARCHITECTURE]
