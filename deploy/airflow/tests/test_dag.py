"""The maintenance DAG in a real Airflow: it loads, and `dag.test()` runs it end to end against the simulator.

The simulated account (tdgc.local.simulator, moto underneath, in this process) is seeded so that the test policy
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
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import tdgc_maintenance as m
from conftest import DAG_FOLDER, dag_bag, states, xcoms

from tdgc.local.simulator import Simulator

POLICY = """\
[defaults]
keep_last = 3
deregister_after = "30 days"
delete_after = "90 days"
"""
SELF, OTHER = "123456789012", "210987654321"
ROLE_SELF, ROLE_OTHER = f"arn:aws:iam::{SELF}:role/tdgc", f"arn:aws:iam::{OTHER}:role/tdgc"
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
    defaults = {"apply": False, "accounts": [], "regions": [], "families": []}
    assert set(defaults) == set(dag.params)
    return dag.test(run_conf={**defaults, **conf})


Operator = Callable[..., None]


@pytest.fixture
def operator(monkeypatch: pytest.MonkeyPatch) -> Operator:
    """Sets the operator's Variables as AIRFLOW_VAR_TDGC_* (as a deployment or a secrets backend provides
    them): the test policy, in both regions, unless the test sets others."""

    def set_variables(**values: str | list[str]) -> None:
        for name, value in values.items():
            text = value if isinstance(value, str) else json.dumps(value)
            monkeypatch.setenv(f"AIRFLOW_VAR_TDGC_{name.upper()}", text)

    set_variables(policy=POLICY, regions=REGIONS)
    return set_variables


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
    assert set(dag.params) == {"apply", "accounts", "regions", "families"}  # each only narrows the Variables
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
        f"{SELF}/us-east-1",
        f"{SELF}/eu-west-1",
        f"{OTHER}/us-east-1",
        f"{OTHER}/eu-west-1",
    ]
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


VARIABLES = {
    m.POLICY_VARIABLE: POLICY,
    m.ROLES_VARIABLE: json.dumps([ROLE_SELF, ROLE_OTHER]),
    m.EXTERNAL_ID_VARIABLE: " ext ",
    m.REGIONS_VARIABLE: "us-east-1, eu-west-1",
    m.ARCHIVE_VARIABLE: "s3://archive/tdgc",
    m.REPORT_VARIABLE: "",
}


def test_settings_are_the_variables_and_params_only_narrow_them() -> None:
    got = m.settings({"apply": False, "accounts": [], "regions": [], "families": []}, [], VARIABLES, "us-east-1")
    assert got == m.Settings(
        policy=POLICY,
        archive="s3://archive/tdgc",
        report=None,
        external_id="ext",
        accounts=(ROLE_SELF, ROLE_OTHER),
        regions=("us-east-1", "eu-west-1"),
        families=(),
    )
    params = {"apply": True, "accounts": [ROLE_OTHER], "regions": ["eu-west-1"], "families": ["etl-*"]}
    narrowed = m.settings(params, params, VARIABLES, "us-east-1")
    assert (narrowed.accounts, narrowed.regions, narrowed.families) == ((ROLE_OTHER,), ("eu-west-1",), ("etl-*",))
    assert (narrowed.policy, narrowed.archive) == (POLICY, "s3://archive/tdgc")  # params cannot touch these

    # "all" allows any region; unset means the worker's default region, and the worker's own account.
    anywhere = {**VARIABLES, m.REGIONS_VARIABLE: "all"}
    assert m.settings({"regions": ["ap-south-1"]}, [], anywhere, None).regions == ("ap-south-1",)
    assert m.settings({"regions": ["all"]}, [], anywhere, None).regions == ("all",)
    unset = m.settings({"regions": ["us-east-1"]}, [], {}, "us-east-1")
    assert (unset.policy, unset.accounts, unset.regions, unset.archive) == (None, (), ("us-east-1",), None)
    assert m.settings({}, [], {}, "us-east-1").regions == ()  # the worker's default region, unnamed


@pytest.mark.parametrize(
    ("params", "given", "variables", "message"),
    [
        (
            {"accounts": [f"arn:aws:iam::{SELF}:role/other"]},
            [],
            VARIABLES,
            f"param 'accounts': arn:aws:iam::{SELF}:role/other is not in Variable tdgc_role_arns; ",
        ),
        ({"accounts": [ROLE_SELF]}, [], {}, "is not in Variable tdgc_role_arns (not set: the worker's account); "),
        (
            {"regions": ["ap-south-1"]},
            [],
            VARIABLES,
            "param 'regions': ap-south-1 is outside Variable tdgc_regions (us-east-1, eu-west-1); ",
        ),
        ({"regions": ["all"]}, [], VARIABLES, "param 'regions': all is outside Variable tdgc_regions"),
        ({"regions": ["eu-west-1"]}, [], {}, "eu-west-1 is outside the worker's default region, us-east-1 (Variable"),
        ({}, ["policy"], VARIABLES, "param 'policy': set by the operator, as Variable tdgc_policy; "),
        ({}, ["archive"], VARIABLES, "param 'archive': set by the operator, as Variable tdgc_archive; "),
        ({}, ["report"], VARIABLES, "param 'report': set by the operator, as Variable tdgc_report; "),
        ({}, ["external_id"], VARIABLES, "param 'external_id': set by the operator, as Variable tdgc_external_id; "),
    ],
)
def test_params_that_would_widen_the_run_are_refused(
    params: dict[str, Any], given: list[str], variables: dict[str, str], message: str
) -> None:
    with pytest.raises(m.Refused) as refused:
        m.settings(params, [*params, *given], variables, "us-east-1")
    assert message in str(refused.value)
    assert str(refused.value).endswith(m.NARROW_ONLY)
    assert "\n" not in str(refused.value)


def test_a_param_this_dag_does_not_take_is_refused_not_ignored() -> None:
    with pytest.raises(m.Refused, match=r"param 'dry_run': not a param of this DAG \(its params: apply, accounts"):
        m.settings({}, ["dry_run"], VARIABLES, "us-east-1")


@pytest.mark.parametrize(
    ("param", "variable", "refused"),
    [(True, None, "is not set"), (True, "false", "is 'false'"), (True, "true", None), (False, None, None)],
)
def test_apply_is_refused_unless_the_variable_allows_it(
    param: object, variable: str | None, refused: str | None
) -> None:
    why = m.apply_refused(param, variable)
    if refused is None:
        assert why is None
    else:
        assert why is not None and f"param 'apply' is true, but Variable tdgc_apply {refused}" in why


def test_a_variable_lists_names_as_json_or_separated() -> None:
    assert m.items('["a", "b", "a"]', "x") == ("a", "b")
    assert m.items(" a, b\nc ,, ", "x") == ("a", "b", "c")
    assert m.items(["a", " "], "x") == ("a",)
    assert m.items(None, "x") == m.items("", "x") == ()
    for bad, message in (
        ("[broken", "x: not a JSON list of names"),
        ('{"a": 1}', "x: expected a list"),
        ("[1]", "x: expected a list"),
    ):
        with pytest.raises(ValueError, match=message):
            m.items(bad, "x")


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


def test_plan_only_by_default_changes_nothing(dag: Any, sim: Simulator, tmp_path: Path, operator: Operator) -> None:
    seed(sim)
    before = status_of(sim)
    operator(report=str(tmp_path))
    dr = run(dag)
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
        0: ("plan", 0, "us-east-1"),
        1: ("plan", 0, "eu-west-1"),
    }
    assert {k: plans[0]["summary"][k] for k in ("deregister", "delete", "protected")} == {
        "deregister": 4,
        "delete": 5,
        "protected": 1,
    }
    assert plans[1]["summary"]["deregister"] == 3
    assert plans[1]["summary"]["delete"] == 0

    total = xcoms(dr.run_id, "summary")[-1]
    assert total["mode"] == "plan"
    assert total["targets"] == 2
    assert total["failed"] == []
    assert {k: total["summary"][k] for k in ("families", "revisions", "deregister", "delete", "protected")} == {
        "families": 4,
        "revisions": 22,
        "deregister": 7,
        "delete": 5,
        "protected": 1,
    }
    assert total["summary"]["results"] == {"done": 0, "pending": 0, "failed": 0, "skipped": 0}
    assert [row["target"] for row in total["by_target"]] == ["self/us-east-1", "self/eu-west-1"]

    (report,) = reports(tmp_path, dr.run_id, "self/us-east-1", "plan")
    decisions = {d["arn"].rsplit("/", 1)[1]: d for d in report["decisions"]}
    assert decisions["web:2"]["action"] == "keep"
    assert "service prod/web-svc" in decisions["web:2"]["in_use_by"]
    deregister = sorted(k for k, d in decisions.items() if d["action"] == "deregister")
    assert deregister == ["web:1", "web:3", "web:4", "web:5"]


def failures(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    """What Airflow logged of the exceptions that failed tasks: 2.x through logging, 3.x's task runner on
    the process's own output."""
    logged = [str(r.exc_info[1]) for r in caplog.records if r.exc_info and r.exc_info[1] is not None]
    printed = capfd.readouterr()
    return "\n".join([*logged, printed.out, printed.err])


def assert_refused_at_the_start(dr: Any) -> None:
    got = states(dr)
    assert str(dr.state) == "failed", got
    assert got[("targets", -1)] == "failed"
    assert {got[(task, -1)] for task in ("plan", "apply_gate", "apply")} == {"upstream_failed"}, got


def test_the_apply_param_without_the_variable_is_refused_before_anything_runs(
    dag: Any, sim: Simulator, operator: Operator, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    seed(sim)
    calls = sum(sim.calls.values())
    dr = run(dag, apply=True)  # the Variable tdgc_apply is not set
    assert_refused_at_the_start(dr)
    assert sum(sim.calls.values()) == calls  # not even a plan
    expected = "param 'apply' is true, but Variable tdgc_apply is not set (an operator allows apply); a run's"
    assert expected in failures(caplog, capfd)


def test_a_policy_param_is_refused_not_ignored(
    sim: Simulator, operator: Operator, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    # A fresh DAG object: a param it does not declare could otherwise outlive this run in the shared one.
    fresh = dag_bag().dags[m.DAG_ID]
    seed(sim)
    calls = sum(sim.calls.values())
    dr = fresh.test(run_conf={"apply": False, "policy": "[defaults]\nkeep_last = 0\n"})
    assert_refused_at_the_start(dr)
    assert sum(sim.calls.values()) == calls
    expected = "param 'policy': set by the operator, as Variable tdgc_policy; a run's params may narrow"
    assert expected in failures(caplog, capfd)


def test_params_narrow_the_run_to_some_accounts_regions_and_families(
    dag: Any, sim: Simulator, operator: Operator
) -> None:
    seed(sim)
    sim.seed("other", registered_at=NOW - days(100), account=OTHER)
    operator(role_arns=[ROLE_SELF, ROLE_OTHER])
    dr = run(dag, accounts=[ROLE_OTHER], regions=["us-east-1"], families=["acct*"])
    got = states(dr)
    assert str(dr.state) == "success", got
    plans = xcoms(dr.run_id, "plan")
    assert [p["target"]["label"] for p in plans.values()] == [f"{OTHER}/us-east-1"]
    assert (plans[0]["summary"]["families"], plans[0]["summary"]["deregister"]) == (1, 1)  # acct2, not other
    assert {p["RoleArn"] for op, p in sim.sessions if op == "AssumeRole"} == {ROLE_OTHER}  # never ROLE_SELF


@pytest.fixture
def variable_in_db() -> Iterator[None]:
    """Variable tdgc_apply=true in the metadata DB, as `airflow variables set tdgc_apply true` leaves it."""
    from airflow.models.variable import Variable

    Variable.set(m.APPLY_VARIABLE, "true")
    try:
        yield
    finally:
        Variable.delete(m.APPLY_VARIABLE)


def test_apply_in_two_accounts_and_two_regions(
    dag: Any, sim: Simulator, tmp_path: Path, variable_in_db: None, operator: Operator
) -> None:
    seed(sim)
    operator(role_arns=[ROLE_SELF, ROLE_OTHER], report=str(tmp_path / "reports"), archive=str(tmp_path / "archive"))
    dr = run(dag, apply=True)
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
    dag: Any, sim: Simulator, tmp_path: Path, operator: Operator
) -> None:
    seed(sim)
    sim.fail_delete(f"arn:aws:ecs:us-east-1:{SELF}:task-definition/batch:3", "The specified task definition is in use.")
    operator(apply="true", report=str(tmp_path))
    dr = run(dag, apply=True)
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


def test_refusals_fail_the_run_and_change_nothing(dag: Any, sim: Simulator, operator: Operator) -> None:
    seed(sim)
    before = status_of(sim)
    operator(apply="true")

    # A safety guard: the policy requires an archive and none is given. The plans pass; the applies refuse.
    operator(policy=POLICY + "[safety]\nrequire_archive = true\n")
    dr = run(dag, apply=True)
    got = states(dr)
    assert str(dr.state) == "failed", got
    assert got[("plan", 0)] == got[("plan", 1)] == "success"
    assert got[("apply", 0)] == got[("apply", 1)] == "failed"
    refused = xcoms(dr.run_id, "apply", m.SUMMARY_KEY)
    assert [refused[i]["exit_code"] for i in (0, 1)] == [3, 3]
    assert "require_archive" in refused[0]["error"]

    # A bad policy: the plans fail (exit status 2), so nothing applies.
    operator(policy='[defaults]\nkeep_last = "five"\n')
    dr = run(dag, apply=True)
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
