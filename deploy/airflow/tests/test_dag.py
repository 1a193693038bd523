"""The maintenance DAG in a real Airflow: it loads, and `dag.test()` runs it end to end against the simulator.

The simulated account (tdgc.simulator, moto underneath, in this process) is seeded so that the test policy
below has something to do in two regions, and in a second account for the multi-account run:

    123456789012 us-east-1  web    8 ACTIVE, 200..193 days old; web:2 runs service prod/web-svc
                                   -> newest 3 kept, web:2 kept (in use), 4 deregistered
                            batch  5 INACTIVE, deregistered 120 days ago -> 5 deleted; 1 ACTIVE, 10 days old, kept
    123456789012 eu-west-1  etl    6 ACTIVE, 100 days old -> newest 3 kept, 3 deregistered
                            web    2 ACTIVE, 5 days old -> kept
    210987654321 us-east-1  acct2  4 ACTIVE, 100 days old -> newest 3 kept, 1 deregistered
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import tdgc_maintenance as m
from conftest import DAG_FOLDER, dag_bag, states, xcoms

from tdgc.simulator import Simulator

POLICY = """\
[defaults]
keep_last = 3
deregister_after = "30 days"
delete_after = "90 days"
"""
SELF, OTHER = "123456789012", "210987654321"
REGIONS = ["us-east-1", "eu-west-1"]
NOW = datetime.now(UTC)
ECS_MUTATIONS = ("DeregisterTaskDefinition", "DeleteTaskDefinitions", "RegisterTaskDefinition")


def days(n: float) -> timedelta:
    return timedelta(days=n)


def seed(sim: Simulator) -> None:
    for n in range(8):
        sim.seed("web", registered_at=NOW - days(200 - n))
    for _ in range(5):
        sim.seed("batch", registered_at=NOW - days(300), status="INACTIVE", deregistered_at=NOW - days(120))
    sim.seed("batch", registered_at=NOW - days(10))
    for _ in range(6):
        sim.seed("etl", registered_at=NOW - days(100), region="eu-west-1")
    for _ in range(2):
        sim.seed("web", registered_at=NOW - days(5), region="eu-west-1")
    sim.backend().create_cluster("prod")
    boto3.client("ecs", region_name="us-east-1").create_service(
        cluster="prod", serviceName="web-svc", taskDefinition="web:2", desiredCount=1
    )
    for _ in range(4):
        sim.seed("acct2", registered_at=NOW - days(100), account=OTHER)


def status_of(sim: Simulator, account: str = SELF) -> dict[tuple[str, str, int], str]:
    """(region, family, revision) -> status, for every revision in `account`."""
    return {(r, td.family, td.revision): td.status for r in REGIONS for td in sim.revisions(region=r, account=account)}


def ecs_mutations(sim: Simulator) -> list[tuple[str, dict[str, Any]]]:
    return [(op, params) for op, params in sim.mutations if op in ECS_MUTATIONS]


def run(dag: Any, **conf: Any) -> Any:
    """dag.test() with every param given: in one process, a run's params can outlive it in the DAG object."""
    defaults = {"apply": False, "accounts": [], "external_id": None, "regions": REGIONS, "families": [],
                "policy": POLICY, "archive": "", "report": ""}  # fmt: skip
    assert set(defaults) == set(dag.params)
    return dag.test(run_conf={**defaults, **conf})


def reports(root: Path, run_id: str, label: str, mode: str) -> list[dict[str, Any]]:
    folder = root / m.report_subpath(run_id, {"label": label})
    return [json.loads(path.read_text()) for path in sorted(folder.glob(f"tdgc-{mode}-*.json"))]


# ---- the DAG file ----------------------------------------------------------------------------------------


def test_the_dag_folder_loads_without_import_errors() -> None:
    bag = dag_bag()
    assert bag.import_errors == {}
    # .airflowignore keeps tests/ and the venvs out of the DAG folder; the other DAG is the reuse example
    assert sorted(bag.dags) == [m.DAG_ID, "tdgc_reuse_example"]
    dag = bag.dags[m.DAG_ID]
    assert {t.task_id for t in dag.tasks} == {"targets", "plan", "apply_gate", "apply", "summary"}
    by_id = {t.task_id: t for t in dag.tasks}
    assert by_id["plan"].upstream_task_ids == {"targets"}
    assert by_id["apply_gate"].upstream_task_ids == {"plan"}
    assert by_id["apply"].upstream_task_ids == {"targets", "apply_gate"}
    assert by_id["summary"].upstream_task_ids == {"targets", "plan", "apply"}
    assert str(getattr(by_id["summary"].trigger_rule, "value", by_id["summary"].trigger_rule)) == "all_done"
    assert dag.params["apply"] is False  # the default never mutates
    assert Path(dag.fileloc).resolve() == DAG_FOLDER / "tdgc_maintenance.py"


def test_the_dag_uses_no_deprecated_airflow_api() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = dag_bag()  # imports the DAG file again
    assert bag.import_errors == {}
    ours = [f"{w.category.__name__}: {w.message}" for w in caught if Path(w.filename).name == "tdgc_maintenance.py"]
    assert ours == []


# ---- its decisions, without Airflow running it -------------------------------------------------------------


def test_targets_are_accounts_by_regions() -> None:
    a, b = f"arn:aws:iam::{SELF}:role/tdgc", f"arn:aws:iam::{OTHER}:role/ops/tdgc"
    found = m.make_targets([a, b], ["us-east-1", "eu-west-1"])
    assert [t["label"] for t in found] == [
        f"{SELF}/us-east-1", f"{SELF}/eu-west-1", f"{OTHER}/us-east-1", f"{OTHER}/eu-west-1",
    ]  # fmt: skip
    assert found[3] == {"role_arn": b, "region": "eu-west-1", "label": f"{OTHER}/eu-west-1"}
    assert m.make_targets([], []) == [{"role_arn": None, "region": None, "label": "self/default-region"}]
    assert [t["region"] for t in m.make_targets([], ["all"])] == ["all"]
    assert len(m.make_targets([a, a], ["us-east-1", "us-east-1"])) == 1  # duplicates once
    for accounts, regions, message in (
        (["123456789012"], [], "not an IAM role ARN"),
        ([], ["us-east-1", "all"], "cannot be combined"),
        ([], ["US-EAST-1"], "not an AWS region"),
    ):
        with pytest.raises(ValueError, match=message):
            m.make_targets(accounts, regions)


@pytest.mark.parametrize(
    ("param", "variable", "allowed"),
    [
        (False, None, False),
        (False, "true", False),  # the Variable alone never applies
        (True, None, False),  # nor the param alone
        (True, "false", False),
        (True, "maybe", False),
        (None, "true", False),
        ("true", "true", False),  # a param must be the boolean true, not a string
        (True, "true", True),
        (True, " TRUE ", True),
        (True, "on", True),
    ],
)
def test_apply_needs_both_the_param_and_the_variable(param: object, variable: str | None, allowed: bool) -> None:
    decided, why = m.apply_allowed(param, variable)
    assert decided is allowed
    assert why.startswith("apply:" if allowed else "plan only:")


def test_policy_is_text_or_a_path(tmp_path: Path) -> None:
    assert m.policy_source("", tmp_path) == (None, None)
    assert m.policy_source(POLICY, tmp_path) == (POLICY, None)
    assert m.policy_source("[defaults]", tmp_path) == ("[defaults]", None)
    assert m.policy_source("policies/tdgc.toml", tmp_path) == (None, str(tmp_path / "policies/tdgc.toml"))
    assert m.policy_source("/etc/tdgc.toml", tmp_path) == (None, "/etc/tdgc.toml")


def test_each_target_reports_in_a_folder_of_its_own(tmp_path: Path) -> None:
    target = {"label": f"{OTHER}/eu-west-1"}
    run_id = "manual__2026-06-01T12:00:00+00:00"
    where = m.report_location(str(tmp_path), run_id, target)
    assert where == str(tmp_path / "manual__2026-06-01T12_00_00_00_00" / OTHER / "eu-west-1")
    assert Path(where).is_dir()
    s3 = m.report_location("s3://b/tdgc", run_id, target)
    assert s3 == f"s3://b/tdgc/manual__2026-06-01T12_00_00_00_00/{OTHER}/eu-west-1/"
    assert m.report_location("", run_id, target) is None
    assert m.time_budget(timedelta(hours=1)) == 3600 - 120
    assert m.time_budget(None) is None


# ---- dag.test() against the simulator ------------------------------------------------------------------


def test_plan_only_by_default_changes_nothing(dag: Any, sim: Simulator, tmp_path: Path) -> None:
    seed(sim)
    before = status_of(sim)
    dr = run(dag, report=str(tmp_path))
    got = states(dr)
    assert str(dr.state) == "success", got
    assert got[("plan", 0)] == got[("plan", 1)] == "success"
    assert got[("apply_gate", -1)] == "skipped"
    assert all(state == "skipped" for (task, _), state in got.items() if task == "apply")
    assert got[("summary", -1)] == "success"
    assert ecs_mutations(sim) == []
    assert status_of(sim) == before

    plans = xcoms(dr.run_id, "plan")
    assert {i: (p["mode"], p["exit_code"], p["target"]["region"]) for i, p in plans.items()} == {
        0: ("plan", 0, "us-east-1"), 1: ("plan", 0, "eu-west-1"),
    }  # fmt: skip
    assert {k: plans[0]["summary"][k] for k in ("deregister", "delete", "protected")} == {
        "deregister": 4, "delete": 5, "protected": 1,
    }  # fmt: skip
    assert plans[1]["summary"]["deregister"] == 3
    assert plans[1]["summary"]["delete"] == 0

    total = xcoms(dr.run_id, "summary")[-1]
    assert total["mode"] == "plan"
    assert total["targets"] == 2
    assert total["failed"] == []
    assert {k: total["summary"][k] for k in ("families", "revisions", "deregister", "delete", "protected")} == {
        "families": 4, "revisions": 22, "deregister": 7, "delete": 5, "protected": 1,
    }  # fmt: skip
    assert total["summary"]["results"] == {"done": 0, "pending": 0, "failed": 0, "skipped": 0}
    assert [row["target"] for row in total["by_target"]] == ["self/us-east-1", "self/eu-west-1"]

    (report,) = reports(tmp_path, dr.run_id, "self/us-east-1", "plan")
    decisions = {d["arn"].rsplit("/", 1)[1]: d for d in report["decisions"]}
    assert decisions["web:2"]["action"] == "keep"
    assert "service prod/web-svc" in decisions["web:2"]["in_use_by"]
    deregister = sorted(k for k, d in decisions.items() if d["action"] == "deregister")
    assert deregister == ["web:1", "web:3", "web:4", "web:5"]


def test_the_apply_param_alone_does_not_apply(dag: Any, sim: Simulator) -> None:
    seed(sim)
    before = status_of(sim)
    dr = run(dag, apply=True)  # the Variable tdgc_apply is not set
    got = states(dr)
    assert str(dr.state) == "success", got
    assert got[("apply_gate", -1)] == "skipped"
    assert all(state == "skipped" for (task, _), state in got.items() if task == "apply")
    assert ecs_mutations(sim) == []
    assert status_of(sim) == before
    assert xcoms(dr.run_id, "summary")[-1]["mode"] == "plan"


@pytest.fixture
def variable_in_db() -> Iterator[None]:
    """Variable tdgc_apply=true in the metadata DB, as `airflow variables set tdgc_apply true` leaves it."""
    from airflow.models.variable import Variable

    Variable.set(m.APPLY_VARIABLE, "true")
    try:
        yield
    finally:
        Variable.delete(m.APPLY_VARIABLE)


def test_apply_in_two_accounts_and_two_regions(dag: Any, sim: Simulator, tmp_path: Path, variable_in_db: None) -> None:
    seed(sim)
    accounts = [f"arn:aws:iam::{SELF}:role/tdgc", f"arn:aws:iam::{OTHER}:role/tdgc"]
    dr = run(dag, apply=True, accounts=accounts, report=str(tmp_path / "reports"), archive=str(tmp_path / "archive"))
    got = states(dr)
    assert str(dr.state) == "success", got
    labels = [f"{a}/{r}" for a in (SELF, OTHER) for r in REGIONS]
    assert [got[("plan", i)] for i in range(4)] == [got[("apply", i)] for i in range(4)] == ["success"] * 4
    assert got[("apply_gate", -1)] == "success"

    after = status_of(sim)
    assert after[("us-east-1", "web", 2)] == "ACTIVE"  # in use by a service: untouched
    web = [after[("us-east-1", "web", n)] for n in range(1, 9)]
    assert web == ["INACTIVE", "ACTIVE", "INACTIVE", "INACTIVE", "INACTIVE", "ACTIVE", "ACTIVE", "ACTIVE"]
    assert [after[("us-east-1", "batch", n)] for n in range(1, 7)] == ["DELETE_IN_PROGRESS"] * 5 + ["ACTIVE"]
    assert [after[("eu-west-1", "etl", n)] for n in range(1, 7)] == ["INACTIVE"] * 3 + ["ACTIVE"] * 3
    assert [after[("eu-west-1", "web", n)] for n in (1, 2)] == ["ACTIVE", "ACTIVE"]
    assert [status_of(sim, OTHER)[("us-east-1", "acct2", n)] for n in range(1, 5)] == ["INACTIVE"] + ["ACTIVE"] * 3
    assert not any("web:2" in json.dumps(params) for _, params in ecs_mutations(sim))
    assert sim.count("DeregisterTaskDefinition") == 4 + 3 + 1

    applies = xcoms(dr.run_id, "apply")
    assert [applies[i]["target"]["label"] for i in range(4)] == labels
    assert [applies[i]["summary"]["results"]["done"] for i in range(4)] == [4, 3, 1, 0]
    assert applies[0]["summary"]["results"]["pending"] == 5  # deletes: DELETE_IN_PROGRESS until ECS lets go
    assert all(a["mode"] == "apply" and a["exit_code"] == 0 for a in applies.values())

    total = xcoms(dr.run_id, "summary")[-1]
    assert total["mode"] == "apply"
    assert total["failed"] == []
    assert total["summary"]["deregister"] == 8
    assert total["summary"]["delete"] == 5
    assert total["summary"]["results"] == {"done": 8, "pending": 5, "failed": 0, "skipped": 0}
    assert [row["target"] for row in total["by_target"]] == labels

    # Each target's plan and apply reports, in its own folder; the deleted revisions archived first.
    for label in labels:
        assert len(reports(tmp_path / "reports", dr.run_id, label, "plan")) == 1
        (report,) = reports(tmp_path / "reports", dr.run_id, label, "apply")
        assert report["mode"] == "apply"
    (report,) = reports(tmp_path / "reports", dr.run_id, f"{SELF}/us-east-1", "apply")
    outcomes = {o["arn"].rsplit("/", 1)[1]: o["result"] for o in report["outcomes"]}
    assert outcomes == {**{f"web:{n}": "done" for n in (1, 3, 4, 5)}, **{f"batch:{n}": "pending" for n in range(1, 6)}}
    archived = sorted(p.name for p in (tmp_path / "archive" / SELF / "us-east-1" / "batch").glob("*.json"))
    assert archived == [f"{n}.json" for n in range(1, 6)]


def test_a_failed_target_fails_its_task_after_its_report(
    dag: Any, sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(sim)
    sim.fail_delete(f"arn:aws:ecs:us-east-1:{SELF}:task-definition/batch:3", "The specified task definition is in use.")
    monkeypatch.setenv("AIRFLOW_VAR_TDGC_APPLY", "true")
    dr = run(dag, apply=True, report=str(tmp_path))
    got = states(dr)
    assert str(dr.state) == "failed", got
    assert got[("apply", 0)] == "failed"  # us-east-1: one delete failed, exit status 1
    assert got[("apply", 1)] == "success"  # eu-west-1 went on
    assert got[("summary", -1)] == "failed"  # so that the run shows failed

    after = status_of(sim)
    assert after[("us-east-1", "batch", 3)] == "INACTIVE"
    assert [after[("us-east-1", "batch", n)] for n in (1, 2, 4, 5)] == ["DELETE_IN_PROGRESS"] * 4
    assert after[("us-east-1", "web", 2)] == "ACTIVE"
    assert [after[("eu-west-1", "etl", n)] for n in range(1, 4)] == ["INACTIVE"] * 3

    failed = xcoms(dr.run_id, "apply", m.SUMMARY_KEY)[0]  # pushed before the task failed
    assert failed["exit_code"] == 1
    assert failed["summary"]["results"]["failed"] == 1
    (report,) = reports(tmp_path, dr.run_id, "self/us-east-1", "apply")
    outcome = next(o for o in report["outcomes"] if o["arn"].endswith("/batch:3"))
    assert outcome["result"] == "failed"
    assert "in use" in outcome["error"]
    assert json.loads(Path(failed["report"]).read_text()) == report

    total = xcoms(dr.run_id, "summary", m.SUMMARY_KEY)[-1]
    assert total["failed"] == ["self/us-east-1"]
    assert total["summary"]["results"]["failed"] == 1
    assert total["summary"]["results"]["done"] == 4 + 3


def test_refusals_fail_the_run_and_change_nothing(dag: Any, sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(sim)
    before = status_of(sim)
    monkeypatch.setenv("AIRFLOW_VAR_TDGC_APPLY", "true")

    # A safety guard: the policy requires an archive and none is given. The plans pass; the applies refuse.
    dr = run(dag, apply=True, policy=POLICY + "[safety]\nrequire_archive = true\n")
    got = states(dr)
    assert str(dr.state) == "failed", got
    assert got[("plan", 0)] == got[("plan", 1)] == "success"
    assert got[("apply", 0)] == got[("apply", 1)] == "failed"
    refused = xcoms(dr.run_id, "apply", m.SUMMARY_KEY)
    assert [refused[i]["exit_code"] for i in (0, 1)] == [3, 3]
    assert "require_archive" in refused[0]["error"]

    # A bad policy: the plans fail (exit status 2), so nothing applies.
    dr = run(dag, apply=True, policy='[defaults]\nkeep_last = "five"\n')
    got = states(dr)
    assert str(dr.state) == "failed", got
    assert got[("plan", 0)] == got[("plan", 1)] == "failed"
    assert got[("apply_gate", -1)] == "upstream_failed"
    bad = xcoms(dr.run_id, "plan", m.SUMMARY_KEY)
    assert [bad[i]["exit_code"] for i in (0, 1)] == [2, 2]
    assert "keep_last" in bad[0]["error"]
    assert xcoms(dr.run_id, "summary", m.SUMMARY_KEY)[-1]["failed"] == ["self/us-east-1", "self/eu-west-1"]

    assert ecs_mutations(sim) == []
    assert status_of(sim) == before
