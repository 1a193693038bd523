"""What tests share besides fixtures: the moment every account stands at, the CLI's result, a fake clock."""

from __future__ import annotations

import io
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tdgc.cli.terminal import Terminal
from tdgc.local.simulator import Behaviour, Simulator

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # the moment every test's account and plan stand at
# The highest rates a policy may set (AWS's bursts). In-process runs are unpaced anyway (conftest's `_unpaced`):
# these keep a subprocess's run quick.
FAST = ["--rate", "read=50", "--rate", "modify=20", "--rate", "delete=5"]

# The environment the Lambda handler reads: its contract (tests/deploy/checks.py), and what a test clears first.
HANDLER_ENVIRONMENT = {
    "TDGC_POLICY_FILE",
    "TDGC_POLICY",
    "TDGC_POLICY_PARAMETER",
    "TDGC_DRY_RUN",
    "TDGC_REGIONS",
    "TDGC_ROLE_ARNS",
    "TDGC_EXTERNAL_ID",
    "TDGC_ARCHIVE",
    "TDGC_REPORT",
    "TDGC_ARCHIVE_KMS_KEY",
    "TDGC_EVENT_MAY_WIDEN",
    "TDGC_ARCHIVE_BUCKET_OWNER",
    "TDGC_MEMBER_ROLE_NAME",
    "TDGC_PARALLEL",
}

# For the end-to-end tests: each runs under a set of behaviours that gives every pair of answers.
EVERY_BEHAVIOUR = pytest.mark.parametrize("behaviour", Behaviour.pairwise(), ids=Behaviour.label, indirect=True)


def end_state(sim: Simulator) -> dict[str, str]:
    """Each revision's status, "deleted" for one being deleted or already gone: the same end state whichever
    way the simulator finishes deletes."""
    return {arn: "deleted" if sim.deleted(status) else status for arn, status in sim.statuses().items()}


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def at_a_terminal(answers: str) -> Terminal:
    """A person at a terminal, who types `answers`; what the command writes goes to pytest's capture."""
    return Terminal(stdin=io.StringIO(answers), stdin_isatty=True, stderr_isatty=True)


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


# CloudWatch's units (the EMF specification: a MetricDefinition's Unit must be one of these).
_RATED = ("Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits")
_RATED += ("Terabits", "Count")
EMF_UNITS = {"Seconds", "Microseconds", "Milliseconds", "Percent", "None", *_RATED, *(f"{u}/Second" for u in _RATED)}


def emf_problems(document: Any) -> list[str]:
    """What in `document` breaks the Embedded Metric Format specification's required fields: `_aws` with an
    integer `Timestamp` (ms) and `CloudWatchMetrics`, each directive a `Namespace`, `Dimensions` (arrays of at
    most 30 keys, each a string member at the top level) and `Metrics` (at most 100, each a `Name` whose value
    is a number at the top level, and a known `Unit`)."""
    problems: list[str] = []
    meta = document.get("_aws") if isinstance(document, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("Timestamp"), int) or meta["Timestamp"] < 0:
        return ["_aws.Timestamp: not a non-negative integer"]
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return ["_aws.CloudWatchMetrics: not a non-empty array"]
    for d in directives:
        if not isinstance(d.get("Namespace"), str) or not 1 <= len(d["Namespace"]) <= 1024:
            problems.append(f"Namespace: {d.get('Namespace')!r}")
        for keys in d.get("Dimensions", [None]):
            if not isinstance(keys, list) or len(keys) > 30:
                problems.append(f"DimensionSet: {keys!r}")
                continue
            missing = [k for k in keys if not isinstance(document.get(k), str) or not document[k]]
            problems += [f"dimension {k!r}: no string value at the top level" for k in missing]
        metrics = d.get("Metrics")
        if not isinstance(metrics, list) or not 1 <= len(metrics) <= 100:
            problems.append(f"Metrics: {metrics!r}")
            continue
        for m in metrics:
            if m.get("Unit") not in EMF_UNITS or not isinstance(m.get("Name"), str) or not m["Name"]:
                problems.append(f"MetricDefinition: {m!r}")
            elif isinstance(document.get(m["Name"]), bool) or not isinstance(document.get(m["Name"]), int | float):
                problems.append(f"metric {m['Name']!r}: no numeric value at the top level")
    return problems
