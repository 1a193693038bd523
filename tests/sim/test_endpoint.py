"""The installed `tdgc` command in a subprocess, against the simulator served over HTTP, as a user runs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tdgc.local.simulator import Simulator
from tests.account import POLICY, seed_account
from tests.helpers import EVERY_BEHAVIOUR, FAST, write_policy


def tdgc_command() -> list[str]:
    script = Path(sys.executable).parent / "tdgc"
    return [str(script)] if script.exists() else [shutil.which("tdgc") or "tdgc"]


def subprocess_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return env


@EVERY_BEHAVIOUR
@pytest.mark.slow
def test_plan_and_apply_over_http(sim: Simulator, tmp_path: Path) -> None:
    # The subprocess runs on the real clock, so the account is seeded as it stands now; no age in it is
    # within minutes of a limit.
    expected = seed_account(sim, datetime.now(UTC), big=40, fillers=3)  # the subprocess paces itself: a small one
    policy = write_policy(tmp_path, POLICY)
    env = subprocess_env()
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


@pytest.mark.slow
def test_sigterm_during_apply_writes_the_report_so_far_and_the_next_apply_finishes(
    sim: Simulator, tmp_path: Path
) -> None:
    expected = seed_account(sim, datetime.now(UTC), big=60, fillers=3)
    policy = write_policy(tmp_path, POLICY)
    report = tmp_path / "report.json"
    env = subprocess_env()
    with sim.serve() as url:
        env["AWS_ENDPOINT_URL"] = url
        # Two deregisters a second: the signal comes while there is plenty left to do.
        command = [
            sys.executable,
            "-m",
            "tdgc",
            "apply",
            policy,
            "--yes",
            "--report",
            str(report),
            "--archive",
            str(tmp_path / "archive"),
            "--output",
            "json",
            "--rate",
            "modify=2",
        ]
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while sim.count("DeregisterTaskDefinition") < 4 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
        assert process.returncode == 143, err
        last = err.strip().splitlines()[-1]
        assert re.fullmatch(r"tdgc: interrupted \(SIGTERM\) after \d+ deregistered and \d+ deleted; what was .*", last)
        written = json.loads(report.read_text())
        assert written == json.loads(out) and written["interrupted"] == "SIGTERM"
        done = [o for o in written["outcomes"] if o["result"] == "done"]
        deregistered = {a for a, s in sim.statuses().items() if s == "INACTIVE"} & expected.of("deregister")
        assert 4 <= len(done) < len(expected.of("deregister")) and {o["arn"] for o in done} == deregistered, (
            "every change made is reported, and none was started after the signal"
        )
        counts = written["summary"]
        assert counts["deregistered"] == len(done) and counts["deleted"] > 0
        said = f"after {counts['deregistered']} deregistered and {counts['deleted']} deleted;"
        assert said in last, "stderr says what was done"

        finish = subprocess.run(
            [
                sys.executable,
                "-m",
                "tdgc",
                "apply",
                policy,
                "--yes",
                "--archive",
                str(tmp_path / "archive"),
                "--output",
                "json",
                *FAST,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert finish.returncode == 0, finish.stderr
        statuses = sim.statuses()
        assert all(statuses[a] != "ACTIVE" for a in expected.of("deregister")), "the second apply finished the job"


def test_an_interruption_during_start_up_is_one_line() -> None:
    # The signal arrives while the command imports its modules (made certain by sending it from the import
    # itself), before any of its own code runs: the handler is installed first.
    script = (
        "import builtins, os, signal, sys\n"
        "real = builtins.__import__\n"
        "def importing(name, *args, **kwargs):\n"
        "    if name == 'tdgc.cli':\n"
        "        builtins.__import__ = real\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = importing\n"
        "sys.argv = ['tdgc', 'plan']\n"
        "from tdgc.__main__ import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=subprocess_env(), timeout=120
    )
    assert done.returncode == 143 and done.stdout == ""
    assert done.stderr == "tdgc: interrupted (SIGTERM) while starting; nothing was done\n"
