"""The IAM actions are listed once (tdgc.permissions); the README's policy is that list."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tdgc import permissions

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_policy_is_the_account_wide_list() -> None:
    section = README.read_text().split("## IAM permissions", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block, "the README's IAM section has a JSON policy"
    statements = {st["Sid"]: st["Action"] for st in json.loads(block.group(1))["Statement"]}
    assert statements == {sid: list(actions) for sid, actions in permissions.ACCOUNT_WIDE.items()}


def test_the_policy_document_scopes_the_bucket_and_the_roles() -> None:
    doc = permissions.policy_document(bucket="b", role_arns=["arn:aws:iam::111111111111:role/tdgc"])
    by_sid = {st["Sid"]: st for st in doc["Statement"]}
    assert by_sid["ArchiveObjects"]["Resource"] == "arn:aws:s3:::b/*"
    assert by_sid["ArchiveBucket"]["Resource"] == "arn:aws:s3:::b"
    assert by_sid["AssumeMemberRoles"]["Resource"] == ["arn:aws:iam::111111111111:role/tdgc"]
    every = {a for st in doc["Statement"] for a in st["Action"]}
    assert every == set(permissions.actions()) - set(permissions.POLICY_PARAMETER) - set(permissions.USAGE_READ)


def test_the_policy_document_reads_the_terraform_state_buckets_and_nothing_else() -> None:
    """The terraform reference source reads state, scoped to the bucket named: no write, no lock table."""
    doc = permissions.policy_document(state_buckets=["tf-state"])
    by_sid = {st["Sid"]: st for st in doc["Statement"]}
    assert by_sid["TerraformStateObjects"] == {
        "Sid": "TerraformStateObjects", "Effect": "Allow", "Action": ["s3:GetObject"],
        "Resource": ["arn:aws:s3:::tf-state/*"],
    }  # fmt: skip
    assert by_sid["TerraformStateBucket"] == {
        "Sid": "TerraformStateBucket", "Effect": "Allow", "Action": ["s3:ListBucket"],
        "Resource": ["arn:aws:s3:::tf-state"],
    }  # fmt: skip
    # Beside the account-wide statements, those two alone.
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
