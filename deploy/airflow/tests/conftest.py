"""Runs in an environment with a real Airflow (deploy/airflow/ci.sh makes one), against tdgc's simulator."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

DAG_FOLDER = Path(__file__).resolve().parents[1]

if not os.environ.get("AIRFLOW_HOME") or Path(os.environ.get("AIRFLOW__CORE__DAGS_FOLDER", "")).resolve() != DAG_FOLDER:
    pytest.exit(
        f"run these through deploy/airflow/ci.sh, or set AIRFLOW_HOME (after `airflow db migrate` there) and "
        f"AIRFLOW__CORE__DAGS_FOLDER={DAG_FOLDER}",
        returncode=4,
    )
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
sys.path.insert(0, str(DAG_FOLDER))  # the DAG module's plain functions, for the fast tests


# The simulator's fixtures (`sim`, no real AWS), as tdgc's own tests have them.
pytest_plugins = ("tdgc.local.pytest_plugin",)

DAG_ID = "tdgc_maintenance"
TIMINGS: list[str] = []  # lines for the end of pytest's report (the reuse example's 100 runs)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in TIMINGS:
        terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _no_tdgc_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may find a real tdgc Variable (the plugin already keeps real AWS out)."""
    for name in ("APPLY", "POLICY", "ROLE_ARNS", "EXTERNAL_ID", "REGIONS", "ARCHIVE", "REPORT"):
        monkeypatch.delenv(f"AIRFLOW_VAR_TDGC_{name}", raising=False)


def dag_bag() -> Any:
    try:  # Airflow 3.x
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2.x
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    return DagBag(dag_folder=str(DAG_FOLDER))


@pytest.fixture(scope="session")
def dag() -> Any:
    return dag_bag().dags[DAG_ID]


def xcoms(run_id: str, task_id: str, key: str = "return_value", dag_id: str = DAG_ID) -> dict[int, Any]:
    """The XComs a task pushed in a run, by map index (-1: not mapped), read from the metadata DB."""
    from airflow.utils.session import create_session

    try:  # Airflow 3.x
        from airflow.models.xcom import XComModel as XCom
    except ImportError:  # Airflow 2.x
        from airflow.models.xcom import XCom  # type: ignore[no-redef]
    found: dict[int, Any] = {}
    with create_session() as session:
        rows = (
            session.query(XCom)
            .filter(XCom.dag_id == dag_id, XCom.run_id == run_id, XCom.task_id == task_id, XCom.key == key)
            .all()
        )
        for row in rows:
            value = row.value  # 2.x: already deserialized; 3.x: may be the JSON text
            for _ in range(2):
                if isinstance(value, bytes | str):
                    try:
                        value = json.loads(value)
                    except ValueError:
                        break
            found[row.map_index] = value
    return found


def states(run: Any) -> dict[tuple[str, int], str]:
    """(task_id, map_index) -> state of every task instance of a DagRun."""
    return {(ti.task_id, ti.map_index): str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()}
