"""Many accounts and regions: --region repeated, --all-regions, --role-arn / --role-file, a section each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from tdgc.aws.connection import SESSION_NAME
from tdgc.local.simulator import Simulator
from tests.helpers import FAST, NOW, days

ALPHA, BETA = "111111111111", "222222222222"
ROLE_A, ROLE_B = f"arn:aws:iam::{ALPHA}:role/tdgc", f"arn:aws:iam::{BETA}:role/tdgc"


def old_family(sim: Simulator, family: str, n: int, *, region: str | None = None, account: str | None = None) -> None:
    """n ACTIVE revisions registered 100+ days ago: with keep_last = 2, all but the newest 2 are deregistered."""
    for i in range(n):
        sim.seed(family, registered_at=NOW - days(200 - i), region=region, account=account)


def plan(tdgc: Any, *args: str) -> Any:
    with freeze_time(NOW):
        return tdgc("plan", "--keep-last", "2", "--output", "json", *FAST, *args)


def test_regions_are_planned_one_after_another_in_one_report(tdgc: Any, sim: Simulator) -> None:
    old_family(sim, "east", 5)
    old_family(sim, "west", 7, region="eu-west-1")
    ran = plan(tdgc, "--region", "us-east-1", "--region", "eu-west-1")
    assert ran.code == 0, ran.err
    report = ran.json()
    assert report["regions"] == ["us-east-1", "eu-west-1"]
    sections = {t["target"]: t for t in report["targets"]}
    assert list(sections) == ["us-east-1", "eu-west-1"]
    assert sections["us-east-1"]["summary"]["deregister"] == 3 and sections["eu-west-1"]["summary"]["deregister"] == 5
    assert report["summary"]["deregister"] == 8 and report["summary"]["families"] == 2
    assert {d["arn"].split(":")[3] for d in report["decisions"]} == {"us-east-1", "eu-west-1"}
    assert all(t["status"] == "ok" and t["account"] is None for t in report["targets"])


def test_table_has_a_section_per_target(tdgc: Any, sim: Simulator) -> None:
    old_family(sim, "east", 5)
    old_family(sim, "west", 7, region="eu-west-1")
    with freeze_time(NOW):
        ran = tdgc(
            "plan", "--keep-last", "2", "--output", "table", *FAST, "--region", "us-east-1", "--region", "eu-west-1"
        )
    assert ran.code == 0, ran.err
    assert "== us-east-1\n" in ran.out and "== eu-west-1\n" in ran.out
    assert ran.out.index("== us-east-1") < ran.out.index("east:1") < ran.out.index("== eu-west-1")
    assert ran.out.index("== eu-west-1") < ran.out.index("west:1")
    assert "2 targets: 2 ok." in ran.out


def test_all_regions_covers_every_enabled_region(tdgc: Any, sim: Simulator) -> None:
    old_family(sim, "far", 4, region="ap-southeast-2")
    ran = plan(tdgc, "--all-regions", "--skip-reference", "all")
    assert ran.code == 0, ran.err
    report = ran.json()
    regions = [t["region"] for t in report["targets"]]
    assert len(regions) > 10 and "ap-southeast-2" in regions and regions == sorted(regions)
    assert report["regions"] == ["all"]
    assert report["summary"]["deregister"] == 2
    assert sim.count("DescribeRegions") == 1


def test_roles_are_assumed_with_the_external_id_and_a_session_name_naming_tdgc(
    tdgc: Any, sim: Simulator, tmp_path: Path
) -> None:
    old_family(sim, "alpha-job", 6, account=ALPHA)
    old_family(sim, "beta-job", 3, account=BETA)
    old_family(sim, "caller-job", 9)  # the caller's own account: not a target when roles are given
    ran = plan(tdgc, "--role-arn", ROLE_A, "--role-arn", ROLE_B, "--external-id", "ext-123")
    assert ran.code == 0, ran.err
    report = ran.json()
    assert [(t["target"], t["account"]) for t in report["targets"]] == [
        (f"{ALPHA} us-east-1", ALPHA),
        (f"{BETA} us-east-1", BETA),
    ]
    by_account = {t["account"]: t["summary"]["deregister"] for t in report["targets"]}
    assert by_account == {ALPHA: 4, BETA: 1}
    assert {d["arn"].split(":")[4] for d in report["decisions"]} == {ALPHA, BETA}
    assumed = [params for op, params in sim.sessions if op == "AssumeRole"]
    assert sorted(p["RoleArn"] for p in assumed) == [ROLE_A, ROLE_B]
    assert all(p["ExternalId"] == "ext-123" and p["RoleSessionName"] == SESSION_NAME for p in assumed)
    assert SESSION_NAME.startswith("tdgc-")
    assert sim.mutating_calls() == 0


def test_role_file_gives_accounts_and_their_own_external_ids(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    old_family(sim, "alpha-job", 6, account=ALPHA)
    old_family(sim, "beta-job", 3, account=BETA)
    roles = tmp_path / "roles.txt"
    roles.write_text(f"# member accounts\n{ALPHA} {ROLE_A} alpha-secret\n\n{ROLE_B}   # shared id\n")
    ran = plan(tdgc, "--role-file", str(roles), "--external-id", "shared-id")
    assert ran.code == 0, ran.err
    ids = {p["RoleArn"]: p.get("ExternalId") for op, p in sim.sessions if op == "AssumeRole"}
    assert ids == {ROLE_A: "alpha-secret", ROLE_B: "shared-id"}


def test_a_failing_target_does_not_stop_the_others_and_exits_1(tdgc: Any, sim: Simulator) -> None:
    old_family(sim, "east", 5)
    old_family(sim, "west", 7, region="eu-west-1")
    # The first target's scan is refused once and for all; the second region goes on and is applied.
    sim.inject("ListTaskDefinitions", "AccessDeniedException", times=1, message="not allowed here")
    with freeze_time(NOW):
        ran = tdgc(
            "apply",
            "--yes",
            "--keep-last",
            "2",
            "--output",
            "json",
            *FAST,
            "--region",
            "us-east-1",
            "--region",
            "eu-west-1",
        )
    assert ran.code == 1, ran.err
    report = ran.json()
    first, second = report["targets"]
    assert first["status"] == "failed" and "AccessDeniedException" in first["error"]
    assert second["status"] == "ok" and second["summary"]["results"]["done"] == 5
    assert "tdgc: us-east-1: AWS error, stopped there: AccessDeniedException: not allowed here" in ran.err
    assert any("the other targets went on" in note for note in report["notes"])
    assert len([p for op, p in sim.mutations if op == "DeregisterTaskDefinition"]) == 5


def test_every_target_failing_before_any_change_is_exit_2(tdgc: Any, sim: Simulator) -> None:
    old_family(sim, "east", 5)
    sim.inject("ListTaskDefinitions", "AccessDeniedException", times=-1, message="no")
    with freeze_time(NOW):
        ran = tdgc("apply", "--yes", "--output", "json", *FAST, "--region", "us-east-1", "--region", "eu-west-1")
    assert ran.code == 2
    assert [t["status"] for t in ran.json()["targets"]] == ["failed", "failed"]
    assert ran.err.count("(nothing was changed)") == 2 and sim.mutating_calls() == 0


def test_an_unassumable_role_fails_only_its_account(tdgc: Any, sim: Simulator) -> None:
    old_family(sim, "alpha-job", 6, account=ALPHA)
    sim.inject("AssumeRole", "AccessDenied", times=1, message="not authorized to perform sts:AssumeRole")
    ran = plan(tdgc, "--role-arn", ROLE_B, "--role-arn", ROLE_A)
    assert ran.code == 1
    statuses = [(t["account"], t["status"]) for t in ran.json()["targets"]]
    assert statuses == [(BETA, "failed"), (ALPHA, "ok")]
    assert "sts:AssumeRole" in ran.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role-arn", "arn:aws:iam::12:role/x"], "is not an IAM role ARN"),
        (["--role-arn", "not-an-arn"], "is not an IAM role ARN"),
        (["--role-arn", ROLE_A, "--role-arn", ROLE_A], "the same role is given twice"),
        (["--external-id", "x"], "--external-id: 2 to 1224"),
        (["--external-id", "good-id"], "--external-id needs --role-arn or --role-file"),
        (["--role-file", "/nonexistent/roles"], "--role-file /nonexistent/roles: cannot read"),
        (["--all-regions", "--region", "eu-west-1"], "give --region or --all-regions, not both"),
    ],
)
def test_bad_target_options_are_one_line_and_exit_2(tdgc: Any, sim: Simulator, args: list[str], message: str) -> None:
    ran = tdgc("apply", "--yes", *args, *FAST)
    assert ran.code == 2 and ran.out == ""
    assert message in ran.err and len(ran.err.strip().splitlines()) == 1 and "Traceback" not in ran.err
    assert sim.mutating_calls() == 0 and not sim.sessions


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"{BETA} {ROLE_A}", f"account {BETA} does not match the role's account {ALPHA}"),
        (f"{ROLE_A} id-1 extra", "expected [ACCOUNT_ID] ROLE_ARN [EXTERNAL_ID]"),
        ("# only a comment", "no roles in it"),
    ],
)
def test_bad_role_files_name_the_line(tdgc: Any, sim: Simulator, tmp_path: Path, line: str, message: str) -> None:
    roles = tmp_path / "roles.txt"
    roles.write_text(line + "\n")
    ran = tdgc("plan", "--role-file", str(roles), *FAST)
    assert ran.code == 2 and message in ran.err and len(ran.err.strip().splitlines()) == 1
    assert not sim.sessions
