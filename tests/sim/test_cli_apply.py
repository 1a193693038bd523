"""`tdgc apply` against the simulated account: the planned state, archived, paced, in batches."""

from __future__ import annotations

import io
import json
import re
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from freezegun import freeze_time

from tdgc.collect import archive as archive_module
from tdgc.collect.run import RunOptions, run
from tdgc.errors import UsageError
from tdgc.job import Job, run_job
from tdgc.local.simulator import Simulator
from tdgc.model import Action
from tdgc.policy import load_policy
from tdgc.report.writers import JsonWriter
from tests.account import POLICY, Expected
from tests.helpers import EVERY_BEHAVIOUR, FAST, NOW, at_a_terminal, days, end_state, write_policy


def statuses(sim: Simulator) -> dict[str, str]:
    return end_state(sim)


@EVERY_BEHAVIOUR
@pytest.mark.slow
def test_apply_leaves_exactly_the_planned_state(tdgc: Any, sim: Simulator, account: Expected, tmp_path: Path) -> None:
    policy = write_policy(tmp_path, POLICY)
    archive = tmp_path / "archive"
    planned = {d["arn"]: d["action"] for d in tdgc("plan", policy, "--output", "json", *FAST).json()["decisions"]}
    before = statuses(sim)
    ran = tdgc("apply", policy, "--yes", "--archive", str(archive), "--output", "json", *FAST)
    assert ran.code == 0, ran.err
    report = ran.json()
    assert report["mode"] == "apply"
    assert {d["arn"]: d["action"] for d in report["decisions"]} == planned == account.actions
    after = statuses(sim)
    assert after == {
        arn: {"keep": before[arn], "deregister": "INACTIVE", "delete": "deleted"}[action]
        for arn, action in account.actions.items()
    }
    outcomes = {o["arn"]: (o["action"], o["result"]) for o in report["outcomes"]}
    assert outcomes == {
        arn: (a, "pending" if a == "delete" else "done") for arn, a in account.actions.items() if a != "keep"
    }
    assert report["summary"]["results"] == {
        "done": len(account.of("deregister")),
        "pending": len(account.of("delete")),
        "failed": 0,
        "skipped": 0,
    }

    # One deregister per call; deletes at most ten per call, each archived first.
    deregistered = [p["taskDefinition"] for op, p in sim.mutations if op == "DeregisterTaskDefinition"]
    assert sorted(deregistered) == sorted(account.of("deregister"))
    batches = [p["taskDefinitions"] for op, p in sim.mutations if op == "DeleteTaskDefinitions"]
    assert all(1 <= len(b) <= 10 for b in batches)
    assert sorted(a for b in batches for a in b) == sorted(account.of("delete"))
    assert len(batches) == 4 + 3 + 1  # big: 40, dbt-run: 30, tagged: 2
    for arn in account.of("delete"):
        family, revision = arn.rsplit("/", 1)[1].split(":")
        saved = json.loads((archive / "123456789012" / "us-east-1" / family / f"{revision}.json").read_text())
        assert saved["taskDefinition"]["taskDefinitionArn"] == arn
        assert saved["taskDefinition"]["containerDefinitions"][0]["image"]
        assert saved["tdgc"]["arn"] == arn and saved["tdgc"]["region"] == "us-east-1"
        assert "tags" in saved
    tagged = (archive / "123456789012" / "us-east-1" / "tagged").glob("*.json")
    assert {json.loads(p.read_text())["tags"][0]["value"] for p in tagged} == {"a"}

    with freeze_time(NOW):
        again = tdgc("plan", policy, "--output", "json", *FAST).json()["summary"]
        assert (again["deregister"], again["delete"]) == (0, 0), "a second plan has nothing to do"
        mutations = len(sim.mutations)
        second = tdgc("apply", policy, "--yes", "--archive", str(archive), "--output", "json", *FAST)
    assert second.code == 0 and second.json()["summary"]["results"]["failed"] == 0
    assert len(sim.mutations) == mutations, "a second apply does nothing"


def test_archive_is_written_before_each_delete(
    tdgc: Any, sim: Simulator, account: Expected, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written_at: dict[str, int] = {}
    original = archive_module.DirectoryArchive.write

    def spy(self: Any, arn: str, description: Any, region: str) -> Path:
        path = original(self, arn, description, region)
        written_at[arn] = len(sim.mutations)  # how many mutations had happened when the file was complete
        return path

    monkeypatch.setattr(archive_module.DirectoryArchive, "write", spy)
    assert (
        tdgc(
            "apply",
            write_policy(tmp_path, POLICY),
            "--yes",
            "--archive",
            str(tmp_path / "a"),
            "--output",
            "json",
            *FAST,
        ).code
        == 0
    )
    for index, (op, params) in enumerate(sim.mutations):
        if op == "DeleteTaskDefinitions":
            assert all(written_at[arn] <= index for arn in params["taskDefinitions"])
    assert set(written_at) == account.of("delete")


def test_a_revision_that_cannot_be_archived_is_not_deleted(
    tdgc: Any, sim: Simulator, account: Expected, tmp_path: Path
) -> None:
    archive = tmp_path / "a"
    (archive / "123456789012" / "us-east-1").mkdir(parents=True)
    (archive / "123456789012" / "us-east-1" / "tagged").write_text("a file where the family's folder would go")
    ran = tdgc("apply", write_policy(tmp_path, POLICY), "--yes", "--archive", str(archive), "--output", "json", *FAST)
    assert ran.code == 1
    failed = {o["arn"] for o in ran.json()["outcomes"] if o["result"] == "failed"}
    tagged = {a for a in account.of("delete") if "/tagged:" in a}
    assert failed == tagged and len(tagged) == 2
    after = statuses(sim)
    assert all(after[a] == "INACTIVE" for a in tagged)
    assert all(after[a] == "deleted" for a in account.of("delete") - tagged)


@pytest.mark.slow
def test_per_item_delete_failures_are_reported_and_the_rest_go_on(
    tdgc: Any, sim: Simulator, account: Expected, tmp_path: Path
) -> None:
    policy = write_policy(tmp_path, POLICY)
    stuck = sorted(account.of("delete"))[:2]
    for arn in stuck:
        sim.fail_delete(arn, "The specified task definition is in use.")
    ran = tdgc("apply", policy, "--yes", "--output", "json", *FAST)
    assert ran.code == 1
    report = ran.json()
    failed = {o["arn"]: o["error"] for o in report["outcomes"] if o["result"] == "failed"}
    assert failed == dict.fromkeys(stuck, "The specified task definition is in use.")
    assert report["summary"]["results"]["pending"] == len(account.of("delete")) - 2
    assert report["summary"]["results"]["done"] == len(account.of("deregister"))

    sim.clear_faults()
    with freeze_time(NOW):
        retry = tdgc("apply", policy, "--yes", "--output", "json", *FAST)
    assert retry.code == 0
    assert {o["arn"] for o in retry.json()["outcomes"]} == set(stuck), "the next run finishes the job"


def test_throttled_calls_are_retried(tdgc: Any, sim: Simulator, account: Expected, tmp_path: Path) -> None:
    sim.inject("DeleteTaskDefinitions", "ThrottlingException", times=2)
    sim.inject("DeregisterTaskDefinition", "ThrottlingException", times=1)
    sim.inject("ListTaskDefinitions", "ThrottlingException", times=1)
    ran = tdgc("apply", write_policy(tmp_path, POLICY), "--yes", "--output", "json", *FAST)
    assert ran.code == 0, ran.err
    assert ran.json()["summary"]["results"]["failed"] == 0
    assert sim.count("DeleteTaskDefinitions") == 8 + 2
    assert sim.count("DeregisterTaskDefinition") == len(account.of("deregister")) + 1
    assert all(s == "deleted" for a, s in statuses(sim).items() if a in account.of("delete"))


def test_apply_needs_yes_off_a_terminal(tdgc: Any, sim: Simulator, account: Expected) -> None:
    ran = tdgc("apply", "--output", "json", *FAST)
    assert ran.code == 2 and ran.out == ""
    assert ran.err.strip() == "tdgc: apply changes the account: pass --yes, or run it on a terminal to confirm"
    assert sim.mutating_calls() == 0


@pytest.mark.parametrize(("answer", "mutated"), [("n\n", False), pytest.param("y\n", True, marks=pytest.mark.slow)])
def test_apply_asks_on_a_terminal(
    answer: str,
    mutated: bool,
    tdgc: Any,
    sim: Simulator,
    account: Expected,
    tmp_path: Path,
) -> None:
    ran = tdgc("apply", write_policy(tmp_path, POLICY), "--output", "json", *FAST, terminal=at_a_terminal(answer))
    assert ran.code == 0
    assert "TOTAL (126 families)" in ran.err, "the plan is shown before the question"
    counts = f"{len(account.of('deregister'))} and delete {len(account.of('delete'))}"
    # The screen says what apply will do, and that without --archive a delete is for good; not how to apply.
    assert f"tdgc apply will deregister {counts} of the revisions above.\n" in ran.err
    assert "They are not archived (no --archive): a deleted revision cannot be brought back." in ran.err
    assert "carries it out" not in ran.err
    assert f"Deregister {counts} revisions? [y/N]: " in ran.err
    assert (sim.mutating_calls() > 0) is mutated
    if not mutated:
        assert "Nothing was changed." in ran.err and ran.out == ""


def test_only_confirmed_actions_are_applied(sim: Simulator, account: Expected, tmp_path: Path) -> None:
    """What a person confirmed is the most that is done: a decision made since is skipped."""
    policy = replace(load_policy(write_policy(tmp_path, POLICY)), rates={})  # unpaced
    approved = {arn: Action(a) for arn, a in account.actions.items() if a == "delete" and "/big:" in arn}
    out = io.StringIO()
    with freeze_time(NOW):
        result = run(RunOptions(policy=policy, apply=True, approved=approved), [JsonWriter(out)])
    report = json.loads(out.getvalue())
    results = {o["arn"]: o["result"] for o in report["outcomes"]}
    assert {a for a, r in results.items() if r == "pending"} == set(approved)
    assert {a for a, r in results.items() if r == "skipped"} == set(account.actions) - set(approved) - account.of(
        "keep"
    )
    assert result.exit_code == 0
    assert {op for op, _ in sim.mutations} == {"DeleteTaskDefinitions"}


# ---- destinations: proven writable before the first change; a report lost afterwards is not exit 2 ----

SMALL_POLICY = '[defaults]\nkeep_last = 1\nderegister_after = "0 days"\ndelete_after = "0 days"\nprotect_tags = {}\n'


def small_account(sim: Simulator) -> None:
    """Three INACTIVE revisions to delete and two of three ACTIVE ones to deregister, dated from today."""
    now = datetime.now(UTC)
    for n in range(3):
        sim.seed("etl", registered_at=now - days(30 - n), status="INACTIVE", deregistered_at=now - days(20))
    for n in range(3):
        sim.seed("etl", registered_at=now - days(10 - n))
    boto3.client("s3", region_name=sim.region).create_bucket(Bucket="tdgc")


@pytest.mark.parametrize(
    ("option", "location", "fault", "said"),
    [
        ("--report", "s3://no-such-bucket/reports/", None, "cannot use the bucket (404"),
        ("--report", "s3://tdgc/reports/", "PutObject", "cannot write there (AccessDenied: Access Denied)"),
        ("--report", "s3://tdgc/reports/r.json", "GetObject", "cannot write there (AccessDenied: Access Denied)"),
        (
            "--archive",
            "s3://tdgc/archive",
            "PutObject",
            "--archive s3://tdgc/archive: cannot write there (AccessDenied",
        ),
    ],
)
def test_an_s3_destination_that_cannot_be_written_is_refused_before_any_change(
    option: str, location: str, fault: str | None, said: str, tdgc: Any, sim: Simulator, tmp_path: Path
) -> None:
    small_account(sim)
    if fault:
        sim.inject(fault, "AccessDenied", message="Access Denied", times=-1)
    ran = tdgc("apply", write_policy(tmp_path, SMALL_POLICY), "--yes", option, location, "--output", "json", *FAST)
    assert ran.code == 2 and said in ran.err and ran.err.count("\n") == 1, ran.err
    assert sim.mutating_calls() == 0


def test_a_job_whose_report_bucket_refuses_puts_changes_nothing(sim: Simulator) -> None:
    small_account(sim)
    sim.inject("PutObject", "AccessDenied", message="Access Denied", times=-1)
    with pytest.raises(UsageError, match=r"^report s3://tdgc/reports/tdgc-apply-\S+: cannot write there"):
        run_job(Job(policy_text=SMALL_POLICY, apply=True, report="s3://tdgc/reports/", archive="s3://tdgc/archive"))
    assert sim.mutating_calls() == 0


def test_a_report_bucket_removed_mid_run_exits_1_and_the_report_is_kept(
    tdgc: Any, sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_account(sim)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the report that could not go is kept
    s3 = boto3.client("s3", region_name=sim.region)

    def remove_the_bucket() -> None:
        s3.delete_object(Bucket="tdgc", Key="reports/.tdgc-probe")
        s3.delete_bucket(Bucket="tdgc")

    sim.after("DeregisterTaskDefinition", remove_the_bucket)
    ran = tdgc(
        "apply",
        write_policy(tmp_path, SMALL_POLICY),
        "--yes",
        "--report",
        "s3://tdgc/reports/",
        "--output",
        "json",
        *FAST,
    )
    assert ran.code == 1, "the account was changed: not 2, which says nothing was"
    assert ran.json()["summary"]["results"] == {"done": 2, "pending": 3, "failed": 0, "skipped": 0}
    said = ran.err.strip()
    assert said.startswith("tdgc: report s3://tdgc/reports/tdgc-apply-") and "\n" not in said
    assert "cannot upload (NoSuchBucket" in said
    kept = Path(said.rsplit("; kept in ", 1)[1])
    assert kept.parent == tmp_path and kept.read_text() == ran.out


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a file every write to fails")
def test_a_report_file_that_cannot_be_written_mid_run_exits_1(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    small_account(sim)
    ran = tdgc("apply", write_policy(tmp_path, SMALL_POLICY), "--yes", "--report", "/dev/full", *FAST)
    assert ran.code == 1 and ran.err.strip() == "tdgc: report /dev/full: cannot write (No space left on device)"
    assert sorted(op for op, _ in sim.mutations) == ["DeleteTaskDefinitions"] + ["DeregisterTaskDefinition"] * 2


def test_a_job_whose_report_is_lost_after_the_changes_says_so_with_exit_1(sim: Simulator) -> None:
    small_account(sim)
    s3 = boto3.client("s3", region_name=sim.region)

    def remove_the_bucket() -> None:
        s3.delete_object(Bucket="tdgc", Key="reports/.tdgc-probe")
        s3.delete_bucket(Bucket="tdgc")

    sim.after("DeregisterTaskDefinition", remove_the_bucket)
    summary = run_job(Job(policy_text=SMALL_POLICY, apply=True, report="s3://tdgc/reports/"))
    assert summary["exit_code"] == 1 and summary["report"] is None, "the account was changed: never 2"
    assert "cannot upload (NoSuchBucket" in summary["notes"][-1]
    assert summary["summary"]["results"]["done"] == 2


def test_a_destination_that_cannot_be_written_is_refused_before_a_person_is_asked(
    tdgc: Any, sim: Simulator, tmp_path: Path
) -> None:
    small_account(sim)
    sim.inject("PutObject", "AccessDenied", message="Access Denied", times=-1)
    policy = write_policy(tmp_path, SMALL_POLICY)
    ran = tdgc("apply", policy, "--archive", "s3://tdgc/archive", *FAST, terminal=at_a_terminal("y\n"))
    assert ran.code == 2 and "cannot write there (AccessDenied" in ran.err
    assert "revisions?" not in ran.err, "no question whose yes could not be carried out"
    assert sim.mutating_calls() == 0


# ---- what tdgc keeps in S3 may hold secrets: only in a bucket the expected account owns, always encrypted ----

OTHER_ACCOUNT = "111111111111"
REFUSED_BUCKET = "cannot use the bucket (403: Forbidden; denied, or not owned by account 123456789012)"


@pytest.mark.parametrize(
    ("option", "location"), [("--archive", "s3://theirs/archive"), ("--report", "s3://theirs/reports/")]
)
def test_a_bucket_another_account_owns_is_refused_before_any_change(
    option: str, location: str, tdgc: Any, sim: Simulator, tmp_path: Path
) -> None:
    """A bucket deleted and made again under the same name by another account: nothing is written there."""
    small_account(sim)
    sim.create_bucket("theirs", account=OTHER_ACCOUNT)
    ran = tdgc("apply", write_policy(tmp_path, SMALL_POLICY), "--yes", option, location, "--output", "json", *FAST)
    assert ran.code == 2 and REFUSED_BUCKET in ran.err and ran.err.count("\n") == 1, ran.err
    assert sim.mutating_calls() == 0
    theirs = [(r.method, r.expected_owner) for r in sim.s3_requests if r.bucket == "theirs"]
    assert theirs == [("HEAD", "123456789012")], "refused at HeadBucket: nothing was written there"


def test_archive_bucket_owner_names_the_account_that_must_own_the_buckets(
    tdgc: Any, sim: Simulator, tmp_path: Path
) -> None:
    small_account(sim)  # and the bucket tdgc, the caller's own
    sim.create_bucket("central", account=OTHER_ACCOUNT)  # a log-archive account's, say
    policy = write_policy(tmp_path, SMALL_POLICY)
    ran = tdgc(
        "apply",
        policy,
        "--yes",
        "--archive",
        "s3://central/archive",
        "--report",
        "s3://central/reports/",
        "--archive-bucket-owner",
        OTHER_ACCOUNT,
        "--output",
        "json",
        *FAST,
    )
    assert ran.code == 0, ran.err
    assert ran.json()["summary"]["results"] == {"done": 2, "pending": 3, "failed": 0, "skipped": 0}
    central = [r for r in sim.s3_requests if r.bucket == "central"]
    assert {r.expected_owner for r in central} == {OTHER_ACCOUNT}, "every call, the report's upload too"
    assert sim.count("GetCallerIdentity") == 1, "the target's own: the owner was given, not asked for"

    # The caller's own bucket is refused too, once another account is named: the owner is checked, not trusted.
    ran = tdgc(
        "apply", policy, "--yes", "--archive", "s3://tdgc/archive", "--archive-bucket-owner", OTHER_ACCOUNT, *FAST
    )
    assert ran.code == 2 and f"denied, or not owned by account {OTHER_ACCOUNT})" in ran.err


@pytest.mark.parametrize("kms", ["none", "alias by flag", "ARN in the policy", "flag over the policy"])
def test_every_object_written_to_s3_is_encrypted_as_asked_with_no_call_more(
    kms: str, tdgc: Any, sim: Simulator, tmp_path: Path
) -> None:
    small_account(sim)
    key = sim.create_kms_key("alias/tdgc-archive")
    other_key = sim.create_kms_key("alias/not-this-one")
    policy, flags = SMALL_POLICY, []
    if kms in ("ARN in the policy", "flag over the policy"):
        policy += f'[safety]\narchive_kms_key = "{key if kms == "ARN in the policy" else other_key}"\n'
    if kms in ("alias by flag", "flag over the policy"):
        flags = ["--archive-kms-key", "alias/tdgc-archive"]
    ran = tdgc(
        "apply",
        write_policy(tmp_path, policy),
        "--yes",
        "--archive",
        "s3://tdgc/archive",
        "--report",
        "s3://tdgc/reports/",
        "--output",
        "json",
        *flags,
        *FAST,
    )
    assert ran.code == 0, ran.err
    asked = ran.json()["policy"]["safety"]["archive_kms_key"]
    assert (
        asked
        == {
            "none": None,
            "alias by flag": "alias/tdgc-archive",
            "ARN in the policy": key,
            "flag over the policy": "alias/tdgc-archive",
        }[kms]
    )
    s3 = boto3.client("s3", region_name=sim.region)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="tdgc")["Contents"])
    archived = [f"archive/123456789012/us-east-1/etl/{n}.json" for n in (1, 2, 3)]
    assert keys[:5] == ["archive/.tdgc-probe", *archived, "reports/.tdgc-probe"]
    assert len(keys) == 6 and keys[5].startswith("reports/tdgc-apply-")
    wanted = ("AES256", None) if kms == "none" else ("aws:kms", key)  # S3 keeps the key's ARN, whatever was sent
    for name in keys:  # the archives, both probes and the report
        head = s3.head_object(Bucket="tdgc", Key=name)
        assert (head["ServerSideEncryption"], head.get("SSEKMSKeyId")) == wanted, name
    # No call more than without encryption: per archived revision one PutObject and one GetObject; a probe
    # (HeadBucket, PutObject, GetObject) for each destination; the report's upload; and one GetCallerIdentity,
    # for the buckets' owner, whose answer the target's first call reuses.
    assert [sim.count(op) for op in ("HeadBucket", "PutObject", "GetObject")] == [2, 2 + 3 + 1, 2 + 3]
    assert sim.count("GetCallerIdentity") == 1


def test_a_kms_key_that_cannot_be_used_is_refused_before_any_change(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    small_account(sim)
    ran = tdgc(
        "apply",
        write_policy(tmp_path, SMALL_POLICY),
        "--yes",
        "--archive",
        "s3://tdgc/archive",
        "--archive-kms-key",
        "alias/no-such-key",
        *FAST,
    )
    assert ran.code == 2 and ran.err.count("\n") == 1, ran.err
    assert "--archive s3://tdgc/archive: cannot write there (KMS.NotFoundException: Invalid keyId" in ran.err
    assert sim.mutating_calls() == 0


def test_a_job_checks_the_bucket_owner_and_its_archives_bucket(sim: Simulator) -> None:
    small_account(sim)
    with pytest.raises(UsageError, match=r"^archive bucket owner '12-34': expected an AWS account id"):
        run_job(Job(policy_text=SMALL_POLICY, apply=True, archive="s3://tdgc/archive", archive_bucket_owner="12-34"))
    assert sim.calls.total() == 0
    sim.create_bucket("theirs", account=OTHER_ACCOUNT)
    with pytest.raises(UsageError, match=rf"^--archive s3://theirs/archive: {re.escape(REFUSED_BUCKET)}$"):
        run_job(Job(policy_text=SMALL_POLICY, apply=True, archive="s3://theirs/archive"))
    assert sim.mutating_calls() == 0
