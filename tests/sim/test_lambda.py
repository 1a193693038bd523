"""The Lambda handler, called as EventBridge Scheduler calls it, against the simulator."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from tdgc.aws.pacing import Pacer
from tdgc.collect import run as run_module
from tdgc.errors import UsageError
from tdgc.lambda_handler import RunFailed, handler, time_budget
from tdgc.local.simulator import Simulator
from tests.helpers import HANDLER_ENVIRONMENT, FakeClock, days

# What the SAM template's and the Terraform module's schedule sends: its Input, the context attributes filled in.
SCHEDULER_EVENT = {
    "schedule": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/tdgc",
    "scheduled_time": "2026-11-23T03:00:00Z",
    "execution_id": "c6f2b1f0-2b0c-4a5e-9d55-3f3f9bd2a0a1",
    "attempt": "1",
}
FAST_POLICY = """\
[rate]
read = 50
modify = 20
delete = 5
[defaults]
keep_last = 2
delete_after = "30 days"
"""


@dataclass
class FakeContext:
    """The parts of the Lambda context the handler reads; `clock` runs from the moment it was made (pass the
    run the same clock)."""

    seconds: float
    function_name: str = "tdgc"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:tdgc"
    aws_request_id: str = "8f5e6c2a-1b2c-4d5e-8f90-123456789abc"
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        self.deadline = self.clock() + self.seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - self.clock()) * 1000))


def seed(sim: Simulator, family: str, active: int, inactive: int = 0) -> None:
    now = datetime.now(UTC)
    for n in range(inactive):
        sim.seed(family, registered_at=now - days(900 - n), status="INACTIVE", deregistered_at=now - days(100))
    for n in range(active):
        sim.seed(family, registered_at=now - days(400 - n))


def log_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, sim: Simulator) -> pytest.MonkeyPatch:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    for name in HANDLER_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.paced  # the budget is what runs out: the run paces itself (on a fake clock) as a real one does
def test_with_60_seconds_left_it_ends_within_them_and_returns_the_summary(
    env: pytest.MonkeyPatch, sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # More than a minute of work at the default share of the buckets (modify 0.5/s): the budget must stop it.
    # The invocation's minute is a fake one: the context, the run and its pacer read one clock, which moves only
    # when the pacer waits, so the run takes as long as AWS's rates would make it, in no real time.
    clock = FakeClock()
    env.setattr(run_module, "Pacer", lambda rates: Pacer(rates, clock=clock, sleep=clock.sleep))
    seed(sim, "etl-nightly", active=150, inactive=40)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="tdgc-archive")
    env.setenv("TDGC_DRY_RUN", "false")
    env.setenv("TDGC_ARCHIVE", "s3://tdgc-archive/archive")
    env.setenv("TDGC_REPORT", "s3://tdgc-archive/reports/")
    env.setenv("TDGC_POLICY", '[defaults]\nkeep_last = 2\ndelete_after = "30 days"\n')
    context = FakeContext(60, clock=clock)
    started = clock()
    result = handler(SCHEDULER_EVENT, context, clock=clock)
    took = clock() - started
    assert 30 < took < 60, f"took {took:.1f} s of a 60 s invocation: paced, and stopped by the budget"
    assert context.get_remaining_time_in_millis() > 0

    assert result["mode"] == "apply" and result["exit_code"] == 0
    # How much of the plan was decided before the minute ran out is a race, not a promise: the lanes' waits move
    # the fake clock in no real time while the scan's describes take real time (a real clock charges both). The
    # run stops deciding when the budget ends ("the next run goes on"), so the summary holds what was decided,
    # and every decided action is either done or deferred.
    summary = result["summary"]
    planned = summary["deregister"] + summary["delete"]
    assert summary["deregister"] <= 148 and summary["delete"] <= 40 and summary["revisions"] <= 190
    done = summary["results"]["done"] + summary["results"]["pending"]
    assert 10 < done < planned, "some done, the rest deferred to the next run"
    assert summary["results"]["skipped"] == planned - done and summary["results"]["failed"] == 0
    assert any("time budget reached" in note for note in result["notes"])
    assert len([op for op, _ in sim.mutations if op in ("DeregisterTaskDefinition", "DeleteTaskDefinitions")]) > 0

    # The report is in S3 under the prefix, and says what the summary says.
    key = result["report"].removeprefix("s3://tdgc-archive/")
    assert key.startswith("reports/tdgc-apply-") and key.endswith(".json")
    report = json.loads(s3.get_object(Bucket="tdgc-archive", Key=key)["Body"].read())
    assert report["summary"] == summary and len(report["decisions"]) == summary["revisions"]
    # Each revision deleted was archived first; beside the archives, the probe that proved the prefix writable.
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="tdgc-archive", Prefix="archive/").get("Contents", [])]
    assert len([k for k in keys if k.endswith(".json")]) == summary["results"]["pending"]
    assert set(keys) - {k for k in keys if k.endswith(".json")} == {"archive/.tdgc-probe"}

    lines = log_lines(capsys.readouterr().err)
    actions = [line for line in lines if line["event"] in ("deregistered", "delete accepted")]
    assert len(actions) == done and all(line["arn"].startswith("arn:aws:ecs:") for line in actions)
    last = lines[-1]
    assert last["event"] == "tdgc summary" and last["level"] == "info"
    assert (last["deregister"], last["delete"], last["exit_code"], last["report"]) == (
        summary["deregister"],
        summary["delete"],
        0,
        result["report"],
    )
    invoked = next(line for line in lines if line["event"] == "tdgc invoked")
    assert invoked["schedule"] == SCHEDULER_EVENT["schedule"] and invoked["dry_run"] is False


def test_time_budget_leaves_a_margin() -> None:
    assert 50 < time_budget(FakeContext(60)) < 60
    assert 880 < time_budget(FakeContext(900)) <= 890


def test_dry_run_by_default_changes_nothing(env: pytest.MonkeyPatch, sim: Simulator) -> None:
    seed(sim, "etl", active=20)
    env.setenv("TDGC_POLICY", FAST_POLICY)
    result = handler(SCHEDULER_EVENT, FakeContext(60))
    assert result["mode"] == "plan" and result["summary"]["deregister"] == 18
    assert sim.mutating_calls() == 0 and result["report"] is None


def test_the_event_narrows_dry_run_regions_and_families(env: pytest.MonkeyPatch, sim: Simulator) -> None:
    seed(sim, "etl", active=10)
    seed(sim, "web", active=10)
    now = datetime.now(UTC)
    for region in ("eu-west-1", "ap-southeast-2"):
        for n in range(6):
            sim.seed("west", registered_at=now - days(300 - n), region=region)
    env.setenv("TDGC_POLICY", FAST_POLICY)
    env.setenv("TDGC_DRY_RUN", "false")
    env.setenv("TDGC_REGIONS", "us-east-1,eu-west-1,ap-southeast-2")
    event = {**SCHEDULER_EVENT, "regions": ["us-east-1", "eu-west-1"], "families": ["etl", "west"]}
    result = handler(event, FakeContext(60))
    assert result["mode"] == "apply"
    assert [t["region"] for t in result["targets"]] == ["us-east-1", "eu-west-1"]
    assert [t["summary"]["results"]["done"] for t in result["targets"]] == [8, 4]
    assert {p["taskDefinition"].split("/")[1].split(":")[0] for op, p in sim.mutations} == {"etl", "west"}
    assert {p["taskDefinition"].split(":")[3] for op, p in sim.mutations} == {"us-east-1", "eu-west-1"}

    # dry_run true narrows an applying function to a plan.
    before = sim.mutating_calls()
    result = handler({**SCHEDULER_EVENT, "dry_run": True, "regions": "ap-southeast-2"}, FakeContext(60))
    assert result["mode"] == "plan" and result["summary"]["deregister"] == 4
    assert sim.mutating_calls() == before


# Each way an event could ask for more than the function's environment configures. The environment is the
# fixture's (dry run, the function's region us-east-1) plus the column's.
@pytest.mark.parametrize(
    ("event", "environment", "message"),
    [
        ({"dry_run": False}, {}, "'dry_run': false asks to apply, and TDGC_DRY_RUN is true"),
        ({"dry_run": False}, {"TDGC_DRY_RUN": "true"}, "'dry_run': false asks to apply"),
        ({"dry_run": False}, {"TDGC_EVENT_MAY_WIDEN": "regions"}, "'dry_run': false asks to apply"),
        ({"detail-type": "Scheduled Event", "source": "x", "detail": {"dry_run": False}}, {}, "'dry_run': false"),
        ({"apply": True}, {}, "'apply' is set by the function's environment (TDGC_DRY_RUN), not by an event"),
        ({"regions": ["eu-west-1"]}, {}, "'regions' asks for eu-west-1, outside the function's region (us-east-1)"),
        (
            {"regions": "all"},
            {"TDGC_REGIONS": "us-east-1,eu-west-1"},
            "asks for all, outside TDGC_REGIONS (us-east-1, ",
        ),
        ({"regions": ["us-east-1", "ap-south-1"]}, {"TDGC_REGIONS": "us-east-1"}, "asks for ap-south-1, outside"),
        ({"regions": ["mars-north-9x"]}, {"TDGC_EVENT_MAY_WIDEN": "apply"}, "asks for mars-north-9x, outside"),
        ({"archive": "s3://elsewhere/a"}, {"TDGC_DRY_RUN": "false"}, "'archive' is set by the function's environment"),
        ({"report": "s3://elsewhere/r/"}, {}, "'report' is set by the function's environment (TDGC_REPORT)"),
        ({"policy": "[defaults]\nkeep_last = 0\n"}, {}, "'policy' is set by the function's environment (TDGC_POLICY/"),
        ({"policy_parameter": "/other"}, {}, "'policy_parameter' is set by the function's environment"),
        ({"role_arns": ["arn:aws:iam::210987654321:role/x"]}, {}, "'role_arns' is set by the function's environment"),
        ({"external_id": "guess"}, {}, "'external_id' is set by the function's environment (TDGC_EXTERNAL_ID)"),
        ({"endpoint_url": "http://127.0.0.1:1"}, {}, "'endpoint_url' is set by the function's environment"),
    ],
)
def test_an_event_that_would_widen_the_run_is_refused_before_any_call(
    env: pytest.MonkeyPatch,
    sim: Simulator,
    capsys: pytest.CaptureFixture[str],
    event: Any,
    environment: dict[str, str],
    message: str,
) -> None:
    seed(sim, "etl", active=10)
    env.setenv("TDGC_POLICY", FAST_POLICY)
    for name, value in environment.items():
        env.setenv(name, value)
    with pytest.raises(UsageError) as refused:
        handler({**SCHEDULER_EVENT, **event}, FakeContext(60))
    assert message in str(refused.value)
    assert str(refused.value).endswith("an event may narrow a run, never widen it")
    assert sum(sim.calls.values()) == 0  # nothing run: not even the first call to a target
    lines = log_lines(capsys.readouterr().err)
    assert [line["event"] for line in lines] == ["tdgc refused"]  # one line, and no "tdgc invoked" before it
    assert lines[0]["level"] == "error" and lines[0]["error"] == str(refused.value) and lines[0]["exit_code"] == 2


def test_the_environment_may_let_an_event_apply_and_choose_regions(
    env: pytest.MonkeyPatch, sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    for n in range(6):
        sim.seed("west", registered_at=now - days(300 - n), region="eu-west-1")
    env.setenv("TDGC_POLICY", FAST_POLICY)
    env.setenv("TDGC_EVENT_MAY_WIDEN", " apply , regions ")
    result = handler({**SCHEDULER_EVENT, "dry_run": False, "regions": ["eu-west-1"]}, FakeContext(60))
    assert result["mode"] == "apply"
    assert [(t["region"], t["summary"]["results"]["done"]) for t in result["targets"]] == [("eu-west-1", 4)]
    invoked = next(line for line in log_lines(capsys.readouterr().err) if line["event"] == "tdgc invoked")
    assert invoked["from_event"] == ["dry_run", "regions"] and invoked["dry_run"] is False


def test_policy_from_a_parameter(env: pytest.MonkeyPatch, sim: Simulator) -> None:
    seed(sim, "etl", active=10)
    boto3.client("ssm", region_name="us-east-1").put_parameter(Name="/tdgc/policy", Value=FAST_POLICY, Type="String")
    env.setenv("TDGC_POLICY_PARAMETER", "/tdgc/policy")
    result = handler({}, FakeContext(60))
    assert result["summary"]["deregister"] == 8


def test_policy_file_relative_to_the_function_root(env: pytest.MonkeyPatch, sim: Simulator, tmp_path: Any) -> None:
    seed(sim, "etl", active=10)
    (tmp_path / "policy.toml").write_text(FAST_POLICY.replace("keep_last = 2", "keep_last = 7"))
    env.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
    env.setenv("TDGC_POLICY_FILE", "policy.toml")
    assert handler(None, FakeContext(60))["summary"]["deregister"] == 3


@pytest.mark.parametrize(
    ("event", "environment", "message"),
    [
        ({"dry_run": "no"}, {}, "'dry_run' must be true or false"),
        ({"dryrun": True}, {}, "unknown key 'dryrun'"),
        ({"regions": [3]}, {}, "'regions' must be a list of names"),
        ({"regions": ["mars-north-9x"]}, {"TDGC_REGIONS": "all"}, "unknown AWS region"),
        (["not", "an", "object"], {}, "expected a JSON object"),
        ({}, {"TDGC_DRY_RUN": "maybe"}, "TDGC_DRY_RUN: expected true or false"),
        ({}, {"TDGC_EVENT_MAY_WIDEN": "archive"}, "TDGC_EVENT_MAY_WIDEN: 'archive' is not one of apply, regions"),
        ({}, {"TDGC_POLICY": "x", "TDGC_POLICY_FILE": "p.toml"}, "set one of"),
        ({}, {"TDGC_POLICY": "[defaults]\nkeep_last = -1\n"}, "TDGC_POLICY:2"),
        ({}, {"TDGC_POLICY_PARAMETER": "/missing"}, "policy parameter /missing: cannot read it (ParameterNotFound"),
        ({}, {"TDGC_ROLE_ARNS": "arn:aws:iam::1:role/x"}, "is not an IAM role ARN"),
        ({}, {"TDGC_REPORT": "s3://no-such-bucket/r/"}, "cannot use the bucket"),
        ({}, {"TDGC_DRY_RUN": "false", "TDGC_ARCHIVE": "s3://no-such-bucket/a"}, "cannot use the bucket"),
        ({}, {"TDGC_ARCHIVE_BUCKET_OWNER": "12345"}, "TDGC_ARCHIVE_BUCKET_OWNER '12345': expected an AWS account id"),
        ({}, {"TDGC_ARCHIVE_BUCKET_OWNER": "\u0661" * 12}, "TDGC_ARCHIVE_BUCKET_OWNER '\u0661"),
    ],
)
def test_bad_input_is_refused_before_any_change(
    env: pytest.MonkeyPatch,
    sim: Simulator,
    capsys: pytest.CaptureFixture[str],
    event: Any,
    environment: dict[str, str],
    message: str,
) -> None:
    seed(sim, "etl", active=10)
    for name, value in environment.items():
        env.setenv(name, value)
    with pytest.raises(UsageError, match=None) as refused:
        handler(event, FakeContext(60))
    assert message in str(refused.value)
    assert sim.mutating_calls() == 0
    last = log_lines(capsys.readouterr().err)[-1]
    assert last["event"] == "tdgc refused" and message in last["error"] and last["exit_code"] == 2


def test_a_failed_run_raises_after_logging_its_summary(
    env: pytest.MonkeyPatch, sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(sim, "etl", active=0, inactive=3)
    for td in sim.revisions("INACTIVE"):
        sim.fail_delete(td.arn, "The specified task definition is in use.")
    env.setenv("TDGC_POLICY", FAST_POLICY)
    env.setenv("TDGC_DRY_RUN", "false")
    with pytest.raises(RunFailed, match="tdgc apply exited 1: 3 actions failed of 3"):
        handler(SCHEDULER_EVENT, FakeContext(60))
    last = log_lines(capsys.readouterr().err)[-1]
    assert last["event"] == "tdgc summary" and last["failed"] == 3 and last["exit_code"] == 1


OTHER_ACCOUNT = "111111111111"


def test_archives_and_reports_go_only_to_a_bucket_the_expected_account_owns(
    env: pytest.MonkeyPatch, sim: Simulator
) -> None:
    """The function's account (from its ARN: no STS call for it) must own the bucket, unless
    TDGC_ARCHIVE_BUCKET_OWNER names another: a bucket of that name made by any other account gets nothing."""
    seed(sim, "etl", active=2, inactive=3)
    sim.create_bucket("tdgc-archive", account=OTHER_ACCOUNT)
    env.setenv("TDGC_POLICY", FAST_POLICY)
    env.setenv("TDGC_DRY_RUN", "false")
    env.setenv("TDGC_ARCHIVE", "s3://tdgc-archive/archive")
    env.setenv("TDGC_REPORT", "s3://tdgc-archive/reports/")
    with pytest.raises(UsageError) as refused:
        handler(SCHEDULER_EVENT, FakeContext(60))
    assert str(refused.value).startswith("report s3://tdgc-archive/reports/tdgc-apply-")
    assert "cannot use the bucket (403: Forbidden; denied, or not owned by account 123456789012)" in str(refused.value)
    assert sim.mutating_calls() == 0 and sim.count("GetCallerIdentity") == 0
    assert [(r.method, r.expected_owner) for r in sim.s3_requests] == [("HEAD", "123456789012")]

    env.setenv("TDGC_ARCHIVE_BUCKET_OWNER", OTHER_ACCOUNT)  # the organisation's log-archive account, say
    result = handler(SCHEDULER_EVENT, FakeContext(60))
    assert result["exit_code"] == 0 and result["summary"]["results"]["pending"] == 3
    assert sim.count("GetCallerIdentity") == 1, "the target's own first call; none for the bucket's owner"
    assert {r.expected_owner for r in sim.s3_requests[1:]} == {OTHER_ACCOUNT}
    assert {r.encryption for r in sim.s3_requests if r.method == "PUT"} == {"AES256"}
