"""The installed `tdgc` command in a subprocess, against the simulator served over HTTP, as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from tdgc.simulator import Simulator

from .account import POLICY, seed_account
from .conftest import EVERY_BEHAVIOUR, FAST, write_policy


def tdgc_command() -> list[str]:
    script = Path(sys.executable).parent / "tdgc"
    return [str(script)] if script.exists() else [shutil.which("tdgc") or "tdgc"]


@EVERY_BEHAVIOUR
def test_plan_and_apply_over_http(sim: Simulator, tmp_path: Path) -> None:
    # The subprocess runs on the real clock, so the account is seeded as it stands now; no age in it is
    # within minutes of a limit.
    expected = seed_account(sim, datetime.now(UTC))
    policy = write_policy(tmp_path, POLICY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)  # fmt: skip
    with sim.serve() as url:
        env["AWS_ENDPOINT_URL"] = url

        def tdgc(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*tdgc_command(), *args, *FAST], capture_output=True, text=True, env=env, timeout=300)

        plan = tdgc("plan", policy, "--output", "json")
        assert plan.returncode == 0, plan.stderr
        planned = {d["arn"]: d["action"] for d in json.loads(plan.stdout)["decisions"]}
        assert len(planned) == len(expected.actions)
        assert {a for a, x in planned.items() if x == "delete"} == expected.of("delete")
        assert sim.mutating_calls() == 0

        applied = tdgc("apply", policy, "--yes", "--archive", str(tmp_path / "archive"), "--output", "csv")
        assert applied.returncode == 0, applied.stderr
        rows = applied.stdout.splitlines()
        assert rows[0].startswith("arn,family,revision,status,action,reason")
        assert sum(",pending," in r for r in rows) == len(expected.of("delete"))
        assert len(list((tmp_path / "archive").rglob("*.json"))) == len(expected.of("delete"))

        again = tdgc("plan", policy, "--output", "jsonl")
        summary = json.loads(again.stdout.splitlines()[-1])["summary"]
        assert (summary["deregister"], summary["delete"]) == (0, 0), "a second plan has nothing to do"

        mutations = sim.mutating_calls()
        second = tdgc("apply", policy, "--yes", "--archive", str(tmp_path / "archive"), "--output", "json")
        assert second.returncode == 0, second.stderr
        assert json.loads(second.stdout)["summary"]["results"]["failed"] == 0
        assert sim.mutating_calls() == mutations, "a second apply changes nothing"
