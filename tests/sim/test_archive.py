"""Archives: atomic and idempotent writes, leftovers of killed runs removed, writability proven up front.

Against real folders and the simulator's S3. A concurrent run is a second archive writing the same revision
between our write and our read-back: the interleaving two runs at once can take.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from tdgc.aws.connection import Connection
from tdgc.aws.s3 import PROBE_BODY, S3Access, S3Protection
from tdgc.collect.archive import STALE_TEMP, DirectoryArchive, S3Archive
from tdgc.errors import UsageError
from tdgc.local.simulator import Simulator
from tests.helpers import FAST, days, write_policy

FAMILY_DIR = Path("123456789012") / "us-east-1" / "etl"
POLICY = '[defaults]\nkeep_last = 1\ndelete_after = "0 days"\nprotect_tags = {}\n'


def described(sim: Simulator) -> tuple[str, dict[str, Any]]:
    """An INACTIVE revision and its description as the scan gives it (DescribeTaskDefinition with tags)."""
    arn = sim.seed("etl", registered_at=None, status="INACTIVE", tags={"team": "data"})
    ecs = boto3.client("ecs", region_name=sim.region)
    answer = dict(ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"]))
    answer.pop("ResponseMetadata")
    return arn, answer


def described_later(description: dict[str, Any]) -> dict[str, Any]:
    """The same revision as another run describes it a moment later: deleted by then, and retagged."""
    td = {**description["taskDefinition"], "status": "DELETE_IN_PROGRESS"}
    return {**description, "taskDefinition": td, "tags": [{"key": "team", "value": "platform"}]}


def temporary_files(root: Path) -> list[Path]:
    return sorted(root.rglob(".tmp-*"))


def left_by_a_killed_run(path: Path, age: float) -> Path:
    """A half-written temporary file, `age` seconds old by the filesystem's own clock (its mtimes)."""
    path.write_bytes(b'{"tdgc": {"arn": ')
    now = path.stat().st_mtime
    os.utime(path, (now - age, now - age))
    return path


# ---- a folder ----


def test_check_removes_stale_temporary_files_and_leaves_fresh_ones_and_others(tmp_path: Path) -> None:
    family = tmp_path / FAMILY_DIR
    family.mkdir(parents=True)
    stale = [
        left_by_a_killed_run(family / ".tmp-k1ll3d.json", STALE_TEMP + 60),
        left_by_a_killed_run(tmp_path / ".tmp-pr0be.json", 3600),
    ]
    fresh = left_by_a_killed_run(family / ".tmp-wr1t1ng.json", STALE_TEMP - 60)  # may be a concurrent run's
    others = [left_by_a_killed_run(family / ".tmp-notes.txt", 3600), left_by_a_killed_run(family / "7.json", 3600)]
    DirectoryArchive(tmp_path).check()
    assert not any(p.exists() for p in stale)
    assert fresh.exists() and all(p.exists() for p in others), "only old .tmp-*.json files are tdgc's to remove"
    assert temporary_files(tmp_path) == sorted([fresh, others[0]]), "the probe is not left behind"


def test_the_next_apply_removes_what_a_killed_run_left(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    (archive / FAMILY_DIR).mkdir(parents=True)
    stale = left_by_a_killed_run(archive / FAMILY_DIR / ".tmp-k1ll3d.json", 3600)
    fresh = left_by_a_killed_run(archive / FAMILY_DIR / ".tmp-wr1t1ng.json", 1)
    now = datetime.now(UTC)
    sim.seed("etl", registered_at=now - days(10), status="INACTIVE", deregistered_at=now - days(5))
    sim.seed("etl", registered_at=now - days(1))
    ran = tdgc("apply", write_policy(tmp_path, POLICY), "--yes", "--archive", str(archive), "--output", "json", *FAST)
    assert ran.code == 0, ran.err
    assert not stale.exists() and fresh.exists()
    assert sorted(p.name for p in (archive / FAMILY_DIR).iterdir()) == [".tmp-wr1t1ng.json", "1.json"]


def test_a_failed_write_leaves_no_temporary_file(sim: Simulator, tmp_path: Path) -> None:
    arn, description = described(sim)
    (tmp_path / FAMILY_DIR / "1.json").mkdir(parents=True)  # a folder where the document would go
    with pytest.raises(OSError):
        DirectoryArchive(tmp_path).write(arn, description, sim.region)
    assert temporary_files(tmp_path) == []


def test_two_writers_of_one_revision_both_succeed_whichever_lands_last(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn, description = described(sim)
    ours, theirs = DirectoryArchive(tmp_path), DirectoryArchive(tmp_path)
    real_replace = os.replace
    landed: list[bytes] = []

    def replace_then_theirs(src: Any, dst: Any) -> None:
        real_replace(src, dst)
        landed.append(Path(dst).read_bytes())
        if len(landed) == 1:  # ours has landed; theirs is written (and read back) before ours is read back
            assert theirs.write(arn, described_later(description), sim.region) == str(dst)

    monkeypatch.setattr(os, "replace", replace_then_theirs)
    path = ours.write(arn, description, sim.region)
    assert len(landed) == 2 and landed[0] != landed[1], "two documents, not byte for byte the same"
    assert Path(path).read_bytes() == landed[1]
    assert json.loads(landed[1])["taskDefinition"]["status"] == "DELETE_IN_PROGRESS", "theirs landed last"
    assert temporary_files(tmp_path) == []


@pytest.mark.parametrize("what", ["truncated", "another content"])
def test_what_is_not_the_same_revision_does_not_pass_the_read_back(
    what: str, sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn, description = described(sim)
    real_replace = os.replace

    def replace_then_spoil(src: Any, dst: Any) -> None:
        real_replace(src, dst)
        doc = json.loads(Path(dst).read_bytes())
        doc["taskDefinition"]["containerDefinitions"][0]["image"] = "evil"
        spoilt = Path(dst).read_bytes()[:100] if what == "truncated" else json.dumps(doc).encode()
        Path(dst).write_bytes(spoilt)

    monkeypatch.setattr(os, "replace", replace_then_spoil)
    with pytest.raises(OSError, match="does not read back as written"):
        DirectoryArchive(tmp_path).write(arn, description, sim.region)
    assert temporary_files(tmp_path) == []


def test_a_folder_archive_is_readable_by_its_owner_alone(sim: Simulator, tmp_path: Path) -> None:
    """Archives can hold secrets (a task definition's `environment`): files 0600, and every folder tdgc makes
    0700, under the usual umask too (which would leave others read access)."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    root = shared / "archives" / "tdgc"  # neither folder exists yet
    arn, description = described(sim)
    umask = os.umask(0o022)
    try:
        archive = DirectoryArchive(root)
        archive.check()
        path = Path(archive.write(arn, description, sim.region))
    finally:
        os.umask(umask)

    def mode(path: Path) -> int:
        return path.stat().st_mode & 0o777

    assert path == root / FAMILY_DIR / "1.json" and mode(path) == 0o600
    made = [shared / "archives", root, *[root / FAMILY_DIR.parents[n] for n in (1, 0)], root / FAMILY_DIR]
    assert [mode(p) for p in made] == [0o700] * 5, [oct(mode(p)) for p in made]
    assert mode(shared) == 0o755, "a folder that was there is left as it was"


# ---- S3 ----


def caller(sim: Simulator, protection: S3Protection | None = None) -> S3Access:
    """The caller's S3, its own account the buckets' owner unless told otherwise."""
    connection = Connection(boto3.Session(region_name=sim.region), sim.region)
    return S3Access(connection, protection or S3Protection(sim.account_id))


def test_two_s3_writers_of_one_revision_both_succeed_whichever_lands_last(sim: Simulator) -> None:
    arn, description = described(sim)
    s3 = boto3.client("s3", region_name=sim.region)
    s3.create_bucket(Bucket="archive")
    theirs = S3Archive("s3://archive/tdgc", caller(sim))
    ours_session = caller(sim)
    put: list[str] = []

    def theirs_before_our_read_back(**_: Any) -> None:
        put.append("ours")
        if len(put) == 1:
            assert theirs.write(arn, described_later(description), sim.region).endswith("/etl/1.json")

    ours_session.connection.session.events.register("after-call.s3.PutObject", theirs_before_our_read_back)
    ours = S3Archive("s3://archive/tdgc", ours_session)
    location = ours.write(arn, description, sim.region)
    assert location == "s3://archive/tdgc/123456789012/us-east-1/etl/1.json"
    assert (sim.count("PutObject"), sim.count("GetObject")) == (2, 2), "each wrote once and read back once"
    stored = json.loads(s3.get_object(Bucket="archive", Key="tdgc/123456789012/us-east-1/etl/1.json")["Body"].read())
    assert stored["taskDefinition"]["status"] == "DELETE_IN_PROGRESS", "theirs landed last"


def test_s3_check_writes_a_probe_and_reads_it_back(sim: Simulator) -> None:
    s3 = boto3.client("s3", region_name=sim.region)
    s3.create_bucket(Bucket="archive")
    S3Archive("s3://archive/tdgc/", caller(sim)).check()
    S3Archive("s3://archive/tdgc", caller(sim)).check()  # each run overwrites the one probe
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="archive")["Contents"]]
    assert keys == ["tdgc/.tdgc-probe"]
    assert s3.get_object(Bucket="archive", Key="tdgc/.tdgc-probe")["Body"].read() == PROBE_BODY
    assert sim.count("DeleteObject") == 0, "nothing removed: no s3:DeleteObject needed"
    assert sim.mutating_calls() == 0


@pytest.mark.parametrize(
    ("bucket", "fault", "message"),
    [
        ("no-such-bucket", None, "cannot use the bucket (404"),
        ("archive", "PutObject", "cannot write there (AccessDenied: refused"),
        ("archive", "GetObject", "cannot write there (AccessDenied: refused"),
    ],
)
def test_s3_check_refuses_an_archive_it_cannot_write_and_read(
    bucket: str, fault: str | None, message: str, sim: Simulator
) -> None:
    boto3.client("s3", region_name=sim.region).create_bucket(Bucket="archive")
    if fault:
        sim.inject(fault, "AccessDenied", message="refused", times=-1)
    with pytest.raises(UsageError) as refused:
        S3Archive(f"s3://{bucket}/tdgc", caller(sim)).check()
    assert str(refused.value).startswith(f"--archive s3://{bucket}/tdgc: {message}")
    assert "\n" not in str(refused.value)


def test_s3_check_refuses_a_bucket_another_account_owns(sim: Simulator) -> None:
    sim.create_bucket("archive", account="111111111111")
    with pytest.raises(UsageError) as refused:
        S3Archive("s3://archive/tdgc", caller(sim)).check()
    assert str(refused.value) == (
        "--archive s3://archive/tdgc: cannot use the bucket (403: Forbidden; denied, or "
        "not owned by account 123456789012)"
    )
    assert [r.method for r in sim.s3_requests] == ["HEAD"], "nothing written, nothing read"
    S3Archive("s3://archive/tdgc", caller(sim, S3Protection("111111111111"))).check()  # its owner named: fine


@pytest.mark.parametrize("kms_key", [None, "alias/tdgc-archive", "key id", "key ARN"])
def test_an_s3_archive_names_the_owner_and_asks_for_encryption_in_its_two_calls(
    kms_key: str | None, sim: Simulator
) -> None:
    arn, description = described(sim)
    sim.create_bucket("archive")
    key_arn = sim.create_kms_key("alias/tdgc-archive")
    given = {"key id": key_arn.rsplit("/", 1)[1], "key ARN": key_arn}.get(kms_key or "", kms_key)
    location = S3Archive("s3://archive/tdgc", caller(sim, S3Protection(sim.account_id, given))).write(
        arn, description, sim.region
    )
    sent = [(r.method, r.expected_owner, r.encryption, r.kms_key) for r in sim.s3_requests]
    encryption = ("aws:kms", given) if given else ("AES256", None)
    assert sent == [("PUT", sim.account_id, *encryption), ("GET", sim.account_id, None, None)]
    key = location.removeprefix("s3://archive/")
    head = boto3.client("s3", region_name=sim.region).head_object(Bucket="archive", Key=key)
    assert (head["ServerSideEncryption"], head.get("SSEKMSKeyId")) == (encryption[0], given and key_arn)
