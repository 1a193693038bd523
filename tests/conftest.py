"""Fixtures for tdgc's tests; the simulator's own come from tdgc.local.pytest_plugin, the rest from tests.helpers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import freezegun
import pytest
from hypothesis import HealthCheck, settings

from tdgc.aws.pacing import Pacer
from tdgc.cli import main
from tdgc.cli.terminal import Terminal
from tdgc.collect import run as run_module
from tdgc.local.simulator import Simulator
from tests.account import Expected, seed_account
from tests.helpers import NOW, Ran

pytest_plugins = ("tdgc.local.pytest_plugin",)

# CI machines are shared: how fast examples are generated or run says nothing about tdgc, what they find does.
settings.register_profile("shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shared-machine")
# pytest's own clock stays real under freeze_time, so that --durations tells the truth.
freezegun.configure(extend_ignore_list=["_pytest"])


@pytest.fixture(autouse=True)
def _unpaced(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """The simulator throttles only when asked: a run in this process goes as fast as it likes, unless the test
    is marked `paced` (or passes its own pacer). Pacing itself is tested in test_pacing.py."""
    if request.node.get_closest_marker("paced") is None:
        monkeypatch.setattr(run_module, "Pacer", lambda rates: Pacer({}))


@pytest.fixture
def account(sim: Simulator) -> Iterator[Expected]:
    """tests/account.py's account, seeded as it stands at NOW; the clock stays frozen there for the test, so
    that a plan or apply decides at the moment the ages were measured from."""
    with freezegun.freeze_time(NOW):
        yield seed_account(sim)


@pytest.fixture
def ecs(sim: Simulator) -> Any:
    return boto3.client("ecs", region_name=sim.region)


@pytest.fixture
def tdgc(capsys: pytest.CaptureFixture[str]) -> Any:
    """Run the CLI in-process as a user would; returns exit code, stdout and stderr. `terminal` is where it
    runs (default: pytest's captured streams, none of them a terminal)."""

    def invoke(*args: str, terminal: Terminal | None = None) -> Ran:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(list(args), terminal=terminal)
        captured = capsys.readouterr()
        code = exit_info.value.code
        return Ran(code if isinstance(code, int) else 0, captured.out, captured.err)

    return invoke


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard retry mode without its waits: the same retries, minus the sleeping."""
    import botocore.retries.standard

    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
