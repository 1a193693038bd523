"""deploy/sam/template.yaml: cfn-lint finds nothing, SAM translates it, and the stack it makes in moto's
CloudFormation is the scheduled function the template promises: runtime, schedule, retries, dead letters,
and an IAM role holding exactly tdgc.permissions.

moto's CloudFormation does not expand the Serverless transform (docs/design.md §7), so the template is translated
with aws-sam-translator first, as CloudFormation does, after the CodeUri is pointed at S3, as `sam deploy`
does. The code uploaded is a small stand-in zip: moto stores the code and never runs it; what the real zip
holds is tests/unit/test_package.py's business.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import re
import zipfile
from collections.abc import Iterator
from hashlib import sha256
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.api import lint_file
from moto import mock_aws
from moto.awslambda.models import LambdaFunction, lambda_backends
from moto.cloudformation import parsing
from moto.cloudwatch.models import cloudwatch_backends
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import Table
from moto.iam.models import Role
from moto.s3.models import FakeBucket
from moto.scheduler.models import scheduler_backends
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

from tdgc import lambda_handler, package
from tdgc.collect.run import MAX_PARALLEL
from tests.deploy.checks import (
    APPSPEC_BUCKETS,
    BUCKET,
    CRON,
    EXISTING_TABLE,
    EXTERNAL_ID,
    MEMBER_ROLES,
    PARALLEL,
    PARAMETER,
    REGIONS,
    STATE_BUCKETS,
    USAGE_TABLE,
    check_alarms,
    check_archive_bucket,
    check_defaults,
    check_deployment,
    check_dry_run_role,
    check_every_option,
    check_existing_table,
    check_register_policy,
    check_usage_table,
    expected_tdgc_statements,
    put_policy_parameter,
    statements,
    table_arn,
)

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "sam" / "template.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's
CODE_BUCKET = "tdgc-deploy-artifacts"


def test_cfn_lint_finds_nothing_in_the_template() -> None:
    assert [str(match) for match in lint_file(TEMPLATE)] == []


def _translate(code_uri: str) -> dict[str, Any]:
    template = yaml_parse(TEMPLATE.read_text())
    for resource in template["Resources"].values():  # the function, and organisation mode's two others
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = code_uri
    session = boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    translated: dict[str, Any] = Translator(None, Parser(), boto_session=session).translate(template, {})
    return translated


def test_cfn_lint_finds_nothing_in_the_translation(tmp_path: Path) -> None:
    """The resources SAM generates (schedule, invoke config, scheduler role) are linted too."""
    translated = tmp_path / "translated.json"
    translated.write_text(json.dumps(_translate(f"s3://{CODE_BUCKET}/tdgc-lambda.zip")))
    assert [str(match) for match in lint_file(translated)] == []


# --- moto's CloudFormation, with what it lacks filled in from moto's own service backends -------------------
#
# moto 5.2's CloudFormation has no AWS::Scheduler::Schedule, AWS::Lambda::EventInvokeConfig nor
# AWS::CloudWatch::Alarm (PutMetricAlarm's parameters, handed to moto's CloudWatch backend), and hands
# AWS::Lambda::Function only some properties (no Architectures). For these resource types the CloudFormation
# properties are the service API's parameters under the same names, so the resolved properties are handed
# to moto's backend for that API, as CloudFormation hands them to the service. AWS::DynamoDB::Table is
# created without its TimeToLiveSpecification and PointInTimeRecoverySpecification, which are likewise the
# parameters of UpdateTimeToLive and UpdateContinuousBackups. AWS::S3::Bucket is created with its
# BucketEncryption only (and that without BucketKeyEnabled): its encryption, public access block, ownership
# controls, versioning and lifecycle are handed to S3's Put* calls, translated from CloudFormation's shape
# where it differs (encryption, lifecycle); moto has no AWS::S3::BucketPolicy, whose document is
# PutBucketPolicy's. Two more gaps: a list item that resolves to AWS::NoValue stays as null, and IAM policy
# documents come back as a Python repr.
# Nothing else is changed: Ref, GetAtt, Sub, If and Conditions are moto's own.


def _create_function(
    cls: type[LambdaFunction],
    resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> LambdaFunction:
    spec = {"FunctionName": resource_name, **cloudformation_json["Properties"]}
    spec["Tags"] = {tag["Key"]: tag["Value"] for tag in spec.get("Tags", [])}  # a list in CFN, a map in the API
    return lambda_backends[account_id][region_name].create_function(spec)


class _Created:
    """What moto's stack keeps of a resource it did not model itself."""

    def __init__(self, physical_resource_id: str) -> None:
        self.physical_resource_id = physical_resource_id

    def is_created(self) -> bool:
        return True

    def delete(self, account_id: str, region_name: str) -> None:
        """Deleting the stack forgets it (what CloudFormation would delete is not what is tested)."""


class _EventInvokeConfig:
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::EventInvokeConfig"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        properties = dict(cloudformation_json["Properties"])
        function = properties.pop("FunctionName")
        properties.pop("Qualifier", None)  # moto keeps one config per function
        lambda_backends[account_id][region_name].put_function_event_invoke_config(function, properties)
        return _Created(f"{function}:$LATEST")


class _Alarm:
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        p = cloudformation_json["Properties"]
        alarm = cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=p.get("AlarmName", resource_name),
            namespace=p["Namespace"],
            metric_name=p["MetricName"],
            comparison_operator=p["ComparisonOperator"],
            evaluation_periods=int(p["EvaluationPeriods"]),
            period=int(p["Period"]),
            threshold=float(p["Threshold"]),  # a parameter's Ref arrives as text
            statistic=p["Statistic"],
            description=p.get("AlarmDescription", ""),
            dimensions=p.get("Dimensions", []),
            alarm_actions=p.get("AlarmActions", []),
            ok_actions=p.get("OKActions", []),
            treat_missing_data=p.get("TreatMissingData"),
        )
        return _Created(alarm.name)


class _Schedule:
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Scheduler::Schedule"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        p = cloudformation_json["Properties"]
        schedule = scheduler_backends[account_id][region_name].create_schedule(
            name=p.get("Name", resource_name),
            group_name=p.get("GroupName"),
            description=p.get("Description"),
            schedule_expression=p["ScheduleExpression"],
            flexible_time_window=p["FlexibleTimeWindow"],
            schedule_expression_timezone=p.get("ScheduleExpressionTimezone"),
            start_date=p.get("StartDate"),
            end_date=p.get("EndDate"),
            state=p.get("State"),
            kms_key_arn=p.get("KmsKeyArn"),
            target=p["Target"],
            action_after_completion=None,
        )
        return _Created(schedule.name)


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """An AWS::S3::Bucket lifecycle Rule as PutBucketLifecycleConfiguration takes it (the properties the template
    uses; any other fails here rather than being dropped)."""
    known = {
        "Id",
        "Status",
        "Prefix",
        "ExpirationInDays",
        "NoncurrentVersionExpiration",
        "AbortIncompleteMultipartUpload",
    }
    assert set(rule) <= known, f"not translated: {set(rule) - known}"
    api: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "ExpirationInDays" in rule:
        api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        days = int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        api["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return api


def _bucket_settings_applied(original: Any) -> Any:
    """What moto's CloudFormation leaves out of a bucket, handed to S3 as CloudFormation hands it."""

    def create(
        cls: Any,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        bucket = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        properties = dict(cloudformation_json["Properties"])
        s3 = boto3.client("s3", region_name=region_name)
        if "BucketEncryption" in properties:
            rules = [
                {
                    "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                    **({"BucketKeyEnabled": rule["BucketKeyEnabled"]} if "BucketKeyEnabled" in rule else {}),
                }
                for rule in properties.pop("BucketEncryption")["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=bucket.name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "PublicAccessBlockConfiguration" in properties:
            block = properties.pop("PublicAccessBlockConfiguration")
            s3.put_public_access_block(Bucket=bucket.name, PublicAccessBlockConfiguration=block)
        if "OwnershipControls" in properties:
            s3.put_bucket_ownership_controls(Bucket=bucket.name, OwnershipControls=properties.pop("OwnershipControls"))
        if "VersioningConfiguration" in properties:
            versioning = properties.pop("VersioningConfiguration")
            s3.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration=versioning)
        if "LifecycleConfiguration" in properties:
            rules = [_lifecycle_rule(rule) for rule in properties.pop("LifecycleConfiguration")["Rules"]]
            s3.put_bucket_lifecycle_configuration(Bucket=bucket.name, LifecycleConfiguration={"Rules": rules})
        assert set(properties) <= {"BucketName", "Tags"}, f"not handed to S3: {set(properties)}"
        return bucket

    return classmethod(create)


class _BucketPolicy:
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::BucketPolicy"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        properties = cloudformation_json["Properties"]
        s3 = boto3.client("s3", region_name=region_name)
        s3.put_bucket_policy(Bucket=properties["Bucket"], Policy=json.dumps(properties["PolicyDocument"]))
        return _Created(properties["Bucket"])


def _table_settings_applied(original: Any) -> Any:
    """What moto's CloudFormation leaves out of a table, handed to the backend's UpdateTimeToLive and
    UpdateContinuousBackups as CloudFormation does once the table is created."""

    def create(
        cls: Any,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        table = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        properties = cloudformation_json["Properties"]
        backend = dynamodb_backends[account_id][region_name]
        if "TimeToLiveSpecification" in properties:
            backend.update_time_to_live(table.name, properties["TimeToLiveSpecification"])
        if "PointInTimeRecoverySpecification" in properties:
            backend.update_continuous_backups(table.name, properties["PointInTimeRecoverySpecification"])
        return table

    return classmethod(create)


def _documents_as_json(original: Any) -> Any:
    """CloudFormation sends IAM its policy documents as JSON; moto keeps them as dicts and answers their repr."""

    def create(cls: Any, resource_name: str, cloudformation_json: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        properties = cloudformation_json["Properties"]
        properties["AssumeRolePolicyDocument"] = json.dumps(properties["AssumeRolePolicyDocument"])
        for policy in properties.get("Policies", []):
            policy["PolicyDocument"] = json.dumps(policy["PolicyDocument"])
        return original(resource_name, cloudformation_json, *args, **kwargs)

    return classmethod(create)


def _no_value_dropped(original: Any) -> Any:
    """CloudFormation drops a list item that resolves to AWS::NoValue (a conditional IAM statement); moto keeps
    it as null."""

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        cleaned = original(resource_json, resources_map)
        if isinstance(resource_json, list) and isinstance(cleaned, list):
            return [item for item in cleaned if item is not None]
        return cleaned

    return clean_json


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        monkeypatch.setattr(LambdaFunction, "create_from_cloudformation_json", classmethod(_create_function))
        monkeypatch.setitem(parsing.get_model_map(), _Schedule.cloudformation_type(), _Schedule)
        monkeypatch.setitem(parsing.get_model_map(), _Alarm.cloudformation_type(), _Alarm)
        monkeypatch.setitem(parsing.get_model_map(), _EventInvokeConfig.cloudformation_type(), _EventInvokeConfig)
        monkeypatch.setitem(parsing.get_model_map(), _BucketPolicy.cloudformation_type(), _BucketPolicy)
        create_bucket = FakeBucket.create_from_cloudformation_json
        monkeypatch.setattr(FakeBucket, "create_from_cloudformation_json", _bucket_settings_applied(create_bucket))
        monkeypatch.setattr(parsing, "clean_json", _no_value_dropped(parsing.clean_json))
        create_role = Role.create_from_cloudformation_json
        monkeypatch.setattr(Role, "create_from_cloudformation_json", _documents_as_json(create_role))
        create_table = Table.create_from_cloudformation_json
        monkeypatch.setattr(Table, "create_from_cloudformation_json", _table_settings_applied(create_table))
        yield


def _stand_in_code() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("tdgc/lambda_handler.py"), "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


def _deploy(stack: str, parameters: dict[str, str]) -> dict[str, Any]:
    """Upload the code, translate, create the stack; returns {logical id: physical id}."""
    code = _stand_in_code()
    s3 = boto3.client("s3", region_name=REGION)
    if CODE_BUCKET not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=CODE_BUCKET)
    s3.put_object(Bucket=CODE_BUCKET, Key=f"{stack}.zip", Body=code)
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(_translate(f"s3://{CODE_BUCKET}/{stack}.zip")),
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    assert cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    resources = cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
    # moto lists a resource that its condition left out as an entry with no ids: not created, so not listed.
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources if "LogicalResourceId" in r}


def _client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def test_defaults_deploy_a_dry_run_hourly_with_the_read_and_apply_permissions_only(aws: None) -> None:
    ids = _deploy("tdgc", {})
    deployed = check_deployment(_client, ids["Function"], ids["LogGroup"])
    check_defaults(deployed)
    assert deployed.function["CodeSha256"] == base64.b64encode(sha256(_stand_in_code()).digest()).decode()
    queue = _client("sqs").get_queue_attributes(QueueUrl=ids["DeadLetterQueue"], AttributeNames=["QueueArn"])
    assert deployed.queue_arn == queue["Attributes"]["QueueArn"]
    assert "UsageStoreTable" not in ids and "RegisterPolicy" not in ids  # no usage store unless asked
    assert _client("dynamodb").list_tables()["TableNames"] == []
    check_alarms(_client, ids["Function"], 50_000, None)  # alarms that only change state


def test_the_alarms_take_a_threshold_and_notify_a_topic(aws: None) -> None:
    topic = _client("sns").create_topic(Name="tdgc-alarms")["TopicArn"]
    ids = _deploy("tdgc-alarms", {"QuotaHeadroomAlarmThreshold": "20000", "AlarmTopicArn": topic})
    check_alarms(_client, ids["Function"], 20_000, topic)
    outputs = _outputs("tdgc-alarms")
    assert (outputs["QuotaHeadroomAlarmName"], outputs["FailuresAlarmName"]) == (
        ids["QuotaHeadroomAlarm"],
        ids["FailuresAlarm"],
    )


def test_every_option_reaches_the_environment_and_scopes_the_permissions(aws: None) -> None:
    key = _client("kms").create_key(Description="tdgc archives")["KeyMetadata"]["Arn"]
    parameters = {
        "DryRun": "false",
        "ScheduleExpression": CRON,
        "ArchiveBucket": BUCKET,
        "CreateArchiveBucket": "true",
        "ArchiveKmsKeyArn": key,
        "PolicyParameterName": PARAMETER,
        "Regions": ",".join(REGIONS),
        "Parallel": str(PARALLEL),
        "MemberRoleArns": ",".join(MEMBER_ROLES),
        "ExternalId": EXTERNAL_ID,
        "UsageTable": USAGE_TABLE,
        "CreateUsageTable": "true",
        "TerraformStateBuckets": ",".join(STATE_BUCKETS),
        "CodeDeployAppSpecBuckets": ",".join(APPSPEC_BUCKETS),
    }
    ids = _deploy("tdgc-org", parameters)
    put_policy_parameter(_client)
    check_every_option(check_deployment(_client, ids["Function"], ids["LogGroup"]), REGION, ACCOUNT, key)
    assert ids["ArchiveStore"] == BUCKET
    check_archive_bucket(_client, BUCKET, key)
    assert ids["UsageStoreTable"] == USAGE_TABLE
    check_usage_table(_client, USAGE_TABLE, REGION, ACCOUNT)
    check_register_policy(_client, ids["RegisterPolicy"], table_arn(REGION, ACCOUNT, USAGE_TABLE))
    outputs = _outputs("tdgc-org")
    assert (outputs["UsageTableName"], outputs["UsageTableArn"]) == (
        USAGE_TABLE,
        table_arn(REGION, ACCOUNT, USAGE_TABLE),
    )
    assert outputs["RegisterPolicyArn"] == ids["RegisterPolicy"]
    assert outputs["ArchiveBucketName"] == BUCKET


def test_a_created_bucket_gets_a_name_of_its_own_and_outlives_the_stack(aws: None) -> None:
    """CreateArchiveBucket alone: a generated name, SSE-S3, the retention asked for; the function's environment
    and role point at it; deleting the stack leaves the bucket and its TLS-only policy."""
    ids = _deploy("tdgc-bucket", {"CreateArchiveBucket": "true", "ArchiveRetentionDays": "30"})
    bucket = ids["ArchiveStore"]
    assert bucket.startswith("tdgc-bucket-archivestore-")
    deployed = check_deployment(_client, ids["Function"], ids["LogGroup"])
    environment = deployed.function["Environment"]["Variables"]
    assert environment == {
        "TDGC_DRY_RUN": "true",
        "TDGC_ARCHIVE": f"s3://{bucket}/tdgc/archive",
        "TDGC_REPORT": f"s3://{bucket}/tdgc/reports/",
    }
    assert statements(deployed.tdgc_policy) == expected_tdgc_statements(bucket)
    check_dry_run_role(deployed)
    check_archive_bucket(_client, bucket, None, retention_days=30)
    assert _outputs("tdgc-bucket")["ArchiveBucketName"] == bucket
    _client("cloudformation").delete_stack(StackName="tdgc-bucket")
    with pytest.raises(_client("lambda").exceptions.ResourceNotFoundException):
        _client("lambda").get_function(FunctionName=ids["Function"])  # the stack is gone...
    check_archive_bucket(_client, bucket, None, retention_days=30)  # ...its bucket is not, nor the bucket's policy


def test_an_existing_usage_table_is_granted_and_left_alone(aws: None) -> None:
    ids = _deploy("tdgc-existing", {"UsageTable": EXISTING_TABLE})
    check_existing_table(check_deployment(_client, ids["Function"], ids["LogGroup"]), REGION, ACCOUNT)
    assert "UsageStoreTable" not in ids
    assert _client("dynamodb").list_tables()["TableNames"] == []
    check_register_policy(_client, ids["RegisterPolicy"], table_arn(REGION, ACCOUNT, EXISTING_TABLE))
    assert _outputs("tdgc-existing")["UsageTableArn"] == table_arn(REGION, ACCOUNT, EXISTING_TABLE)


def _outputs(stack: str) -> dict[str, str]:
    described = _client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}


@pytest.mark.parametrize(
    ("parameter", "value", "variable"),
    [
        ("PolicyText", 'defaults = { keep_last = 10, delete_after = "90 days" }', "TDGC_POLICY"),
        ("PolicyFile", package.POLICY_NAME, "TDGC_POLICY_FILE"),
    ],
)
def test_a_policy_given_inline_or_packaged_reaches_the_environment(
    aws: None, parameter: str, value: str, variable: str
) -> None:
    ids = _deploy("tdgc-policy", {parameter: value})
    environment = _client("lambda").get_function(FunctionName=ids["Function"])["Configuration"]["Environment"]
    assert environment["Variables"] == {"TDGC_DRY_RUN": "true", variable: value}


def _evaluate(expression: Any, parameters: dict[str, str]) -> Any:
    """A rule's assertion, as CloudFormation evaluates it before creating anything (moto does not)."""
    if not isinstance(expression, dict):
        return expression
    [(function, arguments)] = expression.items()
    if function == "Ref":
        return parameters[arguments]
    values = [_evaluate(argument, parameters) for argument in arguments]
    operations = {
        "Fn::Equals": lambda: values[0] == values[1],
        "Fn::Or": lambda: any(values),
        "Fn::And": lambda: all(values),
        "Fn::Not": lambda: not values[0],
    }
    return operations[function]()


def _rules() -> tuple[dict[str, str], list[Any]]:
    """The parameters' defaults, and every rule's assertions."""
    template = yaml_parse(TEMPLATE.read_text())
    defaults = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    return defaults, [a["Assert"] for rule in template["Rules"].values() for a in rule["Assertions"]]


def test_two_policy_sources_are_refused_at_deploy_time() -> None:
    """The handler refuses to run with two policy sources; the template's rules refuse to deploy them."""
    defaults, assertions = _rules()
    sources = {"PolicyText": "defaults = { keep_last = 3 }", "PolicyParameterName": "/tdgc/policy"}
    sources["PolicyFile"] = package.POLICY_NAME
    for count in range(len(sources) + 1):
        for chosen in itertools.combinations(sources, count):
            parameters = defaults | {name: sources[name] for name in chosen}
            passes = all(_evaluate(assertion, parameters) for assertion in assertions)
            assert passes == (count <= 1), chosen


def test_parallel_takes_what_the_handler_takes() -> None:
    """CloudFormation refuses a Parallel the handler would refuse at every run (TDGC_PARALLEL: a whole number,
    1 to MAX_PARALLEL, written plainly); the default sets no variable, so the handler's own default applies."""
    spec = yaml_parse(TEMPLATE.read_text())["Parameters"]["Parallel"]
    assert (spec["Type"], spec["Default"]) == ("String", "1")
    candidates = [str(n) for n in range(-1, 200)] + ["01", "1.0", "2.5", "1e1", " 8", "8 ", "", "٨"]
    accepted = [value for value in candidates if re.fullmatch(spec["AllowedPattern"], value)]
    assert accepted == [str(n) for n in range(1, MAX_PARALLEL + 1)]
    taken = [lambda_handler.job_from({}, {"TDGC_PARALLEL": value}, None).parallel for value in accepted]
    assert taken == list(range(1, MAX_PARALLEL + 1))


@pytest.mark.parametrize(
    ("table", "create", "passes"),
    [("", "false", True), (USAGE_TABLE, "false", True), (USAGE_TABLE, "true", True), ("", "true", False)],
)
def test_a_usage_table_to_create_needs_its_name(table: str, create: str, passes: bool) -> None:
    defaults, assertions = _rules()
    parameters = defaults | {"UsageTable": table, "CreateUsageTable": create}
    assert all(_evaluate(assertion, parameters) for assertion in assertions) == passes
