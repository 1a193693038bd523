"""Every failure path leaves the account consistent, and the next run finishes the job.

Each test injects a fault into the simulator, runs apply (again where needed), and checks the end state
equals that of a clean run, with every deleted revision archived first.
"""

from __future__ import annotations

import io
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tdgc.collect import archive as archive_module
from tdgc.collect.run import RunOptions, run
from tdgc.local.simulator import Simulator
from tdgc.policy import load_policy
from tdgc.report.writers import JsonWriter
from tests.account import POLICY, Expected
from tests.helpers import EVERY_BEHAVIOUR, FAST, NOW, Ran, end_state, write_policy

pytestmark = EVERY_BEHAVIOUR


@pytest.fixture
def start_state(account: Expected, sim: Simulator) -> dict[str, str]:
    """Each revision's status in the shared account before any run: what one no action touches ends as."""
    return end_state(sim)


def clean_end_state(expected: Expected, before: dict[str, str]) -> dict[str, str]:
    final = {"deregister": "INACTIVE", "delete": "deleted"}
    return {arn: final.get(action, before[arn]) for arn, action in expected.actions.items()}


def assert_converged(sim: Simulator, expected: Expected, before: dict[str, str], archive: Path | None) -> None:
    state = end_state(sim)
    assert state == clean_end_state(expected, before)
    if archive is not None:
        deleting = {arn for arn, status in state.items() if status == "deleted"}
        archived = {
            f"arn:aws:ecs:us-east-1:123456789012:task-definition/{p.parent.name}:{p.stem}"
            for p in archive.rglob("*.json")
        }
        assert deleting <= archived, "nothing deleted that was not archived first"


def apply(tdgc: Any, tmp_path: Path, archive: Path | None = None) -> Ran:
    extra = ["--archive", str(archive)] if archive else []
    ran: Ran = tdgc("apply", write_policy(tmp_path, POLICY), "--yes", "--output", "json", *extra, *FAST)
    return ran


@pytest.mark.slow
def test_throttling_storm(
    tdgc: Any, sim: Simulator, account: Expected, start_state: dict[str, str], tmp_path: Path, fast_retries: None
) -> None:
    archive = tmp_path / "archive"
    sim.inject("DeleteTaskDefinitions", "ThrottlingException", times=20)
    sim.inject("DeregisterTaskDefinition", "ThrottlingException", times=20)
    first = apply(tdgc, tmp_path, archive)
    assert first.code == 1
    failed = [o for o in first.json()["outcomes"] if o["result"] == "failed"]
    assert failed and all("ThrottlingException" in o["error"] for o in failed)
    assert apply(tdgc, tmp_path, archive).code == 0
    assert_converged(sim, account, start_state, archive)


@pytest.mark.slow
def test_server_errors(
    tdgc: Any, sim: Simulator, account: Expected, start_state: dict[str, str], tmp_path: Path, fast_retries: None
) -> None:
    sim.inject("DeregisterTaskDefinition", "ServerException", status=500, times=3, message="internal error")
    sim.inject("DeleteTaskDefinitions", "ServiceUnavailableException", status=503, times=-1)
    first = apply(tdgc, tmp_path)
    assert first.code == 1
    results = {o["action"]: set() for o in first.json()["outcomes"]}
    for o in first.json()["outcomes"]:
        results[o["action"]].add(o["result"])
    assert results == {"deregister": {"done"}, "delete": {"failed"}}, "a transient 5xx is retried, a lasting one fails"
    sim.clear_faults()
    assert apply(tdgc, tmp_path).code == 0
    assert_converged(sim, account, start_state, None)


def test_connection_dropped_mid_batch(
    tdgc: Any, sim: Simulator, account: Expected, start_state: dict[str, str], tmp_path: Path, fast_retries: None
) -> None:
    sim.drop_connection("DeleteTaskDefinitions", times=3)
    sim.drop_connection("DeregisterTaskDefinition", times=3)
    archive = tmp_path / "archive"
    ran = apply(tdgc, tmp_path, archive)
    assert ran.code == 0, ran.err
    assert_converged(sim, account, start_state, archive)


def test_killed_between_archive_and_delete(
    tdgc: Any,
    sim: Simulator,
    account: Expected,
    start_state: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    archive = tmp_path / "archive"
    written = []
    original = archive_module.DirectoryArchive.write

    def write_then_die(self: Any, arn: str, description: Any, region: str) -> str:
        path = original(self, arn, description, region)
        written.append(arn)
        if len(written) == 15:
            raise KeyboardInterrupt  # the process is killed after this archive, before its delete
        return path

    monkeypatch.setattr(archive_module.DirectoryArchive, "write", write_then_die)
    killed = apply(tdgc, tmp_path, archive)
    assert killed.code == 130 and "interrupted" in killed.err
    deleting = {arn for arn, status in end_state(sim).items() if status == "deleted"}
    assert deleting and deleting <= set(written[:10]), "only the first full batch went out"
    monkeypatch.setattr(archive_module.DirectoryArchive, "write", original)
    assert apply(tdgc, tmp_path, archive).code == 0
    assert_converged(sim, account, start_state, archive)


@pytest.mark.slow
def test_two_runs_at_once(sim: Simulator, account: Expected, start_state: dict[str, str], tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    policy = replace(load_policy(write_policy(tmp_path, POLICY)), rates={})  # unpaced
    options = RunOptions(policy=policy, apply=True, archive=str(archive))
    codes: list[int] = []
    errors: list[BaseException] = []

    def one_run() -> None:
        try:
            codes.append(run(options, [JsonWriter(io.StringIO())], now=NOW).exit_code)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(codes) == 2
    assert_converged(sim, account, start_state, archive)
    assert run(options, [JsonWriter(io.StringIO())], now=NOW).summary.results["failed"] == 0
