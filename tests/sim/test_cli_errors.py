"""Bad input of every kind: one line on stderr, exit 2, no traceback, no mutating call."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tdgc.local.simulator import Simulator
from tests.helpers import FAST, NOW, Ran, days

POLICIES = {
    "unknown key": ("[defaults]\nkeep_lats = 5\n", ":2, key 'defaults.keep_lats': unknown key"),
    "wrong type": ('[defaults]\nkeep_last = "five"\n', ":2, key 'defaults.keep_last': must be a whole number"),
    "bad duration": (
        '[defaults]\ndelete_after = "6 moons"\n',
        ":2, key 'defaults.delete_after': '6 moons': unknown unit",
    ),
    "negative keep_last": ("[defaults]\nkeep_last = -2\n", ":2, key 'defaults.keep_last': must be 0 or more"),
    "rule without families": ("[[rules]]\nkeep_last = 1\n", ":1, key 'rules[0]': a rule needs families"),
    "not TOML": ("[defaults\n", ":1: not valid TOML"),
    "nested too deeply": ("a = " + "[" * 100_000 + "]" * 100_000 + "\n", ": not a policy: nested too deeply"),
    "bad KMS key": (
        '[safety]\narchive_kms_key = "my key"\n',
        ":2, key 'safety.archive_kms_key': expected a KMS key ARN, key id or alias",
    ),
    "duration beyond range": (
        '[[rules]]\nfamilies = ["web*"]\nderegister_after = "10000 years"\n',
        ":3, key 'rules[0].deregister_after': '10000 years' is too long: at most 100 years",
    ),
}


def seeded(sim: Simulator) -> None:
    for n in range(12):
        sim.seed(
            "f",
            registered_at=NOW - days(400 - n),
            status="INACTIVE" if n < 6 else "ACTIVE",
            deregistered_at=NOW - days(300),
        )


def assert_refused(ran: Ran, fragment: str) -> None:
    assert ran.code == 2, (ran.code, ran.err)
    assert ran.out == ""
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1, ran.err
    assert lines[0].startswith("tdgc: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in ran.err


@pytest.mark.parametrize("kind", POLICIES)
def test_bad_policy_files(kind: str, tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    seeded(sim)
    text, fragment = POLICIES[kind]
    path = tmp_path / "p.toml"
    path.write_text(text)
    assert_refused(tdgc("apply", str(path), "--yes", *FAST), f"{path}{fragment}")
    assert sim.calls.total() == 0, "policy errors come before any AWS call"


def test_missing_policy_file(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    seeded(sim)
    assert_refused(tdgc("apply", str(tmp_path / "nope.toml"), "--yes"), "nope.toml: no such policy file")
    assert sim.calls.total() == 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--keep-last", "-1"], "--keep-last"),
        (["--keep-last", "many"], "'many' is not a valid integer"),
        (["--deregister-after", "soon"], "'soon' is not a duration"),
        (["--delete-after", "5 m"], "--delete-after: '5 m': unit 'm' is ambiguous"),
        (["--output", "xml"], "'xml' is not one of"),
        (["--log-format", "xml"], "'xml' is not one of"),
        (["--protect-tag", "=v"], "--protect-tag '=v': expected KEY or KEY=VALUE"),
        (["--rate", "modify=0"], "--rate 'modify=0'"),
        (["--rate", "turbo=5"], "--rate 'turbo=5'"),
        (["--rate", "modify=1e-300"], "--rate 'modify=1e-300': must be between 0.001 and 20"),
        (["--rate", "read=1e999"], "--rate 'read=1e999': must be between 0.001 and 50"),
        (["--rate", "read=\u0663"], "the rate must be a number of calls per second"),
        (["--deregister-after", "10000y"], "'10000y' is too long: at most 100 years"),
        (["--delete-after", "99999999999 days"], "--delete-after: '99999999999 days' is too long"),
        (["--delete-after", "P99999999Y"], "--delete-after: 'P99999999Y' is too long"),
        (["--time-budget", "10000 years"], "'10000 years' is too long: at most 100 years"),
        (["--time-budget", "14m"], "'14m': unit 'm' is ambiguous; write 'min' or 'mo'"),
        (["--dry-run", "--plan", "plan.json"], "--dry-run plans and --plan checks what is applied: give one"),
        (["--frobnicate"], "--frobnicate"),
        (["a.toml", "--config", "b.toml"], "two policy files given"),
        (["a.toml", "b.toml"], "unexpected extra argument"),
        (["--archive-bucket-owner", "12345"], "--archive-bucket-owner '12345': expected an AWS account id, 12 digits"),
        (["--archive-bucket-owner", "\u0661" * 12], "--archive-bucket-owner '\u0661"),
        (["--archive-kms-key", "tdgc-archive"], "--archive-kms-key: expected a KMS key ARN, key id or alias"),
        (["--archive-kms-key", "arn:aws:kms:us-east-1:1234:key/x"], "--archive-kms-key: expected a KMS key ARN"),
    ],
)
def test_bad_flags(args: list[str], fragment: str, tdgc: Any, sim: Simulator) -> None:
    seeded(sim)
    assert_refused(tdgc("apply", "--yes", *args), fragment)
    assert sim.calls.total() == 0


@pytest.mark.parametrize("command", [["register", "taskdef.json"], ["usage"], ["restore", "archived.json"]])
def test_a_command_that_works_in_one_region_refuses_two(command: list[str], tdgc: Any, sim: Simulator) -> None:
    """--region is the same option everywhere (repeatable); these commands say so rather than take the last."""
    seeded(sim)
    ran = tdgc(*command, "--region", "us-east-1", "--region", "eu-west-1")
    assert_refused(ran, f"tdgc: {command[0]} works in one region: give --region once")
    assert sim.calls.total() == 0


def test_a_plan_nested_too_deeply_is_refused(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    seeded(sim)
    plan = tmp_path / "plan.json"
    plan.write_text("[" * 100_000 + "]" * 100_000)
    assert_refused(tdgc("apply", "--yes", "--plan", str(plan), *FAST), "nested too deeply")
    assert sim.calls.total() == 0


@pytest.mark.parametrize("url", ["not-a-url", "ftp://host", "http://", "https://host:99999", "localhost:4566"])
def test_an_endpoint_url_of_the_wrong_form_is_refused(
    url: str, tdgc: Any, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded(sim)
    assert_refused(tdgc("plan", "--output", "json", "--endpoint-url", url), f"--endpoint-url {url!r}: expected http")
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    assert_refused(tdgc("plan", "--output", "json"), f"AWS_ENDPOINT_URL {url!r}: expected http")
    assert sim.calls.total() == 0


def test_an_endpoint_out_of_reach_says_so_in_one_line(tdgc: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once; no network is reached.
    ran = tdgc("apply", "--yes", "--region", "us-east-1", "--endpoint-url", "http://127.0.0.1:9", "--output", "json")
    assert ran.code == 2 and ran.json()["targets"][0]["status"] == "failed", "a whole report, saying so"
    assert ran.err.strip().splitlines()[-1] == (
        "tdgc: us-east-1: AWS error, stopped there: cannot reach http://127.0.0.1:9/ (nothing was changed)"
    )
    assert "grant" not in ran.err and "reference source unreadable" not in ran.err


def test_unknown_command(tdgc: Any) -> None:
    assert_refused(tdgc("prune"), "No such command 'prune'")


def test_missing_credentials(tdgc: Any) -> None:
    # No simulator: the autouse fixture leaves no credentials anywhere, and nothing reaches the network.
    assert_refused(tdgc("apply", "--yes", "--region", "us-east-1"), "no AWS credentials found")


def test_unknown_profile(tdgc: Any) -> None:
    assert_refused(tdgc("plan", "--profile", "nobody"), "AWS profile 'nobody' not found")


def test_missing_region(tdgc: Any, sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    seeded(sim)
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert_refused(tdgc("apply", "--yes"), "no AWS region")
    assert sim.calls.total() == 0


@pytest.mark.parametrize("region", ["mars-north-1", "us-east", "US-EAST-1", "../etc"])
def test_unresolvable_region(region: str, tdgc: Any, sim: Simulator) -> None:
    seeded(sim)
    assert_refused(tdgc("apply", "--yes", "--region", region), f"unknown AWS region {region!r}")
    # Before the caller's account is asked for (the S3 buckets' owner) or a destination probed, too.
    assert_refused(
        tdgc("apply", "--yes", "--region", region, "--archive", "s3://b/a", "--report", "s3://b/r/"),
        f"unknown AWS region {region!r}",
    )
    assert sim.calls.total() == 0


def test_unwritable_report_and_archive(tdgc: Any, sim: Simulator, tmp_path: Path) -> None:
    seeded(sim)
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_refused(tdgc("apply", "--yes", "--report", str(blocker / "r.json"), *FAST), "report ")
    assert_refused(tdgc("apply", "--yes", "--archive", str(blocker / "dir"), *FAST), "--archive")
    assert sim.mutating_calls() == 0


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--archive", "s3:/bucket/x"),
        ("--archive", "s3://"),
        ("--report", "S3:/bucket/r.json"),
        ("--terraform-state", "s3:/bucket/terraform.tfstate"),
    ],
)
def test_a_mistyped_s3_location_is_refused_not_taken_for_a_folder(
    option: str, value: str, tdgc: Any, sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded(sim)
    monkeypatch.chdir(tmp_path)
    assert_refused(tdgc("apply", "--yes", option, value, *FAST), "expected s3://BUCKET/")
    assert sim.mutating_calls() == 0 and not any(tmp_path.iterdir()), "no folder made"


def test_credentials_rejected_by_aws(tdgc: Any, sim: Simulator) -> None:
    seeded(sim)
    sim.inject(
        "ListTaskDefinitions",
        "UnrecognizedClientException",
        times=-1,
        message="The security token included in the request is invalid.",
    )
    ran = tdgc("apply", "--yes", "--output", "json", *FAST)
    assert ran.code == 2
    assert ran.err.strip().splitlines()[-1] == (
        "tdgc: us-east-1: AWS error, stopped there: UnrecognizedClientException: The security token included in "
        "the request is invalid. (nothing was changed)"
    )
    assert sim.mutating_calls() == 0


safe_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
flag_values = st.sampled_from(
    [
        "--keep-last",
        "--deregister-after",
        "--delete-after",
        "--protect-tag",
        "--rate",
        "--output",
        "--family",
        "--exclude-family",
        "--log-format",
        "--time-budget",
        "--max-actions",
        "--skip-reference",
        "--terraform-state",
        "--report",
    ]
)
# Values at and beyond the edges of every range, and digits that are not ASCII.
edge_values = st.sampled_from(
    [
        "0",
        "-1",
        "1e-300",
        "1e300",
        "nan",
        "inf",
        "99999999999",
        "10000 years",
        "P99999999Y",
        "100 years",
        "36525 days",
        "\u0663 days",
        "\u00b2",
        "read=1e-300",
        "modify=1e999",
        "modify=\u0663",
        "s3:/b/k",
        "s3://",
    ]
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(flags=st.lists(st.tuples(flag_values, edge_values | safe_text), min_size=1, max_size=3))
def test_fuzzed_flags_never_mutate_and_never_trace(
    tdgc: Any, sim: Simulator, flags: list[tuple[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any flag values: either a valid plan or one line and exit 2; never a traceback or a mutation."""
    monkeypatch.chdir(tmp_path)  # a --report, a --terraform-state are relative paths
    args = [part for flag, value in flags for part in (flag, value)]
    ran = tdgc("plan", *args, *FAST)
    assert "Traceback" not in ran.err
    if ran.code != 0:
        assert ran.code == 2 and len(ran.err.strip().splitlines()) == 1, ran.err
    assert sim.mutating_calls() == 0


def test_python_dash_m_and_version() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [sys.executable, "-m", "tdgc", "--version"], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0 and done.stdout.startswith("tdgc, version ")
    done = subprocess.run(
        [sys.executable, "-m", "tdgc", "plan", "--keep-last", "x"], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_no_command_shows_help(tdgc: Any) -> None:
    ran = tdgc()
    assert ran.code == 0 and ran.out.startswith("Usage: tdgc") and "tdgc plan" in ran.out and ran.err == ""
