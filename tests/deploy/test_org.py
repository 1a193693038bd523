"""Organisation mode: the state machine of deploy/sam and deploy/terraform, its three steps' code in tdgc.job and
tdgc.lambda_handler, and the IAM each role holds (tdgc.permissions).

The state machine cannot run here (moto stores a definition and never interprets it), so its definition is
checked as a graph (every state reachable, every transition and resource resolvable), and the shapes its
states pass are computed from the definition itself and fed to the real handlers against the simulator: what
ListTargets returns becomes the map's items, each item becomes the collector's event through the map's
ItemSelector, and the merge reads what the collectors wrote.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from tdgc import permissions
from tdgc.aws.connection import caller
from tdgc.aws.connection import session as aws_session
from tdgc.aws.s3 import s3_access
from tdgc.errors import ReportError, UsageError
from tdgc.job import (
    MERGE_READ_AHEAD,
    merge_from_s3,
    merge_reports,
    merged_exit_code,
    org_accounts,
    read_targets,
    target_report,
    targets_location,
    targets_of,
    write_targets,
)
from tdgc.lambda_handler import RunFailed, handler, job_from, merge_handler, targets_from, targets_handler
from tdgc.local.simulator import Simulator
from tests.deploy import test_sam as test_deploy_sam
from tests.deploy import test_terraform as test_deploy_terraform
from tests.deploy.checks import (
    MAX_CONCURRENCY,
    MEMBER_ROLE_NAME,
    ORGANIZATIONAL_UNITS,
    REGIONS,
    check_graph,
    check_organisation,
    every_state,
    statements,
)
from tests.deploy.test_iam import _sam, resolve, sam_known
from tests.helpers import HANDLER_ENVIRONMENT
from tests.sim.test_lambda import FAST_POLICY, FakeContext, seed

# Fixtures and helpers of the deployment tests, shared rather than copied: moto's stack with what it lacks
# filled in, and terraform run offline.
aws = test_deploy_sam.aws
terraform = test_deploy_terraform.terraform
_deploy = test_deploy_sam._deploy
MIRROR, TERRAFORM, _copy_module = (
    test_deploy_terraform.MIRROR,
    test_deploy_terraform.TERRAFORM,
    test_deploy_terraform._copy_module,
)

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_ASL = ROOT / "deploy" / "terraform" / "organisation.asl.json"
MEMBERS = ["arn:aws:iam::111111111111:role/tdgc-member", "arn:aws:iam::222222222222:role/tdgc-member"]
# What the targets handler reads besides the collector's environment.
ENVIRONMENT = (*sorted(HANDLER_ENVIRONMENT), "TDGC_ORGANIZATIONAL_UNITS")


# --- merge_reports: sums, order, the worst exit status ------------------------------------------------------


def _report(
    account: str | None,
    region: str,
    *,
    status: str = "ok",
    failed: int = 0,
    done: int = 0,
    interrupted: str | None = None,
    notes: tuple[str, ...] = (),
    families: int = 1,
) -> dict[str, Any]:
    """A target's JSON report as tdgc.report writes it (the fields the merge reads)."""
    results = {"done": done, "pending": 0, "failed": failed, "skipped": 0}
    summary = {
        "families": families,
        "revisions": 3 + failed + done,
        "keep": 3,
        "deregister": failed + done,
        "delete": 0,
        "protected": 1,
        "results": results,
    }
    target = f"{account} {region}" if account else region
    arn = f"arn:aws:ecs:{region}:{account or '123456789012'}:task-definition/web:1"
    return {
        "version": 1,
        "tool": "tdgc",
        "mode": "apply",
        "regions": [region],
        "policy": {"source": "built-in"},
        "decisions": [
            {
                "arn": arn,
                "family": "web",
                "revision": 1,
                "status": "ACTIVE",
                "action": "keep",
                "reason": "newest",
                "registered_at": None,
                "deregistered_at": None,
                "in_use_by": [],
                "why": "newest",
            }
        ],
        "outcomes": [],
        "notes": list(notes),
        "incomplete": [],
        "interrupted": interrupted,
        "targets": [
            {
                "target": target,
                "account": account,
                "region": region,
                "status": status,
                "error": None,
                "summary": summary,
            }
        ],
        "summary": summary,
    }


def test_merge_sums_the_summaries_and_orders_the_targets_whatever_order_the_reports_come_in() -> None:
    reports = [
        _report("222222222222", "us-east-1", done=2, notes=("two",)),
        _report("111111111111", "us-east-1", failed=1, status="ok", notes=("one",)),
        _report("111111111111", "eu-west-1", families=4),
    ]
    for report, highest in zip(reports, (999_990, 10, 999_995), strict=True):
        quota = {"revisions_held": {"ACTIVE": 1}, "highest_revision": highest, "registered_per_day": None}
        report["families"] = [{"target": report["targets"][0]["target"], "family": "web", **quota}]
    merged = merge_reports(reports)
    # Every target's families, the closest to the quota first.
    assert [(f["target"], f["quota_headroom"]) for f in merged["families"]] == [
        ("111111111111 eu-west-1", 5),
        ("222222222222 us-east-1", 10),
        ("111111111111 us-east-1", 999_990),
    ]
    assert [t["target"] for t in merged["targets"]] == [
        "111111111111 eu-west-1",
        "111111111111 us-east-1",
        "222222222222 us-east-1",
    ]
    assert [d["arn"].split(":")[3:5] for d in merged["decisions"]] == [
        ["eu-west-1", "111111111111"],
        ["us-east-1", "111111111111"],
        ["us-east-1", "222222222222"],
    ]
    results = {"done": 2, "pending": 0, "failed": 1, "skipped": 0}
    assert merged["summary"] == {
        "families": 6,
        "revisions": 12,
        "keep": 9,
        "deregister": 3,
        "delete": 0,
        "protected": 3,
        "results": results,
        "deregistered": 0,
        "deleted": 0,
    }
    assert merged["notes"] == ["111111111111 us-east-1: one", "222222222222 us-east-1: two"]
    assert merged["regions"] == ["eu-west-1", "us-east-1"]
    assert merged["exit_code"] == 1  # an action failed in one account
    for permutation in itertools.permutations(reports):
        assert merge_reports(permutation) == merged


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["111111111111", "222222222222", None]),
            st.sampled_from(["us-east-1", "eu-west-1"]),
            st.integers(0, 5),
            st.integers(0, 5),
        ),
        min_size=1,
        max_size=6,
        unique_by=lambda t: (t[0], t[1]),
    )
)
def test_merge_sums_every_count_and_keeps_every_section(targets: list[tuple[str | None, str, int, int]]) -> None:
    reports = [_report(account, region, failed=failed, done=done) for account, region, failed, done in targets]
    merged = merge_reports(reports)
    for key in ("families", "revisions", "keep", "deregister", "protected"):
        assert merged["summary"][key] == sum(r["summary"][key] for r in reports)
    for key in ("done", "failed"):
        assert merged["summary"]["results"][key] == sum(r["summary"]["results"][key] for r in reports)
    keys = [(t["account"] or "", t["region"]) for t in merged["targets"]]
    assert keys == sorted(keys) and len(keys) == len(reports)
    assert merged["exit_code"] == (1 if any(failed for _, _, failed, _ in targets) else 0)


@pytest.mark.parametrize(
    ("codes", "worst"),
    [
        ([], 0),
        ([0], 0),
        ([0, 0], 0),
        ([0, 1], 1),
        ([2, 2], 2),  # nothing worked anywhere: still 2
        ([2, 0], 1),  # one target refused, the others ran: they may have changed something
        ([0, 3], 3),
        ([1, 3, 2], 3),  # a safety guard refused somewhere
        ([0, 130], 1),
        ([143, 143], 1),  # an interrupted target: the others went on
    ],
)
def test_the_merged_exit_status_is_the_worst_by_the_documented_rules(codes: list[int], worst: int) -> None:
    assert merged_exit_code(codes) == worst


def test_each_report_s_exit_status_is_derived_as_the_run_derives_it() -> None:
    refused = _report("111111111111", "us-east-1", status="refused")
    failed = _report("222222222222", "us-east-1", status="failed", families=0)
    assert merge_reports([refused])["exit_code"] == 3
    assert merge_reports([failed])["exit_code"] == 2  # failed, nothing changed: credentials or access
    assert merge_reports([failed, _report("333333333333", "us-east-1")])["exit_code"] == 1
    assert merge_reports([_report(None, "us-east-1", interrupted="SIGTERM")])["exit_code"] == 1
    assert merge_reports([{**_report(None, "us-east-1"), "exit_code": 3}])["exit_code"] == 3  # a job summary's own


# --- the per-target event: an account, never a role ---------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


ORG_ENV = {
    "TDGC_MEMBER_ROLE_NAME": "tdgc-member",
    "TDGC_REGIONS": "us-east-1,eu-west-1",
    "TDGC_REPORT": "s3://tdgc-archive/reports/",
}


def test_an_event_names_an_account_and_the_environment_names_the_role() -> None:
    event = {"account": "111122223333", "regions": "eu-west-1", "run_id": "exec-1", "time_budget": 600}
    job = job_from(event, ORG_ENV, 880.0, partition="aws-cn")
    assert job.role_arns == ("arn:aws-cn:iam::111122223333:role/tdgc-member",)
    assert job.regions == ("eu-west-1",) and job.time_budget == 600.0  # narrowed to the budget asked
    assert job.report == "s3://tdgc-archive/reports/exec-1/111122223333-eu-west-1.json"
    assert job.report == target_report(ORG_ENV["TDGC_REPORT"], "exec-1", "111122223333", "eu-west-1")
    assert job_from(event | {"time_budget": 890}, ORG_ENV, 880.0).time_budget == 880.0  # never widened
    # A list of roles: the event's account chooses its role among them.
    listed = {"TDGC_ROLE_ARNS": ",".join(MEMBERS)}
    assert job_from({"account": "222222222222"}, listed, None).role_arns == (MEMBERS[1],)
    # null: the function's own account, as the map's items have it without member roles.
    assert job_from({"account": None, "regions": "us-east-1"}, {"AWS_REGION": "us-east-1"}, None).role_arns == ()


@pytest.mark.parametrize(
    ("event", "env", "message"),
    [
        ({"account": "12345678901"}, ORG_ENV, "expected an AWS account id, 12 digits"),
        ({"account": "1234567890123"}, ORG_ENV, "expected an AWS account id, 12 digits"),
        ({"account": "١٢٣٤٥٦٧٨٩٠١٢"}, ORG_ENV, "expected an AWS account id, 12 digits"),  # not ASCII digits
        ({"account": 111122223333}, ORG_ENV, "expected an AWS account id, 12 digits"),  # a number, not a string
        ({"account": "111122223333/../x"}, ORG_ENV, "expected an AWS account id, 12 digits"),
        ({"account": "111122223333"}, {}, "needs TDGC_MEMBER_ROLE_NAME or TDGC_ROLE_ARNS"),
        ({"account": "333333333333"}, {"TDGC_ROLE_ARNS": ",".join(MEMBERS)}, "has no role in TDGC_ROLE_ARNS"),
        ({"role_arns": ["arn:aws:iam::111122223333:role/admin"]}, ORG_ENV, "set by the function's environment"),
        ({"role_arn": "arn:aws:iam::111122223333:role/admin"}, ORG_ENV, "unknown key 'role_arn'"),
        ({"account": "111122223333", "regions": "ap-south-1"}, ORG_ENV, "outside TDGC_REGIONS"),
        ({"run_id": "../../elsewhere"}, ORG_ENV, "expected 1 to 80 letters, digits, - or _"),
        ({"run_id": "exec-1", "regions": "us-east-1"}, {}, "'run_id' names a report in TDGC_REPORT, which is not set"),
        ({"run_id": "exec-1"}, ORG_ENV, "'run_id' needs one region"),
        ({"time_budget": 0}, ORG_ENV, "'time_budget' must be a number of seconds"),
        ({"time_budget": True}, ORG_ENV, "'time_budget' must be a number of seconds"),
        ({"account": "111122223333"}, ORG_ENV | {"TDGC_MEMBER_ROLE_NAME": "a b"}, "is not a role name"),
        ({}, ORG_ENV | {"TDGC_ROLE_ARNS": MEMBERS[0]}, "not both"),
    ],
)
def test_a_bad_or_widening_per_target_event_is_refused_before_any_aws_call(
    event: dict[str, Any], env: dict[str, str], message: str, sim: Simulator, clean_env: pytest.MonkeyPatch
) -> None:
    """Through the handler, as Step Functions invokes it: a UsageError, and not one call made."""
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(UsageError, match=re.escape(message)):
        handler(event, FakeContext(900))
    assert sum(sim.calls.values()) == 0 and sim.s3_requests == []


# --- the targets -----------------------------------------------------------------------------------------------


def _no_organisation() -> Any:
    raise AssertionError("the organisation is not listed")


def test_targets_of_a_role_list_or_of_the_function_s_own_account() -> None:
    env = {"TDGC_ROLE_ARNS": ",".join(MEMBERS), "TDGC_REGIONS": "us-east-1,eu-west-1"}
    listed = targets_from({"run_id": "exec-1"}, env, _no_organisation)
    assert listed == {
        "run_id": "exec-1",
        "targets": [
            {"account": "111111111111", "region": "eu-west-1"},
            {"account": "111111111111", "region": "us-east-1"},
            {"account": "222222222222", "region": "eu-west-1"},
            {"account": "222222222222", "region": "us-east-1"},
        ],
    }
    own = targets_from({"run_id": "exec-1"}, {"AWS_REGION": "eu-west-1"}, _no_organisation)
    assert own["targets"] == [{"account": None, "region": "eu-west-1"}]


@pytest.mark.parametrize(
    ("event", "env", "message"),
    [
        ({}, {"AWS_REGION": "us-east-1"}, "expected 1 to 80 letters"),
        ({"run_id": "x", "targets": []}, {"AWS_REGION": "us-east-1"}, "expected {'run_id'"),
        ({"run_id": "x"}, {"TDGC_REGIONS": "Mars-1"}, "is not a region name"),
        (
            {"run_id": "x"},
            {"TDGC_MEMBER_ROLE_NAME": "m", "TDGC_ORGANIZATIONAL_UNITS": "ou-x", "AWS_REGION": "us-east-1"},
            "expected an OU id",
        ),
        (
            {"run_id": "x"},
            {"TDGC_ORGANIZATIONAL_UNITS": "ou-abcd-abcdefgh", "AWS_REGION": "us-east-1"},
            "needs TDGC_MEMBER_ROLE_NAME",
        ),
        (
            {"run_id": "x"},
            {"TDGC_ROLE_ARNS": "arn:aws:iam::1:role/x", "AWS_REGION": "us-east-1"},
            "is not an IAM role ARN",
        ),
    ],
)
def test_bad_targets_input_is_refused_before_the_organisation_is_listed(
    event: dict[str, Any], env: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        targets_from(event, env, _no_organisation)


def test_the_organisation_s_active_accounts_under_the_ous_asked_paged_by_botocore() -> None:
    with mock_aws():
        organizations = boto3.client("organizations", region_name="us-east-1")
        organizations.create_organization(FeatureSet="ALL")
        root = organizations.list_roots()["Roots"][0]["Id"]
        workloads = organizations.create_organizational_unit(ParentId=root, Name="workloads")["OrganizationalUnit"][
            "Id"
        ]
        nested = organizations.create_organizational_unit(ParentId=workloads, Name="prod")["OrganizationalUnit"]["Id"]
        sandbox = organizations.create_organizational_unit(ParentId=root, Name="sandbox")["OrganizationalUnit"]["Id"]

        def account(name: str, parent: str) -> str:
            created = organizations.create_account(AccountName=name, Email=f"{name}@example.com")
            account_id: str = created["CreateAccountStatus"]["AccountId"]
            organizations.move_account(AccountId=account_id, SourceParentId=root, DestinationParentId=parent)
            return account_id

        in_workloads = [account(f"w{n}", workloads) for n in range(3)]
        in_prod = [account(f"p{n}", nested) for n in range(25)]  # more than ListAccounts' page of 20
        in_sandbox = [account("s0", sandbox)]
        closed = account("closed", nested)
        organizations.close_account(AccountId=closed)

        everything = org_accounts(organizations)
        assert set(everything) >= {*in_workloads, *in_prod, *in_sandbox} and closed not in everything
        assert everything == sorted(everything)
        assert org_accounts(organizations, [workloads]) == sorted([*in_workloads, *in_prod])  # the OU below too
        assert org_accounts(organizations, [sandbox, nested]) == sorted([*in_sandbox, *in_prod])

        env = {
            "TDGC_MEMBER_ROLE_NAME": "tdgc-member",
            "TDGC_ORGANIZATIONAL_UNITS": sandbox,
            "TDGC_REGIONS": "us-east-1",
        }
        listed = targets_from({"run_id": "exec-1"}, env, lambda: organizations)
        assert listed["targets"] == [{"account": in_sandbox[0], "region": "us-east-1"}]


def test_a_target_list_far_beyond_a_state_s_256_kib_goes_to_s3_and_reads_back_exactly(sim: Simulator) -> None:
    """20,000 targets (about four times what a state's data once carried): written as one JSON array under the
    run's report prefix, as the reports are (the bucket's owner named, encryption asked for), and read back
    whole; what the state machine passes on is where the list is, the same size whatever the count."""
    sim.create_bucket("tdgc-archive")
    targets = targets_of([f"{n:012d}" for n in range(5000)], ["ap-southeast-2", "eu-west-1", "us-east-1", "us-west-2"])
    assert len(targets) == 20_000
    s3 = s3_access(caller(aws_session(None), None, "us-east-1"), "123456789012", None)
    written = write_targets("s3://tdgc-archive/reports/", "exec-1", targets, s3)
    assert written == {
        "run_id": "exec-1",
        "bucket": "tdgc-archive",
        "key": "reports/exec-1/targets.json",
        "results_prefix": "reports/exec-1/map-results",
        "count": 20_000,
    }
    location = targets_location("s3://tdgc-archive/reports", "exec-1")
    assert location == "s3://tdgc-archive/reports/exec-1/targets.json"
    body = boto3.client("s3", region_name="us-east-1").get_object(Bucket="tdgc-archive", Key=written["key"])["Body"]
    assert json.loads(body.read()) == targets and len(json.dumps(targets)) > 4 * 256 * 1024
    assert read_targets(location, s3) == targets
    assert [(r.method, r.key, r.expected_owner, r.encryption) for r in sim.s3_requests] == [
        ("PUT", "reports/exec-1/targets.json", "123456789012", "AES256"),
        ("GET", "reports/exec-1/targets.json", None, None),  # the check's own read, boto3 without tdgc's
        ("GET", "reports/exec-1/targets.json", "123456789012", None),
    ]


def test_a_missing_or_damaged_target_list_stops_the_merge_with_exit_1(sim: Simulator) -> None:
    sim.create_bucket("tdgc-archive")
    s3 = s3_access(caller(aws_session(None), None, "us-east-1"), "123456789012", None)
    location = targets_location("s3://tdgc-archive/reports/", "exec-1")
    with pytest.raises(ReportError, match=r"^targets s3://tdgc-archive/reports/exec-1/targets.json: cannot read"):
        read_targets(location, s3)
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket="tdgc-archive", Key="reports/exec-1/targets.json", Body=b"[{"
    )
    with pytest.raises(ReportError, match="not JSON"):
        read_targets(location, s3)


def test_the_merge_reads_every_report_once_a_few_at_a_time_and_keeps_their_order(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More targets than the merge fetches at once, every seventh report missing: each report is read once, with
    one S3 client, and the merged report holds them in (account, region) order, the missing ones failed."""
    sim.create_bucket("tdgc-archive")
    accounts = [f"{n:012d}" for n in range(1, 21)]
    targets = targets_of(accounts, ["eu-west-1", "us-east-1"])  # 40 targets, 2.5 times the read-ahead
    assert len(targets) > 2 * MERGE_READ_AHEAD
    s3 = boto3.client("s3", region_name="us-east-1")
    keys, missing = [], set()
    for n, target in enumerate(reversed(targets)):  # written in the opposite order: the merge sorts
        location = target_report("s3://tdgc-archive/reports/", "exec-1", target["account"], target["region"])
        keys.append(location.removeprefix("s3://tdgc-archive/"))
        if n % 7 == 3:
            missing.add(keys[-1])
            continue
        body = json.dumps(_report(target["account"], target["region"], done=1)).encode()
        s3.put_object(Bucket="tdgc-archive", Key=keys[-1], Body=body)
    access = s3_access(caller(aws_session(None), None, "us-east-1"), "123456789012", None)
    made = []
    real_client = access.connection.session.client
    monkeypatch.setattr(access.connection.session, "client", lambda *a, **k: made.append(a[0]) or real_client(*a, **k))
    sim.s3_requests.clear()

    merged = merge_from_s3("s3://tdgc-archive/reports/", "exec-1", list(reversed(targets)), access)

    read = Counter(r.key for r in sim.s3_requests if r.method == "GET" and r.key in keys)
    assert read == Counter(keys), "each report read once, the missing ones too"
    assert made == ["s3"], "one client for every read and both uploads"
    assert merged["targets"] == 40 and merged["targets_by_status"]["failed"] == len(missing) > 2
    key = "reports/exec-1/organisation.json"
    document = json.loads(s3.get_object(Bucket="tdgc-archive", Key=key)["Body"].read())
    order = [(t["account"], t["region"]) for t in document["targets"]]
    assert order == sorted((t["account"], t["region"]) for t in targets)
    failed = {(t["account"], t["region"]) for t in document["targets"] if t["status"] == "failed"}
    assert len(failed) == len(missing) and merged["summary"]["results"]["done"] == 40 - len(missing)


# Sixteen regions: a large organisation's accounts times these cross what one execution's data once carried.
SIXTEEN_REGIONS = [
    "ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1", "ap-southeast-2", "ca-central-1",
    "eu-central-1", "eu-north-1", "eu-west-1", "eu-west-2", "eu-west-3", "sa-east-1",
    "us-east-1", "us-east-2", "us-west-1", "us-west-2",
]  # fmt: skip


def test_a_large_organisation_s_targets_go_to_s3_and_every_state_s_data_stays_small(
    sim: Simulator, clean_env: pytest.MonkeyPatch
) -> None:
    """321 accounts times 16 regions, more than a state's 256 KiB could hold as a list: the targets function
    lists the organisation, writes the list to S3 and returns where it is; every state's data, computed from
    the definition, stays a few hundred bytes."""
    organizations = boto3.client("organizations", region_name="us-east-1")
    organizations.create_organization(FeatureSet="ALL")
    for n in range(320):
        organizations.create_account(AccountName=f"a{n}", Email=f"a{n}@example.com")
    sim.create_bucket("tdgc-archive")
    sim.calls.clear()
    clean_env.setenv("TDGC_MEMBER_ROLE_NAME", "tdgc-member")
    clean_env.setenv("TDGC_REGIONS", ",".join(SIXTEEN_REGIONS))
    clean_env.setenv("TDGC_REPORT", "s3://tdgc-archive/reports/")

    listed = targets_handler({"run_id": "exec-1"}, FakeContext(300))
    assert listed["count"] == 321 * 16 and listed["key"] == "reports/exec-1/targets.json"
    # The organisation listed, paged, and the list written: nothing else called.
    assert {op.split(":")[-1] for op in sim.calls} == {"ListAccounts", "PutObject"} and sim.count("PutObject") == 1
    s3 = boto3.client("s3", region_name="us-east-1")
    items = json.loads(s3.get_object(Bucket="tdgc-archive", Key=listed["key"])["Body"].read())
    assert len(items) == 321 * 16 and len(json.dumps(items)) > 256 * 1024
    # Each state's data, computed from the definition, as Step Functions holds it.
    states = _sam_definition()[0]["States"]
    context = {"Execution": {"Name": "exec-1"}}
    raw = {"ExecutedVersion": "$LATEST", "Payload": listed, "StatusCode": 200, **LAMBDA_INVOKE_METADATA}
    after_list = _select(states["ListTargets"]["ResultSelector"], raw, context)
    merge_payload = _payload(states["MergeReports"], after_list, context)  # the map passes its input on
    for data in (raw, after_list, merge_payload):
        assert len(json.dumps(data).encode()) < 4096


# What a lambda:invoke task's raw result carries besides the payload, before its ResultSelector.
LAMBDA_INVOKE_METADATA = {
    "SdkHttpMetadata": {
        "AllHttpHeaders": {
            name: [value]
            for name, value in {
                "X-Amz-Executed-Version": "$LATEST",
                "x-amzn-Remapped-Content-Length": "0",
                "Connection": "keep-alive",
                "x-amzn-RequestId": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
                "Content-Length": "258048",
                "Date": "Mon, 01 Jun 2026 12:00:00 GMT",
                "X-Amzn-Trace-Id": "root=1-6a1b2c3d-0123456789abcdef01234567;parent=0123456789abcdef;sampled=0",
                "Content-Type": "application/json",
            }.items()
        },
        "HttpHeaders": {"Connection": "keep-alive", "Content-Type": "application/json"},
        "HttpStatusCode": 200,
    },
    "SdkResponseMetadata": {"RequestId": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"},
}


# --- the state machine's definition ------------------------------------------------------------------------


def _sam_definition() -> tuple[dict[str, Any], dict[str, Any]]:
    """The SAM state machine's definition with each ${...} left as its name, and the state machine resource."""
    machine = _sam()["Resources"]["OrganisationStateMachine"]
    text = machine["Properties"]["DefinitionString"]["Fn::Sub"]
    assert isinstance(text, str)
    # Numbers substitute in unquoted: give them a number's shape to parse, keep the names for the rest.
    text = text.replace("${MaxConcurrency}", "10").replace("${TargetTimeBudget}", "840")
    definition: dict[str, Any] = json.loads(text)
    return definition, machine


def test_the_state_machine_is_a_connected_graph_whose_references_resolve() -> None:
    definition, machine = _sam_definition()
    check_graph(definition)
    resources = _sam()["Resources"]
    # Every ${...} of the definition is a pseudo parameter, a parameter, or a resource of the template (and an
    # Arn of a function); the role is a role of the template.
    text = machine["Properties"]["DefinitionString"]["Fn::Sub"]
    for name in re.findall(r"\$\{([^}]+)\}", text):
        logical, _, attribute = name.partition(".")
        if logical.startswith("AWS::") or logical in _sam()["Parameters"]:
            continue
        assert logical in resources, f"{name} resolves to nothing"
        assert resources[logical].get("Condition") in (None, "Organisation")  # exists whenever the machine does
        if attribute:
            assert (attribute, resources[logical]["Type"]) == ("Arn", "AWS::Serverless::Function"), name
    invokes = [s for s in every_state(definition["States"]).values() if "lambda:invoke" in s.get("Resource", "")]
    functions = {re.findall(r"\$\{(\w+)\.Arn\}", s["Parameters"]["FunctionName"])[0] for s in invokes}
    assert functions == {"TargetsFunction", "Function", "MergeFunction"}
    handlers = {resources[f]["Properties"]["Handler"] for f in functions}
    assert handlers == {
        "tdgc.lambda_handler.targets_handler",
        "tdgc.lambda_handler.handler",
        "tdgc.lambda_handler.merge_handler",
    }
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"]
    assert role == ["StateMachineRole", "Arn"] and resources["StateMachineRole"]["Type"] == "AWS::IAM::Role"
    assert machine["Properties"]["StateMachineName"] == {"Fn::Sub": "${AWS::StackName}-organisation"}


def test_the_map_is_distributed_standard_and_bounded_by_the_parameter() -> None:
    definition, machine = _sam_definition()
    text = machine["Properties"]["DefinitionString"]["Fn::Sub"]
    assert '"MaxConcurrency": ${MaxConcurrency}' in text and '"time_budget": ${TargetTimeBudget}' in text
    maps = [s for s in definition["States"].values() if s["Type"] == "Map"]
    [collect] = maps
    # A collector run takes up to Lambda's 15 minutes: an EXPRESS child execution stops at 5.
    assert collect["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    # Nothing about the organisation's size passes through the state machine's data (256 KiB): the items are
    # read from the target list in S3, the children's results written beside it, and the map passes its input on.
    assert "ItemsPath" not in collect and "ItemReader" in collect and "ResultSelector" not in collect
    assert collect["ItemReader"] == {
        "Resource": "arn:${AWS::Partition}:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket.$": "$.bucket", "Key.$": "$.key"},
    }
    assert collect["ResultWriter"] == {
        "Resource": "arn:${AWS::Partition}:states:::s3:putObject",
        "Parameters": {"Bucket.$": "$.bucket", "Prefix.$": "$.results_prefix"},
    }
    assert collect["ResultPath"] is None
    # Each child keeps only its exit status: the merge reads the reports, never the map's results.
    task, failed = collect["ItemProcessor"]["States"]["Collect"], collect["ItemProcessor"]["States"]["CollectFailed"]
    assert task["ResultSelector"] == {"exit_code.$": "$.Payload.exit_code"} and task["End"] is True
    # A failed child's result would carry the error's cause (a stack trace, up to 32 KiB): a failed target keeps
    # only the error's name, and the merge reports its missing report and fails the run then.
    assert task["Catch"] == [{"ErrorEquals": ["States.ALL"], "Next": "CollectFailed"}]
    assert failed["Type"] == "Pass" and failed["End"] is True
    assert _select(failed["Parameters"], {"Error": "States.Timeout", "Cause": "x" * 32768}, {}) == {
        "error": "States.Timeout"
    }
    # Every state that can fail reaches the dead-letter queue, and then fails the execution. The error replaces
    # the state's data rather than joining it.
    for name, state in definition["States"].items():
        if state["Type"] in ("Task", "Map") and name != "SendToDeadLetters":
            assert [(c["Next"], c["ResultPath"]) for c in state["Catch"]] == [("SendToDeadLetters", "$")], name
    dead = definition["States"]["SendToDeadLetters"]
    assert (
        dead["Resource"].endswith(":states:::sqs:sendMessage")
        and dead["Parameters"]["QueueUrl"] == "${DeadLetterQueue}"
    )
    error = {"Error": "States.DataLimitExceeded", "Cause": "..."}
    context = {"Execution": {"Id": "arn:aws:states:us-east-1:123456789012:execution:tdgc-organisation:exec-1"}}
    message = _select(dead["Parameters"]["MessageBody"], error, context)
    assert message == {"execution": context["Execution"]["Id"], "error": error}
    assert definition["States"][dead["Next"]]["Type"] == "Fail"


def test_terraform_deploys_the_same_definition() -> None:
    """organisation.asl.json is the SAM definition with Terraform's names for the same values."""
    names = {
        "AWS::Partition": "partition",
        "TargetsFunction.Arn": "targets_function_arn",
        "Function.Arn": "function_arn",
        "MergeFunction.Arn": "merge_function_arn",
        "DeadLetterQueue": "dead_letter_queue_url",
        "MaxConcurrency": "max_concurrency",
        "TargetTimeBudget": "target_time_budget",
    }
    sam = _sam()["Resources"]["OrganisationStateMachine"]["Properties"]["DefinitionString"]["Fn::Sub"]
    renamed = re.sub(r"\$\{([^}]+)\}", lambda found: "${" + names[found[1]] + "}", sam)
    terraform = TERRAFORM_ASL.read_text()
    assert json.loads(_numbers(renamed)) == json.loads(_numbers(terraform))
    organisation_tf = (ROOT / "deploy" / "terraform" / "organisation.tf").read_text()
    for name in names.values():
        assert re.search(rf"^\s+{name}\s+=", organisation_tf, re.MULTILINE), f"templatefile is given {name}"


def _numbers(text: str) -> str:
    return text.replace("${max_concurrency}", "10").replace("${target_time_budget}", "840")


# --- each state's input and output, through the real handlers --------------------------------------------


def _select(template: Mapping[str, Any], state_input: Any, context: Mapping[str, Any]) -> dict[str, Any]:
    """Step Functions' Parameters / ItemSelector / ResultSelector, for the paths the definition uses: a key
    ending in .$ takes `$` (the whole input), `$.KEY...` from the input, or `$$.PATH` from the context."""
    out: dict[str, Any] = {}
    for key, value in template.items():
        if key.endswith(".$"):
            root, path = (context, value[3:]) if value.startswith("$$.") else (state_input, value[2:])
            for part in filter(None, path.split(".")):
                root = root[part]
            out[key[:-2]] = root
        elif isinstance(value, dict):
            out[key] = _select(value, state_input, context)
        else:
            out[key] = value
    return out


def _payload(state: Mapping[str, Any], state_input: Any, context: Mapping[str, Any]) -> Any:
    parameters = _select(state["Parameters"], state_input, context)
    return parameters["Payload"]


def test_each_state_s_output_is_the_next_state_s_input_against_the_real_handlers(
    sim: Simulator, clean_env: pytest.MonkeyPatch
) -> None:
    """Two member accounts, each with revisions to collect: the execution's states, computed from the
    definition, end in one report with a section per account; a target whose invocation left no report is in
    it as failed, and fails the run."""
    for account in ("111111111111", "222222222222"):
        seed_in(sim, account)
    sim.create_bucket("tdgc-archive")
    for name, value in {
        "TDGC_POLICY": FAST_POLICY,
        "TDGC_DRY_RUN": "false",
        "TDGC_ROLE_ARNS": ",".join(MEMBERS),
        "TDGC_REGIONS": "us-east-1",
        "TDGC_REPORT": "s3://tdgc-archive/reports/",
    }.items():
        clean_env.setenv(name, value)
    definition, _ = _sam_definition()
    states = definition["States"]
    context = {"Execution": {"Name": "exec-1", "Id": "arn:aws:states:us-east-1:123456789012:execution:x:exec-1"}}
    scheduled = {
        "schedule": "arn:aws:scheduler:::schedule/default/x",
        "scheduled_time": "t",
        "execution_id": "e",
        "attempt": "1",
    }

    listed = targets_handler(_payload(states["ListTargets"], scheduled, context), FakeContext(300))
    after_list = _select(states["ListTargets"]["ResultSelector"], {"Payload": listed}, context)
    assert after_list == {
        "run_id": "exec-1",
        "bucket": "tdgc-archive",
        "key": "reports/exec-1/targets.json",
        "results_prefix": "reports/exec-1/map-results",
        "count": 2,
    }

    # The map's items: the JSON array its ItemReader reads (GetObject of the Bucket and Key it selects).
    collect = states["CollectEachTarget"]
    processor = collect["ItemProcessor"]
    reader = collect["ItemReader"]
    assert reader["Resource"].endswith(":states:::s3:getObject") and reader["ReaderConfig"] == {"InputType": "JSON"}
    where = _select(reader["Parameters"], after_list, context)
    s3 = boto3.client("s3", region_name="us-east-1")
    items = json.loads(s3.get_object(**where)["Body"].read())
    assert items == [
        {"account": "111111111111", "region": "us-east-1"},
        {"account": "222222222222", "region": "us-east-1"},
    ]
    # The children's results go under the run's report prefix, where the role may write them.
    writer = _select(collect["ResultWriter"]["Parameters"], after_list, context)
    assert writer == {"Bucket": "tdgc-archive", "Prefix": "reports/exec-1/map-results"}
    for item in items:
        item_context = context | {"Map": {"Item": {"Value": item, "Index": 0}}}
        child_input = _select(collect["ItemSelector"], after_list, item_context)
        task = processor["States"][processor["StartAt"]]
        event = _payload(task, child_input, item_context)
        result = handler(event, FakeContext(900))
        assert result["exit_code"] == 0 and result["summary"]["results"]["pending"] == 3
        assert result["report"] == target_report("s3://tdgc-archive/reports/", "exec-1", item["account"], "us-east-1")
        # Each child's result is what the map writes to S3 (and the merge never reads): its exit status alone.
        assert _select(task["ResultSelector"], {"Payload": result}, item_context) == {"exit_code": 0}
    # ResultPath null: the map passes its input on to the merge, which reads the target list again (one GetObject)
    # and finds the reports by their names.
    merge_event = _payload(states["MergeReports"], after_list, context)
    assert merge_event == {"run_id": "exec-1", "bucket": "tdgc-archive", "key": "reports/exec-1/targets.json"}
    merged = merge_handler(merge_event, FakeContext(900))
    assert merged["exit_code"] == 0 and merged["targets"] == 2
    assert merged["summary"]["results"]["pending"] == 6 and merged["summary"]["families"] == 2
    assert len(json.dumps(merged)) < 4096  # a state's output stays small however many targets

    document = json.loads(s3.get_object(Bucket="tdgc-archive", Key="reports/exec-1/organisation.json")["Body"].read())
    assert [t["target"] for t in document["targets"]] == ["111111111111 us-east-1", "222222222222 us-east-1"]
    assert document["summary"] == merged["summary"] and len(document["decisions"]) == 2 * 5
    assert {d["arn"].split(":")[4] for d in document["decisions"]} == {"111111111111", "222222222222"}
    # Each target's families, carried over: the same family in two accounts is two entries, each its target's.
    families = sorted((f["target"], f["family"], f["highest_revision"]) for f in document["families"])
    assert families == [("111111111111 us-east-1", "etl", 5), ("222222222222 us-east-1", "etl", 5)]
    markdown = s3.get_object(Bucket="tdgc-archive", Key="reports/exec-1/organisation.md")["Body"].read().decode()
    assert "## 111111111111 us-east-1" in markdown and "## 222222222222 us-east-1" in markdown
    assert "2 targets: 2 ok." in markdown
    assert "| `111111111111 us-east-1 etl` | 5 | 999,995 |" in markdown  # the families closest to the quota

    # A third target whose invocation died before writing its report: named, failed, and the run fails.
    third = {"account": "333333333333", "region": "us-east-1"}
    s3.put_object(Bucket="tdgc-archive", Key="reports/exec-1/targets.json", Body=json.dumps([*items, third]).encode())
    with pytest.raises(RunFailed, match="exited 1: 2 ok, 1 failed"):
        merge_handler(merge_event, FakeContext(900))
    document = json.loads(s3.get_object(Bucket="tdgc-archive", Key="reports/exec-1/organisation.json")["Body"].read())
    [missing] = [t for t in document["targets"] if t["account"] == "333333333333"]
    assert (
        missing["status"] == "failed"
        and "no report at s3://tdgc-archive/reports/exec-1/333333333333" in missing["error"]
    )


def seed_in(sim: Simulator, account: str) -> None:
    """test_lambda.seed's account (2 ACTIVE to keep, 3 INACTIVE to delete), in a member account."""
    original = sim.seed

    def in_account(family: str, **kwargs: Any) -> str:
        return original(family, account=account, **kwargs)

    sim.seed = in_account  # type: ignore[method-assign]
    try:
        seed(sim, "etl", active=2, inactive=3)
    finally:
        sim.seed = original  # type: ignore[method-assign]


@pytest.mark.parametrize(
    "event",
    [
        {"run_id": "exec-1"},
        {"run_id": "exec-1", "targets": [{"account": "111111111111", "region": "us-east-1"}]},
        {"run_id": "exec-1", "bucket": "tdgc-archive", "key": "reports/exec-1/targets.json", "count": 2},
        {"run_id": "a/b", "bucket": "tdgc-archive", "key": "reports/a/b/targets.json"},
        {"run_id": "exec-1", "bucket": "tdgc-archive", "key": ["reports/exec-1/targets.json"]},
        # Only the run's own list: any other object, even in the same bucket, is refused.
        {"run_id": "exec-1", "bucket": "tdgc-archive", "key": "reports/exec-2/targets.json"},
        {"run_id": "exec-1", "bucket": "elsewhere", "key": "reports/exec-1/targets.json"},
        {"run_id": "exec-1", "bucket": "tdgc-archive", "key": "archive/secrets.json"},
    ],
)
def test_a_bad_merge_event_is_refused_before_any_aws_call(
    event: dict[str, Any], sim: Simulator, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("TDGC_REPORT", "s3://tdgc-archive/reports/")
    with pytest.raises(UsageError):
        merge_handler(event, FakeContext(900))
    assert sum(sim.calls.values()) == 0 and sim.s3_requests == []


@pytest.mark.parametrize(
    ("report", "message"),
    [(None, "TDGC_REPORT: not set"), ("/tmp/reports", "keeps its objects in S3"), ("s3://", "expected s3://BUCKET")],
)
def test_both_handlers_refuse_a_report_location_not_in_s3_before_any_aws_call(
    report: str | None, message: str, sim: Simulator, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("TDGC_ROLE_ARNS", ",".join(MEMBERS))
    if report is not None:
        clean_env.setenv("TDGC_REPORT", report)
    merge_event = {"run_id": "exec-1", "bucket": "tdgc-archive", "key": "reports/exec-1/targets.json"}
    for call in (
        lambda: targets_handler({"run_id": "exec-1"}, FakeContext(300)),
        lambda: merge_handler(merge_event, FakeContext(900)),
    ):
        with pytest.raises(UsageError, match=re.escape(message)):
            call()
    assert sum(sim.calls.values()) == 0 and sim.s3_requests == []


# --- IAM: each role is what tdgc.permissions renders --------------------------------------------------------


def _policy(resource: str, name: str, partition: str, parameters: dict[str, Any]) -> dict[str, Any]:
    known = sam_known(partition, parameters) | {
        "AWS::StackName": "tdgc",
        "TargetsLogGroup": "/aws/lambda/tdgc-targets",
        "MergeLogGroup": "/aws/lambda/tdgc-merge",
        "OrganisationStateMachine": f"arn:{partition}:states:eu-west-1:111122223333:stateMachine:tdgc-organisation",
    }
    for function in ("TargetsFunction", "Function", "MergeFunction"):
        known[f"{function}.Arn"] = f"arn:{partition}:lambda:eu-west-1:111122223333:function:{function}"
    template = _sam()
    policies = template["Resources"][resource]["Properties"]["Policies"]
    resolved = resolve(policies, known, template["Conditions"])
    [document] = [p["PolicyDocument"] for p in resolved if p["PolicyName"] == name]
    return dict(document)


ORG = {"OrganisationMode": "true", "ArchiveBucket": "org-tdgc", "MemberRoleName": "tdgc-member"}


@pytest.mark.parametrize("partition", permissions.PARTITIONS)
def test_the_organisation_roles_grant_exactly_what_tdgc_permissions_renders(partition: str) -> None:
    queue = f"arn:{partition}:sqs:eu-west-1:111122223333:dlq"
    machine = f"arn:{partition}:states:eu-west-1:111122223333:stateMachine:tdgc-organisation"
    functions = [
        f"arn:{partition}:lambda:eu-west-1:111122223333:function:{f}"
        for f in ("TargetsFunction", "Function", "MergeFunction")
    ]
    for parameters, key in ((ORG, None), (ORG | {"ArchiveKmsKeyArn": f"arn:{partition}:kms:eu-west-1:1:key/k"}, "k")):
        kms_key_arn = parameters.get("ArchiveKmsKeyArn") if key else None
        expected = permissions.merge_policy_document("org-tdgc", partition=partition, kms_key_arn=kms_key_arn)
        assert statements(_policy("MergeFunctionRole", "tdgc", partition, parameters)) == statements(expected)
        assert statements(_policy("TargetsFunctionRole", "tdgc", partition, parameters)) == statements(
            permissions.targets_policy_document("org-tdgc", partition=partition, kms_key_arn=kms_key_arn)
        )
        assert statements(_policy("StateMachineRole", "tdgc", partition, parameters)) == statements(
            permissions.state_machine_policy_document(machine, functions, queue, "org-tdgc", kms_key_arn=kms_key_arn)
        )
    # The map's S3 access is the run's objects under the report prefix alone, never the archive prefix.
    machine_policy = _policy("StateMachineRole", "tdgc", partition, ORG)
    s3_resources = {s["Resource"] for s in machine_policy["Statement"] if s["Action"][0].startswith("s3:")}
    assert s3_resources == {
        f"arn:{partition}:s3:::org-tdgc/tdgc/reports/*/targets.json",
        f"arn:{partition}:s3:::org-tdgc/tdgc/reports/*/map-results/*",
    }
    assert statements(_policy("ScheduleRole", "start", partition, ORG)) == statements(
        permissions.schedule_policy_document(machine, queue)
    )
    # The collector may assume roles of the one name, in any account, and in its partition only.
    collector = _policy("FunctionRole", "tdgc", partition, ORG)
    [assume] = [s for s in collector["Statement"] if s["Sid"] == "AssumeMemberRoles"]
    assert assume["Resource"] == permissions.member_role_arn("tdgc-member", partition)
    # With a role list, the targets function lists nothing: its role writes the target list alone.
    with_roles = ORG | {"MemberRoleArns": ["arn:aws:iam::111111111111:role/r"]}
    assert statements(_policy("TargetsFunctionRole", "tdgc", partition, with_roles)) == statements(
        permissions.targets_policy_document("org-tdgc", list_organisation=False, partition=partition)
    )
    assert [s["Sid"] for s in permissions.targets_policy_document("b", list_organisation=False)["Statement"]] == [
        "TargetsList"
    ]


def test_organisation_mode_is_off_by_default_and_needs_a_bucket() -> None:
    template = _sam()
    conditions = template["Conditions"]
    assert resolve(conditions["Organisation"], sam_known("aws", {}), conditions) is False
    org_only = {n for n, r in template["Resources"].items() if r.get("Condition") == "Organisation"}
    assert org_only == {
        "TargetsLogGroup",
        "TargetsFunctionRole",
        "TargetsFunction",
        "MergeLogGroup",
        "MergeFunctionRole",
        "MergeFunction",
        "StateMachineRole",
        "OrganisationStateMachine",
        "ScheduleRole",
        "OrganisationSchedule",
    }
    [assertion] = [a["Assert"] for a in template["Rules"]["OrganisationHasABucket"]["Assertions"]]
    for parameters, passes in [
        ({}, True),
        ({"OrganisationMode": "true"}, False),
        (ORG, True),
        ({"OrganisationMode": "true", "CreateArchiveBucket": "true"}, True),
    ]:
        assert resolve(assertion, sam_known("aws", parameters), conditions) is passes, parameters


# --- the stack in moto, organisation mode on ------------------------------------------------------------


def test_the_stack_deploys_in_moto_with_organisation_mode_on(aws: None) -> None:
    parameters = ORG | {
        "ArchiveBucket": "",
        "CreateArchiveBucket": "true",
        "MemberRoleName": MEMBER_ROLE_NAME,
        "MaxConcurrency": str(MAX_CONCURRENCY),
        "Regions": ",".join(REGIONS),
        "OrganizationalUnits": ",".join(ORGANIZATIONAL_UNITS),
    }
    ids = _deploy("tdgc-org", parameters)
    log_groups = (ids["TargetsLogGroup"], ids["LogGroup"], ids["MergeLogGroup"])
    machine = ids["OrganisationStateMachine"]
    client = test_deploy_sam._client
    organisation = check_organisation(client, machine, ids["DeadLetterQueue"], log_groups, ids["ArchiveStore"])
    assert {f["FunctionName"] for f in organisation.functions.values()} == {
        ids["TargetsFunction"],
        ids["Function"],
        ids["MergeFunction"],
    }
    # SAM keeps the function's own schedule, disabled, so that switching the mode replaces nothing.
    assert [s["State"] for s in organisation.collector_schedules] == ["DISABLED"]
    assert client("stepfunctions").describe_state_machine(stateMachineArn=machine)["name"] == "tdgc-org-organisation"
    outputs = client("cloudformation").describe_stacks(StackName="tdgc-org")
    assert {o["OutputKey"]: o["OutputValue"] for o in outputs["Stacks"][0]["Outputs"]}["StateMachineArn"] == machine


# --- terraform validate, organisation mode on -----------------------------------------------------------


@pytest.mark.skipif(TERRAFORM is None or MIRROR is None, reason="needs terraform and the AWS provider in a mirror")
def test_the_terraform_module_validates_with_organisation_mode_on(terraform: Any, tmp_path: Path) -> None:
    _copy_module(tmp_path)
    (tmp_path / "code.zip").write_bytes(b"")
    (tmp_path / "main.tf").write_text(
        'provider "aws" {\n  region = "us-east-1"\n}\n\n'
        'module "org" {\n  source = "./tdgc"\n  package_path = "${path.root}/code.zip"\n'
        '  organisation_mode = true\n  archive_bucket = "org-tdgc"\n  member_role_name = "tdgc-member"\n'
        '  organizational_units = ["ou-abcd-abcdefgh"]\n  max_concurrency = 25\n}\n'
    )
    terraform(tmp_path, "init", "-backend=false")
    terraform(tmp_path, "validate")
