"""deploy/terraform: formatted, valid, and applied against moto's server it makes the scheduled function the
SAM template makes, and with organisation_mode its state machine (tests/deploy/checks.py holds both to the same
assertions).

Terraform runs offline: the AWS provider comes from a filesystem mirror, through a CLI configuration this
test writes in a temporary folder (never ~/.terraformrc); state and working files stay there too. The test
is skipped where there is no terraform or no mirror with the AWS provider.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core.responses import ActionResult
from moto.stepfunctions.responses import StepFunctionResponse

from tdgc.collect.run import MAX_PARALLEL
from tdgc.local.simulator import serve
from tests.deploy.checks import (
    APPSPEC_BUCKETS,
    BUCKET,
    CRON,
    EXISTING_TABLE,
    EXTERNAL_ID,
    HANDLER,
    MAX_CONCURRENCY,
    MEMBER_ROLE_NAME,
    MEMBER_ROLES,
    MERGE_HANDLER,
    ORGANIZATIONAL_UNITS,
    PARALLEL,
    PARAMETER,
    REGIONS,
    STATE_BUCKETS,
    TARGETS_HANDLER,
    USAGE_TABLE,
    check_alarms,
    check_archive_bucket,
    check_defaults,
    check_deployment,
    check_dry_run_role,
    check_every_option,
    check_existing_table,
    check_organisation,
    check_register_policy,
    check_usage_table,
    expected_tdgc_statements,
    put_policy_parameter,
    statements,
    table_arn,
)

MODULE = Path(__file__).resolve().parents[2] / "deploy" / "terraform"
ALARM_TOPIC = "arn:aws:sns:us-east-1:123456789012:tdgc-alarms"
ORG_BUCKET = "tdgc-org-reports"  # an existing bucket, named: organisation mode's reports meet there
TARGET_TIME_BUDGET = 600
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's
# Where provider mirrors usually live (Terraform's implied local mirror directories, and this project's).
MIRRORS = (
    os.environ.get("TDGC_TF_PLUGIN_MIRROR", ""),
    "/opt/tf-plugins",
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
)


def _mirror() -> Path | None:
    for candidate in MIRRORS:
        if candidate and (Path(candidate).expanduser() / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return Path(candidate).expanduser()
    return None


TERRAFORM = shutil.which("terraform")
MIRROR = _mirror()
pytestmark = pytest.mark.skipif(
    TERRAFORM is None or MIRROR is None,
    reason="needs terraform on PATH and the AWS provider in a filesystem mirror "
    "(registry.terraform.io/hashicorp/aws under /opt/tf-plugins or $TDGC_TF_PLUGIN_MIRROR)",
)


@pytest.fixture(scope="module")
def terraform(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Run terraform offline in a folder of its own: returns run(folder, *args)."""
    home = tmp_path_factory.mktemp("terraform-home")
    config = home / "terraform.rc"
    config.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{MIRROR}"\n    include = ["registry.terraform.io/*/*"]\n  }}\n'
        '  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n'
        "}\n"
    )
    environment = {name: value for name, value in os.environ.items() if not name.startswith("TF_")}
    environment |= {
        "HOME": str(home),
        "TF_CLI_CONFIG_FILE": str(config),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",  # no version check over the network
    }

    def run(folder: Path, *args: str, succeeds: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(TERRAFORM), *args, "-no-color"], cwd=folder, env=environment, capture_output=True, text=True
        )
        assert (done.returncode == 0) == succeeds, f"terraform {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done

    return run


def test_module_is_formatted(terraform: Any) -> None:
    terraform(MODULE, "fmt", "-check", "-diff", "-recursive")


def _copy_module(into: Path) -> Path:
    """The module as a person would copy it: deploy/terraform alone, nothing else of the repository."""
    copied = into / "tdgc"
    shutil.copytree(MODULE, copied, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    return copied


def test_module_validates(terraform: Any, tmp_path: Path) -> None:
    module = _copy_module(tmp_path)
    terraform(module, "init", "-backend=false")
    terraform(module, "validate")


PROVIDER = """
provider "aws" {{
  region                      = "{region}"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true
  endpoints {{
    cloudwatch = "{endpoint}"
    dynamodb   = "{endpoint}"
    iam        = "{endpoint}"
    kms        = "{endpoint}"
    lambda     = "{endpoint}"
    logs       = "{endpoint}"
    s3         = "{endpoint}"
    scheduler  = "{endpoint}"
    sfn        = "{endpoint}"
    sqs        = "{endpoint}"
    sts        = "{endpoint}"
  }}
}}
"""
MODULES = """
module "minimal" {{
  source       = "./tdgc"
  name         = "tdgc-minimal"
  package_path = "${{path.root}}/code.zip"
}}

module "full" {{
  source                = "./tdgc"
  name                  = "tdgc-full"
  package_path          = "${{path.root}}/code.zip"
  dry_run               = false
  schedule_expression   = {cron}
  archive_bucket        = {bucket}
  policy_parameter_name = {parameter}
  regions               = {regions}
  parallel              = {parallel}
  member_role_arns      = {roles}
  external_id           = {external_id}
  usage_table           = {usage_table}
  create_usage_table    = true
  create_archive_bucket = true
  archive_kms_key_arn   = {key}

  terraform_state_buckets    = {state_buckets}
  codedeploy_appspec_buckets = {appspec_buckets}

  quota_headroom_alarm_threshold = 20000
  alarm_actions                  = [{topic}]
}}

module "archive" {{
  source                 = "./tdgc"
  name                   = "tdgc-archive"
  package_path           = "${{path.root}}/code.zip"
  create_archive_bucket  = true
  archive_retention_days = 30
}}

module "existing" {{
  source       = "./tdgc"
  name         = "tdgc-existing"
  package_path = "${{path.root}}/code.zip"
  usage_table  = {existing_table}
}}

module "organisation" {{
  source               = "./tdgc"
  name                 = "tdgc-org"
  package_path         = "${{path.root}}/code.zip"
  organisation_mode    = true
  archive_bucket       = {org_bucket}
  archive_kms_key_arn  = {key}
  member_role_name     = {member_role_name}
  regions              = {regions}
  organizational_units = {organizational_units}
  max_concurrency      = {max_concurrency}
  target_time_budget   = {target_time_budget}
}}

output "full" {{
  value = module.full
}}

output "existing" {{
  value = module.existing
}}

output "minimal" {{
  value = module.minimal
}}

output "archive" {{
  value = module.archive
}}

output "organisation" {{
  value = module.organisation
}}
"""


# moto 5.2's Step Functions lacks two calls the provider makes for aws_sfn_state_machine: ValidateStateMachineDefinition
# at plan time (answered 500, which the provider retries for minutes) and ListStateMachineVersions after
# creating it. They are filled in here, on moto's own responses class and backend: the server runs in this
# process. The validation is only that the definition is JSON (moto's ASL parser refuses an integer
# ToleratedFailurePercentage, which AWS takes); check_organisation checks the definition itself.


def _validate_state_machine_definition(self: StepFunctionResponse) -> ActionResult:
    try:
        json.loads(self._get_param("definition"))
    except ValueError as exc:
        diagnostic = {"severity": "ERROR", "code": "INVALID_JSON_DESCRIPTION", "message": str(exc)}
        return ActionResult({"result": "FAIL", "diagnostics": [diagnostic]})
    return ActionResult({"result": "OK", "diagnostics": []})


def _list_state_machine_versions(self: StepFunctionResponse) -> ActionResult:
    machine = self.stepfunction_backend.describe_state_machine(self._get_param("stateMachineArn"))
    newest_first = sorted(machine.versions.values(), key=lambda version: version.version, reverse=True)
    versions = [{"stateMachineVersionArn": v.arn, "creationDate": v.creation_date} for v in newest_first]
    return ActionResult({"stateMachineVersions": versions})


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        for name, call in {
            "validate_state_machine_definition": _validate_state_machine_definition,
            "list_state_machine_versions": _list_state_machine_versions,
        }.items():
            if not hasattr(StepFunctionResponse, name):  # a moto that has it answers for itself
                patch.setattr(StepFunctionResponse, name, call, raising=False)
        with serve() as url:
            yield url


@pytest.fixture(scope="module")
def applied(terraform: Any, endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, dict[str, Any]]:
    """The module applied five times over: with nothing optional, with everything (an archive bucket it makes,
    under a KMS key), with an existing usage table, with a bucket it makes and names itself, and in
    organisation mode (an existing bucket, the key); returns the endpoint, the key's ARN and the modules'
    outputs."""
    root = tmp_path_factory.mktemp("root")
    _copy_module(root)
    # moto stores the code and never runs it: a stand-in is enough (the real zip is test_package.py's business).
    with zipfile.ZipFile(root / "code.zip", "w") as archive:
        archive.writestr(zipfile.ZipInfo("tdgc/lambda_handler.py"), "def handler(event, context):\n    return None\n")
    # JSON's strings and lists are HCL's too.
    options = {"cron": CRON, "bucket": BUCKET, "parameter": PARAMETER, "regions": REGIONS, "roles": MEMBER_ROLES}
    options |= {"external_id": EXTERNAL_ID, "usage_table": USAGE_TABLE, "existing_table": EXISTING_TABLE}
    options |= {"state_buckets": STATE_BUCKETS, "appspec_buckets": APPSPEC_BUCKETS}
    options |= {"topic": ALARM_TOPIC, "parallel": PARALLEL}
    options |= {"org_bucket": ORG_BUCKET, "member_role_name": MEMBER_ROLE_NAME}
    options |= {"organizational_units": ORGANIZATIONAL_UNITS, "max_concurrency": MAX_CONCURRENCY}
    options |= {"target_time_budget": TARGET_TIME_BUDGET}
    key = _client(endpoint)("kms").create_key(Description="tdgc archives")["KeyMetadata"]["Arn"]
    options |= {"key": key}
    hcl = {name: json.dumps(value) for name, value in options.items()}
    (root / "main.tf").write_text((PROVIDER + MODULES).format(region=REGION, endpoint=endpoint, **hcl))
    terraform(root, "init")
    terraform(root, "apply", "-auto-approve")
    outputs = json.loads(terraform(root, "output", "-json").stdout)
    return endpoint, key, {name: output["value"] for name, output in outputs.items()}


@pytest.mark.slow
def test_contradictory_inputs_are_refused_at_plan_time(
    terraform: Any, endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The handler refuses to run with two policy sources; the module refuses to plan them, a table to create
    without its name, and more targets at once than the handler takes."""
    root = tmp_path_factory.mktemp("refused")
    _copy_module(root)
    wrong = """
module "two_policies" {{
  source                = "./tdgc"
  package_path          = "${{path.root}}/code.zip"
  policy_text           = "defaults = {{ keep_last = 3 }}"
  policy_parameter_name = "/tdgc/policy"
}}

module "nameless_table" {{
  source             = "./tdgc"
  name               = "tdgc-nameless"
  package_path       = "${{path.root}}/code.zip"
  create_usage_table = true
}}

module "bucketless_key" {{
  source              = "./tdgc"
  name                = "tdgc-bucketless"
  package_path        = "${{path.root}}/code.zip"
  archive_kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
}}
"""
    (root / "main.tf").write_text((PROVIDER + wrong).format(region=REGION, endpoint=endpoint))
    (root / "code.zip").write_bytes(b"")
    terraform(root, "init")
    refused = terraform(root, "plan", succeeds=False)
    assert "Set one of policy_text, policy_parameter_name and policy_file" in refused.stderr
    assert "create_usage_table needs usage_table" in refused.stderr
    assert "archive_kms_key_arn needs a bucket" in refused.stderr
    # A variable's validation fails the plan before any precondition is looked at: a plan of its own.
    for parallel in (0, MAX_PARALLEL + 1, 2.5):
        module = f'module "parallel" {{\n  source = "./tdgc"\n  package_path = "x.zip"\n  parallel = {parallel}\n}}\n'
        (root / "main.tf").write_text(PROVIDER.format(region=REGION, endpoint=endpoint) + module)
        if parallel == 0:
            terraform(root, "init")  # a module call of a new name
        refused = terraform(root, "plan", succeeds=False)
        assert f"parallel must be a whole number from 1 to {MAX_PARALLEL}." in refused.stderr, parallel


def _client(endpoint: str) -> Any:
    def client(service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return client


@pytest.mark.slow
def test_defaults_deploy_a_dry_run_hourly_whose_role_cannot_change_anything(
    applied: tuple[str, str, dict[str, Any]],
) -> None:
    endpoint, _, outputs = applied
    check_defaults(check_deployment(_client(endpoint), "tdgc-minimal", "/aws/lambda/tdgc-minimal"))
    check_alarms(_client(endpoint), "tdgc-minimal", 50_000, None)
    minimal = outputs["minimal"]
    assert (minimal["usage_table_name"], minimal["usage_table_arn"], minimal["register_policy_arn"]) == (None,) * 3
    assert minimal["archive_bucket_name"] is None


@pytest.mark.slow
def test_every_option_reaches_the_environment_and_scopes_the_permissions(
    applied: tuple[str, str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, key, outputs = applied
    # The handler reads its policy parameter through tdgc's own session: point it at the server too.
    for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    client = _client(endpoint)
    put_policy_parameter(client)
    check_every_option(check_deployment(client, "tdgc-full", "/aws/lambda/tdgc-full"), REGION, ACCOUNT, key)
    check_archive_bucket(client, BUCKET, key)
    check_usage_table(client, USAGE_TABLE, REGION, ACCOUNT)
    full = outputs["full"]
    assert full["archive_bucket_name"] == BUCKET
    assert (full["usage_table_name"], full["usage_table_arn"]) == (USAGE_TABLE, table_arn(REGION, ACCOUNT, USAGE_TABLE))
    check_register_policy(client, full["register_policy_arn"], table_arn(REGION, ACCOUNT, USAGE_TABLE))
    check_alarms(client, "tdgc-full", 20_000, ALARM_TOPIC)
    assert (full["quota_headroom_alarm_name"], full["failures_alarm_name"]) == (
        "tdgc-full-quota-headroom",
        "tdgc-full-failures",
    )


@pytest.mark.slow
def test_an_existing_usage_table_is_granted_and_left_alone(applied: tuple[str, str, dict[str, Any]]) -> None:
    endpoint, _, outputs = applied
    client = _client(endpoint)
    check_existing_table(check_deployment(client, "tdgc-existing", "/aws/lambda/tdgc-existing"), REGION, ACCOUNT)
    assert EXISTING_TABLE not in client("dynamodb").list_tables()["TableNames"]
    existing = outputs["existing"]
    assert existing["usage_table_arn"] == table_arn(REGION, ACCOUNT, EXISTING_TABLE)
    check_register_policy(client, existing["register_policy_arn"], table_arn(REGION, ACCOUNT, EXISTING_TABLE))


@pytest.mark.slow
def test_a_created_bucket_gets_a_name_of_its_own(applied: tuple[str, str, dict[str, Any]]) -> None:
    """create_archive_bucket alone: a generated name, SSE-S3, the retention asked for; the function's environment
    and role point at it, and the role still cannot change anything (a dry run)."""
    endpoint, _, outputs = applied
    client = _client(endpoint)
    bucket = outputs["archive"]["archive_bucket_name"]
    assert bucket.startswith("tdgc-archive-archive-")
    deployed = check_deployment(client, "tdgc-archive", "/aws/lambda/tdgc-archive")
    assert deployed.function["Environment"]["Variables"] == {
        "TDGC_DRY_RUN": "true",
        "TDGC_ARCHIVE": f"s3://{bucket}/tdgc/archive",
        "TDGC_REPORT": f"s3://{bucket}/tdgc/reports/",
    }
    assert statements(deployed.tdgc_policy) == expected_tdgc_statements(bucket)
    check_dry_run_role(deployed)
    check_archive_bucket(client, bucket, None, retention_days=30)


@pytest.mark.slow
def test_organisation_mode_deploys_the_state_machine_its_two_functions_and_one_schedule(
    applied: tuple[str, str, dict[str, Any]],
) -> None:
    """The state machine is organisation.asl.json rendered with what the apply made; check_organisation holds it,
    its functions, roles, queue and schedule to what the SAM template's are held to. The module's one schedule
    starts the state machine: none is left on the function."""
    endpoint, key, outputs = applied
    client = _client(endpoint)
    organisation = outputs["organisation"]
    log_groups = ("/aws/lambda/tdgc-org-targets", organisation["log_group_name"], "/aws/lambda/tdgc-org-merge")
    machine = organisation["state_machine_arn"]
    queue_url = organisation["dead_letter_queue_url"]
    checked = check_organisation(client, machine, queue_url, log_groups, ORG_BUCKET, key)
    functions = checked.functions
    assert functions[HANDLER]["FunctionArn"] == organisation["function_arn"]
    assert {f["FunctionName"] for f in functions.values()} == {"tdgc-org-targets", "tdgc-org", "tdgc-org-merge"}
    values = {
        "partition": "aws",
        "targets_function_arn": functions[TARGETS_HANDLER]["FunctionArn"],
        "function_arn": organisation["function_arn"],
        "merge_function_arn": functions[MERGE_HANDLER]["FunctionArn"],
        "dead_letter_queue_url": queue_url,
        "max_concurrency": MAX_CONCURRENCY,
        "target_time_budget": TARGET_TIME_BUDGET,
    }
    template = (MODULE / "organisation.asl.json").read_text()
    rendered = re.sub(r"\$\{(\w+)\}", lambda found: str(values[found[1]]), template)
    assert checked.definition == json.loads(rendered)
    assert checked.schedule["Arn"] == organisation["schedule_arn"]
    assert checked.schedule["ScheduleExpression"] == "rate(1 hour)"
    assert checked.collector_schedules == []
