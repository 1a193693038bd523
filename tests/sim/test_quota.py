"""The quota in every report, against the simulator: each family's revisions held, highest number, headroom and
rate in the JSON report, a bar each in the HTML page, and the Lambda's metrics as EMF lines."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tdgc.lambda_handler import handler
from tdgc.local.simulator import Simulator
from tdgc.report.quota import QUOTA
from tests.helpers import FAST, emf_problems, write_policy
from tests.sim.test_lambda import SCHEDULER_EVENT, FakeContext

POLICY = """\
[defaults]
keep_last = 3
deregister_after = "60 days"
delete_after = "10 days"

[[rules]]
families = ["prod-*"]
exclude = true
"""
FIELDS = {
    "target",
    "family",
    "revisions_held",
    "highest_revision",
    "quota_headroom",
    "registered_per_day",
    "days_to_quota",
}


def _seed(sim: Simulator, now: datetime) -> dict[str, float]:
    """Four families; what each registered a day over the last 30 days, by construction."""
    hours = timedelta(hours=1)
    # An orchestrator's family: daily for 100 days, then hourly for the last 20; each run's revision deregistered.
    times = [now - timedelta(days=120 - d) for d in range(100)] + [
        now - timedelta(days=20) + n * hours for n in range(480)
    ]
    for at in times[:-1]:
        sim.seed("etl-hourly", registered_at=at, status="INACTIVE", deregistered_at=at + timedelta(minutes=5))
    sim.seed("etl-hourly", registered_at=times[-1])
    # A service deployed every 4 days for 400 days; an excluded family just the same; one being deleted.
    for n in range(100):
        sim.seed("web", registered_at=now - timedelta(days=400 - 4 * n))
        sim.seed("prod-api", registered_at=now - timedelta(days=400 - 4 * n))
    for n in range(6):
        status = "DELETE_IN_PROGRESS" if n < 2 else "INACTIVE"
        at = now - timedelta(days=300 - n)
        sim.seed("old-batch", registered_at=at, status=status, deregistered_at=at + timedelta(days=1))
    in_window = {
        "etl-hourly": sum(at > now - timedelta(days=30) for at in times),
        "web": sum(400 - 4 * n < 30 for n in range(100)),
        "prod-api": sum(400 - 4 * n < 30 for n in range(100)),
        "old-batch": 0,
    }
    return {family: n / 30 for family, n in in_window.items()}


def test_every_family_has_its_quota_in_the_json_report(sim: Simulator, tmp_path: Path, tdgc: Any) -> None:
    truth = _seed(sim, datetime.now(UTC))
    report = tdgc("plan", write_policy(tmp_path, POLICY), "--output", "json", *FAST).json()
    families = {f["family"]: f for f in report["families"]}
    assert set(families) == set(truth)
    assert all(set(f) == FIELDS for f in families.values())
    etl, web, prod, old = (families[name] for name in ("etl-hourly", "web", "prod-api", "old-batch"))
    assert etl["revisions_held"] == {"ACTIVE": 1, "INACTIVE": 579, "DELETE_IN_PROGRESS": 0}
    assert old["revisions_held"] == {"ACTIVE": 0, "INACTIVE": 4, "DELETE_IN_PROGRESS": 2}
    assert (etl["highest_revision"], etl["quota_headroom"]) == (580, QUOTA - 580)
    assert (old["highest_revision"], web["highest_revision"]) == (6, 100)
    # From the cut-off search's probes alone: close to the truth (the bound is in tdgc.report.quota).
    for family in (etl, web):
        assert family["registered_per_day"] == pytest.approx(truth[family["family"]], rel=0.1)
        assert family["days_to_quota"] == pytest.approx(family["quota_headroom"] / family["registered_per_day"], 1e-3)
    assert prod["registered_per_day"] is None and prod["days_to_quota"] is None  # excluded: nothing described
    # Its newest revision was described (to be deleted), long before the window: exactly nothing since.
    assert old["registered_per_day"] == 0.0 and old["days_to_quota"] is None
    assert [f["family"] for f in report["families"]][:2] == ["etl-hourly", "web"]  # the closest first


def test_html_report_draws_a_bar_per_family(sim: Simulator, tmp_path: Path, tdgc: Any) -> None:
    _seed(sim, datetime.now(UTC))
    ran = tdgc("plan", write_policy(tmp_path, POLICY), "--output", "html", *FAST)
    assert ran.code == 0
    page = ran.out
    assert page.startswith("<!DOCTYPE html>")
    assert len(re.findall(r'<rect [^>]*fill="#eee"/>', page)) == 4  # a quota track per family
    assert page.count("<tr><td>delete</td>") + page.count("<tr><td>deregister</td>") > 0


def test_the_lambda_prints_its_metrics_as_emf_lines(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("TDGC_POLICY_PARAMETER", "TDGC_POLICY_FILE", "TDGC_REGIONS", "TDGC_ROLE_ARNS", "TDGC_REPORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("TDGC_POLICY", POLICY)
    monkeypatch.setenv("TDGC_DRY_RUN", "false")
    _seed(sim, datetime.now(UTC))
    result = handler(SCHEDULER_EVENT, FakeContext(600))
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert [emf_problems(d) for d in documents] == [[]] * 5  # the run, and each of the four families
    run = documents[0]
    assert run["Function"] == "tdgc"  # the context's function name: the alarms' dimension
    assert run["Deregistered"] == result["summary"]["deregistered"] > 0
    assert run["Deleted"] == result["summary"]["deleted"] > 0
    assert (run["Failed"], run["Deferred"]) == (0, 0)
    assert run["QuotaHeadroomMin"] == QUOTA - 580
    assert {d["Family"]: d["QuotaHeadroom"] for d in documents[1:]} == {
        "etl-hourly": QUOTA - 580,
        "web": QUOTA - 100,
        "prod-api": QUOTA - 100,
        "old-batch": QUOTA - 6,
    }
    assert all(d["Region"] == "us-east-1" for d in documents[1:])
