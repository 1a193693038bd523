from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import freezegun
import pytest
from hypothesis import HealthCheck, settings

from tdgc import run as run_module
from tdgc.cli import main
from tdgc.pacing import Pacer
from tdgc.simulator import Behaviour, Simulator, without_real_aws

if TYPE_CHECKING:
    from .account import Expected

# CI machines are shared: how fast examples are generated or run says nothing about tdgc, what they find does.
settings.register_profile("shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shared-machine")
# pytest's own clock stays real under freeze_time, so that --durations tells the truth.
freezegun.configure(extend_ignore_list=["_pytest"])

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # the moment every test's account and plan stand at
# The highest rates a policy may set (AWS's bursts). In-process runs are unpaced anyway (`_unpaced`): these keep
# a subprocess's run quick.
FAST = ["--rate", "read=50", "--rate", "modify=20", "--rate", "delete=5"]


@pytest.fixture(autouse=True)
def _unpaced(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """The simulator throttles only when asked: a run in this process goes as fast as it likes, unless the test
    is marked `paced` (or passes its own pacer). Pacing itself is tested in test_pacing.py."""
    if request.node.get_closest_marker("paced") is None:
        monkeypatch.setattr(run_module, "Pacer", lambda rates: Pacer({}))


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test may find real credentials or config, or reach the instance metadata service."""
    for name, value in without_real_aws(tmp_path_factory.mktemp("awsconfig")).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


@pytest.fixture
def behaviour(request: pytest.FixtureRequest) -> Behaviour:
    """How the simulator answers where AWS documents no answer: the hardest combination, unless the test is
    marked EVERY_BEHAVIOUR."""
    chosen: Behaviour = getattr(request, "param", Behaviour())
    return chosen


# For the end-to-end tests: each runs under a set of behaviours that gives every pair of answers.
EVERY_BEHAVIOUR = pytest.mark.parametrize("behaviour", Behaviour.pairwise(), ids=Behaviour.label, indirect=True)


@pytest.fixture
def sim(behaviour: Behaviour) -> Iterator[Simulator]:
    with Simulator(behaviour=behaviour) as simulator:
        yield simulator
    assert simulator.shape_errors == [], "every answer fits botocore's output model"


def end_state(sim: Simulator) -> dict[str, str]:
    """Each revision's status, "deleted" for one being deleted or already gone: the same end state whichever
    way the simulator finishes deletes."""
    return {arn: "deleted" if sim.deleted(status) else status for arn, status in sim.statuses().items()}


@pytest.fixture
def account(sim: Simulator) -> Iterator[Expected]:
    """tests/account.py's account, seeded as it stands at NOW; the clock stays frozen there for the test, so
    that a plan or apply decides at the moment the ages were measured from."""
    from .account import seed_account  # not at the top: tests/account.py imports NOW from here

    with freezegun.freeze_time(NOW):
        yield seed_account(sim)


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


class FakeClock:
    """A monotonic clock that moves only when something sleeps on it: pass `clock` and `clock.sleep` (to a
    Pacer, a run, a context) and a run paced at AWS's rates takes as long as it would, in no real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self._lock = threading.Lock()  # a run's lanes sleep on it from their own threads

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += seconds


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
