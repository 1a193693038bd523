from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, settings

from tdgc.cli import main
from tdgc.simulator import Simulator, without_real_aws

# CI machines are shared: how fast examples are generated or run says nothing about tdgc, what they find does.
settings.register_profile("shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shared-machine")

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
# Tests run against an unthrottled simulator: let tdgc go as fast as it likes.
FAST = ["--rate", "read=100000", "--rate", "modify=100000", "--rate", "delete=100000"]


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test may find real credentials or config, or reach the instance metadata service."""
    for name, value in without_real_aws(tmp_path_factory.mktemp("awsconfig")).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


@pytest.fixture
def ecs(sim: Simulator) -> Any:
    return boto3.client("ecs", region_name=sim.region)


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def tdgc(capsys: pytest.CaptureFixture[str]) -> Any:
    """Run the CLI in-process as a user would; returns exit code, stdout and stderr."""

    def invoke(*args: str) -> Ran:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(list(args))
        captured = capsys.readouterr()
        code = exit_info.value.code
        return Ran(code if isinstance(code, int) else 0, captured.out, captured.err)

    return invoke


def days(n: float) -> timedelta:
    return timedelta(days=n)


def write_policy(tmp_path: Any, text: str, name: str = "policy.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(os.fspath(path))


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard retry mode without its waits: the same retries, minus the sleeping."""
    import botocore.retries.standard

    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
