"""Progress from a real run against the simulator: the scan's bar, then the actions', cleared before the report."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tdgc.aws.pacing import Pacer
from tdgc.cli.progress import CLEAR, SHOW_CURSOR
from tdgc.cli.terminal import Terminal
from tdgc.collect.run import RunOptions, RunProgress, run
from tdgc.local.simulator import Simulator
from tdgc.policy import load_policy
from tests.helpers import FAST, write_policy
from tests.unit.test_progress import TtyIO

CONTAINERS = [{"name": "c", "image": "x", "memory": 64}]
POLICY = "[defaults]\nkeep_last = 1\ndelete_after = false\nprotect_tags = {}\n"


def test_apply_shows_the_scan_then_the_actions_and_clears_them(
    tdgc: Any, sim: Simulator, ecs: Any, tmp_path: Path
) -> None:
    for family in ("etl", "web"):
        for _ in range(6):
            ecs.register_task_definition(
                family=family, containerDefinitions=[{"name": "c", "image": "x", "memory": 64}]
            )
    err, out = TtyIO(), io.StringIO()
    terminal = Terminal(stdout=out, stderr=err, stdin_isatty=False, stdout_isatty=True, stderr_isatty=True)
    ran = tdgc("apply", write_policy(tmp_path, POLICY), "--yes", "--output", "table", *FAST, terminal=terminal)
    assert ran.code == 0, err.getvalue()
    drawn = err.getvalue()
    assert "scanning families" in drawn and "1/2" in drawn
    assert "acting" in drawn and "10/10" in drawn and "deregistered 10" in drawn
    assert drawn.endswith(CLEAR + SHOW_CURSOR), "cleared before the report, the cursor shown again"
    assert out.getvalue().startswith("tdgc apply") and "\r" not in out.getvalue()
    assert sim.count("DeregisterTaskDefinition") == 10


def test_json_output_draws_nothing(tdgc: Any, sim: Simulator, ecs: Any, tmp_path: Path) -> None:
    ecs.register_task_definition(family="etl", containerDefinitions=CONTAINERS)
    err = TtyIO()
    terminal = Terminal(stdout=io.StringIO(), stderr=err, stdout_isatty=True, stderr_isatty=True)
    assert tdgc("plan", write_policy(tmp_path, POLICY), "--output", "json", terminal=terminal).code == 0
    assert "scanning" not in err.getvalue() and "\r" not in err.getvalue()


class _Shown:
    """A progress display that notes what it was told and whether it was closed."""

    def __init__(self) -> None:
        self.updates: list[RunProgress] = []
        self.closed = False

    def __call__(self, progress: RunProgress) -> None:
        self.updates.append(progress)

    def close(self) -> None:
        self.closed = True


def test_a_run_ending_in_an_error_clears_the_progress_before_the_error_is_shown(
    sim: Simulator, ecs: Any, tmp_path: Path
) -> None:
    for _ in range(3):
        ecs.register_task_definition(family="etl", containerDefinitions=CONTAINERS)
    shown = _Shown()

    def broken(rates: Mapping[str, float]) -> Pacer:  # an error no target handles: a bug, say
        raise RuntimeError("no pacer")

    options = RunOptions(policy=load_policy(write_policy(tmp_path, POLICY)), apply=True, regions=("us-east-1",))
    with pytest.raises(RuntimeError, match="no pacer"):
        run(options, [], progress=shown, pacer_factory=broken)
    assert shown.closed
    assert sim.mutating_calls() == 3  # the three registrations above: nothing changed by the run
