"""deploy/terraform: formatted, valid, and applied against moto's server it makes the scheduled function the
SAM template makes (tests/deploy_checks.py holds both to the same assertions).

Terraform runs offline: the AWS provider comes from a filesystem mirror, through a CLI configuration this
test writes in a temporary folder (never ~/.terraformrc); state and working files stay there too. The test
is skipped where there is no terraform or no mirror with the AWS provider.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from .deploy_checks import (
    BUCKET,
    CRON,
    EXTERNAL_ID,
    MEMBER_ROLES,
    PARAMETER,
    REGIONS,
    check_defaults,
    check_deployment,
    check_every_option,
    put_policy_parameter,
)

MODULE = Path(__file__).resolve().parent.parent / "deploy" / "terraform"
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
  endpoints {{
    iam       = "{endpoint}"
    lambda    = "{endpoint}"
    logs      = "{endpoint}"
    scheduler = "{endpoint}"
    sqs       = "{endpoint}"
    sts       = "{endpoint}"
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
  member_role_arns      = {roles}
  external_id           = {external_id}
}}
"""


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def applied(terraform: Any, endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The module applied twice over, with nothing optional and with everything; returns the endpoint."""
    root = tmp_path_factory.mktemp("root")
    _copy_module(root)
    # moto stores the code and never runs it: a stand-in is enough (the real zip is test_package.py's business).
    with zipfile.ZipFile(root / "code.zip", "w") as archive:
        archive.writestr(zipfile.ZipInfo("tdgc/lambda_handler.py"), "def handler(event, context):\n    return None\n")
    # JSON's strings and lists are HCL's too.
    options = {"cron": CRON, "bucket": BUCKET, "parameter": PARAMETER, "regions": REGIONS, "roles": MEMBER_ROLES}
    options |= {"external_id": EXTERNAL_ID}
    hcl = {name: json.dumps(value) for name, value in options.items()}
    (root / "main.tf").write_text((PROVIDER + MODULES).format(region=REGION, endpoint=endpoint, **hcl))
    terraform(root, "init")
    terraform(root, "apply", "-auto-approve")
    return endpoint


def test_two_policy_sources_are_refused_at_plan_time(
    terraform: Any, endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The handler refuses to run with two policy sources; the module refuses to plan them."""
    root = tmp_path_factory.mktemp("refused")
    _copy_module(root)
    both = """
module "tdgc" {{
  source                = "./tdgc"
  package_path          = "${{path.root}}/code.zip"
  policy_text           = "defaults = {{ keep_last = 3 }}"
  policy_parameter_name = "/tdgc/policy"
}}
"""
    (root / "main.tf").write_text((PROVIDER + both).format(region=REGION, endpoint=endpoint))
    (root / "code.zip").write_bytes(b"")
    terraform(root, "init")
    refused = terraform(root, "plan", succeeds=False)
    assert "Set one of policy_text, policy_parameter_name and policy_file" in refused.stderr


def _client(endpoint: str) -> Any:
    def client(service: str) -> Any:
        return boto3.client(
            service, region_name=REGION, endpoint_url=endpoint, aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )  # fmt: skip

    return client


def test_defaults_deploy_a_dry_run_hourly_with_the_read_and_apply_permissions_only(applied: str) -> None:
    check_defaults(check_deployment(_client(applied), "tdgc-minimal", "/aws/lambda/tdgc-minimal"))


def test_every_option_reaches_the_environment_and_scopes_the_permissions(
    applied: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The handler reads its policy parameter through tdgc's own session: point it at the server too.
    for name, value in {"AWS_ENDPOINT_URL": applied, "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    put_policy_parameter(_client(applied))
    check_every_option(check_deployment(_client(applied), "tdgc-full", "/aws/lambda/tdgc-full"), REGION, ACCOUNT)
