"""tdgc maintenance DAG: garbage-collect ECS task-definition revisions (Airflow 2.10+ and 3.1+).

Copy this file into the DAGs folder and install tdgc into the Airflow environment (`pip install tdgc`, or a
line in MWAA's requirements.txt); see README.md beside it.

    targets ─> plan[target] ─> apply_gate ─> apply[target] ─> summary (all_done)

`targets` is accounts x regions. `plan` and `apply` are mapped over them (one task instance per account
and region) and call tdgc as a library (`tdgc.job.run_job`); each returns tdgc's summary as its XCom.

Nothing is ever changed unless BOTH say so: the run's `apply` param is true AND the Airflow Variable
`tdgc_apply` is "true". Otherwise `apply_gate` is skipped, with the reason in its log, and so are the
apply tasks. Each apply task reads the Variable again before it starts: setting it to "false" stops the
applies that have not started yet.

A target whose run failed (an action failed, AWS refused, bad input) or whose apply a safety guard
refused (exit status 3) fails its task, after its report was written. `summary` gathers the mapped
summaries into one short XCom, logs it, and fails too if any target did, so that the run shows failed.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

try:  # Airflow 3.x: the Task SDK
    from airflow.sdk import DAG, Param, Variable, get_current_context, task
except ImportError:  # Airflow 2.x
    from airflow import DAG
    from airflow.decorators import task
    from airflow.models import Variable
    from airflow.models.param import Param
    from airflow.operators.python import get_current_context

try:  # Airflow 3.x
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
except ImportError:  # Airflow 2.x, and 3.0 where the Task SDK did not have them yet
    from airflow.exceptions import AirflowFailException, AirflowSkipException

# tdgc itself is imported in the tasks only, which keeps parsing this file cheap; but if it is missing,
# say so at parse time, as an import error in the Airflow UI, rather than at the first run.
if importlib.util.find_spec("tdgc") is None:
    raise ImportError("tdgc is not installed in this Airflow environment: pip install tdgc (MWAA: requirements.txt)")

DAG_ID = "tdgc_maintenance"
APPLY_VARIABLE = "tdgc_apply"  # the operator's key: runs may apply only while it is "true"
ALL_REGIONS = "all"  # regions: ["all"]: every region enabled in each account
SUMMARY_KEY = "tdgc_summary"  # each plan/apply task pushes its summary under this key, also when it then fails
_YES = frozenset({"true", "yes", "on", "1"})
_ROLE_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$"
_REGION = r"^[a-z]{2}(-[a-z]+)+-\d+$"
_COUNTS = ("families", "revisions", "keep", "deregister", "delete", "protected")
_RESULTS = ("done", "pending", "failed", "skipped")
_BUDGET_MARGIN = 120.0  # seconds between tdgc's own stop and Airflow's execution_timeout

log = logging.getLogger(__name__)

Target = dict[str, Any]  # {"role_arn": str | None, "region": str | None, "label": "ACCOUNT/REGION"}


# ---- what the tasks decide: plain functions, no Airflow context, no AWS ---------------------------------


def make_targets(accounts: Iterable[str], regions: Iterable[str]) -> list[Target]:
    """accounts x regions. No account: the worker's own credentials; no region: the worker's default region."""
    roles: list[str | None] = list(dict.fromkeys(a.strip() for a in accounts if a.strip())) or [None]
    places: list[str | None] = list(dict.fromkeys(r.strip() for r in regions if r.strip())) or [None]
    for arn in roles:
        if arn is not None and not re.match(_ROLE_ARN, arn):
            raise ValueError(f"accounts: {arn!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)")
    if ALL_REGIONS in places and len(places) > 1:
        raise ValueError(f"regions: {ALL_REGIONS!r} (every enabled region) cannot be combined with named regions")
    for region in places:
        if region not in (None, ALL_REGIONS) and not re.match(_REGION, region):
            raise ValueError(f"regions: {region!r} is not an AWS region (for example eu-west-1) nor {ALL_REGIONS!r}")
    return [{"role_arn": arn, "region": region, "label": _label(arn, region)} for arn in roles for region in places]


def _label(role_arn: str | None, region: str | None) -> str:
    account = role_arn.split(":")[4] if role_arn else "self"
    return f"{account}/{region or 'default-region'}"


def apply_allowed(param: object, variable: str | None) -> tuple[bool, str]:
    """Whether a run may change anything, and why: the run's `apply` param AND the `tdgc_apply` Variable."""
    wants = param is True
    allowed = (variable or "").strip().lower() in _YES
    if wants and allowed:
        return True, f"apply: the run's apply param is true and Variable {APPLY_VARIABLE} is {variable!r}"
    if not wants:
        return False, 'plan only: the run\'s apply param is false (trigger with {"apply": true} to apply)'
    shown = "not set" if variable is None else repr(variable)
    return False, f'plan only: Variable {APPLY_VARIABLE} is {shown}; set it to "true" to allow apply'


def policy_source(policy: str | None, dag_folder: Path) -> tuple[str | None, str | None]:
    """(policy_text, policy_file): TOML text if it looks like TOML, else a path (relative: to the DAG folder)."""
    text = (policy or "").strip()
    if not text:
        return None, None  # tdgc's built-in policy
    if "\n" in text or "=" in text or text.startswith("["):
        return policy, None
    path = Path(text).expanduser()
    return None, str(path if path.is_absolute() else dag_folder / path)


def report_subpath(run_id: str, target: Target) -> str:
    """RUN_ID/ACCOUNT/REGION, the run id made safe for a path."""
    run = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("_") or "run"
    return f"{run}/{target['label']}"


def report_location(spec: str | None, run_id: str, target: Target) -> str | None:
    """Where one target's reports go: SPEC/RUN_ID/ACCOUNT/REGION/, a directory (made here) or an S3 prefix."""
    spec = (spec or "").strip()
    if not spec:
        return None
    sub = report_subpath(run_id, target)
    if spec.startswith("s3://"):
        return f"{spec.rstrip('/')}/{sub}/"
    folder = Path(spec).expanduser() / sub
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder)


def time_budget(execution_timeout: timedelta | None) -> float | None:
    """tdgc stops starting mutations in time to end cleanly before Airflow would kill the task."""
    if execution_timeout is None:
        return None
    seconds = execution_timeout.total_seconds()
    return max(seconds - _BUDGET_MARGIN, seconds / 2)


def failure_of(summary: Mapping[str, Any]) -> str | None:
    """Why a target's summary fails its task (an error, a non-zero exit status, a failed target), or None."""
    if summary.get("error"):
        return str(summary["error"])
    code = summary.get("exit_code") or 0
    failed = [t for t in summary.get("targets") or () if t.get("status") in ("failed", "refused")]
    if not code and not failed:
        return None
    details = "; ".join(f"{t.get('target')}: {t.get('status')}: {t.get('error')}" for t in failed)
    return f"tdgc exited {code}" + (f" ({details})" if details else "")


def summarize(targets: list[Target], plans: Iterable[Any], applies: Iterable[Any], applied: bool) -> dict[str, Any]:
    """The run in short, from the mapped tasks' summaries; a target with none did not finish its task."""
    plan_by = {s["target"]["label"]: s for s in plans if isinstance(s, Mapping) and "target" in s}
    apply_by = {s["target"]["label"]: s for s in applies if isinstance(s, Mapping) and "target" in s}
    totals: dict[str, Any] = dict.fromkeys(_COUNTS, 0)
    results = dict.fromkeys(_RESULTS, 0)
    rows: list[dict[str, Any]] = []
    for target in targets:
        label = target["label"]
        last = apply_by.get(label) if applied else plan_by.get(label)
        row: dict[str, Any] = {"target": label}
        if applied and last is not None and last.get("skipped"):
            row["skipped"] = last["skipped"]  # the Variable was turned off before this apply started
            last = plan_by.get(label)
        if last is None:
            step = "plan" if label not in plan_by else "apply"
            row["error"] = f"{step} did not finish (see its task log)"
        else:
            counts = last.get("summary") or {}
            for key in _COUNTS:
                totals[key] += int(counts.get(key) or 0)
            for key in _RESULTS:
                results[key] += int((counts.get("results") or {}).get(key) or 0)
            row.update({key: counts.get(key, 0) for key in ("deregister", "delete", "protected")})
            row["exit_code"] = last.get("exit_code")
            if failure_of(last):
                row["error"] = failure_of(last)
            if last.get("report"):
                row["report"] = last["report"]
        rows.append(row)
    totals["results"] = results
    return {
        "mode": "apply" if applied else "plan",
        "targets": len(targets),
        "failed": [row["target"] for row in rows if "error" in row],
        "summary": totals,
        "by_target": rows,
    }


# ---- the tasks' bodies ----------------------------------------------------------------------------------


def _variable(name: str) -> str | None:
    try:
        value = Variable.get(name, None)  # the default is the 2nd parameter on 2.x (default_var) and 3.x (default)
    except Exception:  # whatever goes wrong reading it, the answer is "not allowed"
        log.warning("cannot read Variable %s; taking it as not set", name, exc_info=True)
        return None
    return None if value is None else str(value)


def _run(target: Target, *, apply: bool) -> dict[str, Any]:
    """One target's plan or apply through tdgc's library: its summary, also pushed as XCom `tdgc_summary`."""
    from tdgc.errors import TdgcError
    from tdgc.job import Job, run_job

    context = get_current_context()
    context["tdgc_target"] = target["label"]  # type: ignore[typeddict-unknown-key]  # names the mapped instance
    params, ti = context["params"], context["ti"]
    policy_text, policy_file = policy_source(params.get("policy"), Path(__file__).resolve().parent)
    mode = "apply" if apply else "plan"
    try:
        job = Job(
            policy_text=policy_text,
            policy_source="the DAG's policy param",
            policy_file=policy_file,
            apply=apply,
            regions=(target["region"],) if target["region"] else (),
            role_arns=(target["role_arn"],) if target["role_arn"] else (),
            external_id=params.get("external_id") or None,
            families=tuple(params.get("families") or ()),
            archive=(params.get("archive") or "").strip() or None,
            report=report_location(params.get("report"), context["run_id"], target),
            time_budget=time_budget(context["task"].execution_timeout),
            endpoint_url=None,  # boto3 honours AWS_ENDPOINT_URL on its own
        )
        summary: dict[str, Any] = dict(run_job(job))
    except TdgcError as exc:  # bad input (exit 2) or a guard that refused (exit 3): nothing was changed
        summary = {"mode": mode, "exit_code": exc.exit_code, "error": str(exc), "report": None}
    summary["target"] = target
    ti.xcom_push(key=SUMMARY_KEY, value=summary)
    log.info("tdgc %s %s: %s", mode, target["label"], _short(summary))
    why = failure_of(summary)
    if why:
        where = f"; report: {summary['report']}" if summary.get("report") else ""
        raise AirflowFailException(f"tdgc {mode} {target['label']}: {why}{where}")
    return summary


def _pulled(value: Any) -> list[Any]:
    """XComs pulled for a list of map indexes: a list or lazy sequence (one bare value, to be safe)."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [value]
    return [v for v in value if v is not None]


def _short(summary: Mapping[str, Any]) -> str:
    counts = summary.get("summary") or {}
    parts = [f"{key} {counts[key]}" for key in _COUNTS if key in counts]
    parts += [f"{key} {n}" for key, n in (counts.get("results") or {}).items() if n]
    if summary.get("report"):
        parts.append(f"report {summary['report']}")
    if summary.get("error"):
        parts.append(f"error {summary['error']}")
    return ", ".join(parts)


# ---- the DAG --------------------------------------------------------------------------------------------

with DAG(
    dag_id=DAG_ID,
    description="Garbage-collect ECS task-definition revisions with tdgc: plans; applies only when allowed",
    schedule="@weekly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # two applies at once are safe, but they would only contend for the same rate limits
    default_args={"retries": 0, "execution_timeout": timedelta(hours=6)},
    tags=["tdgc", "ecs", "maintenance"],
    doc_md=__doc__,
    params={
        "apply": Param(
            False,
            type="boolean",
            description=f"Deregister and delete what the policy releases; also needs Variable {APPLY_VARIABLE}=true.",
        ),
        "accounts": Param(
            [],
            type="array",
            items={"type": "string", "pattern": _ROLE_ARN},
            description="IAM role ARNs to assume, one per member account; [] = the worker's own credentials.",
        ),
        "external_id": Param(None, type=["null", "string"], description="ExternalId for assuming those roles."),
        "regions": Param(
            [],
            type="array",
            items={"type": "string", "pattern": f"^{ALL_REGIONS}$|{_REGION}"},
            description='Regions; ["all"] = every enabled region; [] = the worker\'s default region.',
        ),
        "families": Param([], type="array", items={"type": "string"}, description="Only these families (globs)."),
        "policy": Param(
            "",
            type="string",
            description="tdgc policy: TOML text, or a file path (relative: to the DAG folder); empty: built-in.",
        ),
        "archive": Param("", type="string", description="Archive each revision before deleting it: a dir or s3://."),
        "report": Param("", type="string", description="Write each target's JSON report under this dir or s3://."),
    },
) as dag:

    @task(multiple_outputs=False)
    def targets() -> list[Target]:
        """accounts x regions, checked before anything runs."""
        params = get_current_context()["params"]
        found = make_targets(params.get("accounts") or (), params.get("regions") or ())
        log.info("%d target(s): %s", len(found), ", ".join(t["label"] for t in found))
        return found

    @task(map_index_template="{{ tdgc_target }}", multiple_outputs=False)
    def plan(target: Target) -> dict[str, Any]:
        """Plan one target: reads only, never changes anything."""
        return _run(target, apply=False)

    @task
    def apply_gate() -> bool:
        """Skipped (and so are the apply tasks) unless the run's apply param and Variable tdgc_apply allow it."""
        allowed, why = apply_allowed(get_current_context()["params"].get("apply"), _variable(APPLY_VARIABLE))
        log.info("%s", why)
        if not allowed:
            raise AirflowSkipException(why)
        return True

    @task(map_index_template="{{ tdgc_target }}", multiple_outputs=False)
    def apply(target: Target, gate: bool) -> dict[str, Any]:
        """Apply one target, if the Variable still allows it when this task starts."""
        context = get_current_context()
        context["tdgc_target"] = target["label"]  # type: ignore[typeddict-unknown-key]
        allowed, why = apply_allowed(gate is True and context["params"].get("apply"), _variable(APPLY_VARIABLE))
        if not allowed:
            context["ti"].xcom_push(key=SUMMARY_KEY, value={"target": target, "skipped": why})
            raise AirflowSkipException(why)
        return _run(target, apply=True)

    @task(trigger_rule="all_done", multiple_outputs=False)
    def summary(targets: list[Target]) -> dict[str, Any]:
        """The run in one short XCom; fails (after pushing it) if any target failed."""
        ti = get_current_context()["ti"]
        indexes = list(range(len(targets)))  # explicit map indexes: pulls a mapped task's XComs alike on 2.x and 3.x
        plans = _pulled(ti.xcom_pull(task_ids="plan", key=SUMMARY_KEY, map_indexes=indexes))
        applies = _pulled(ti.xcom_pull(task_ids="apply", key=SUMMARY_KEY, map_indexes=indexes))
        result = summarize(targets, plans, applies, applied=ti.xcom_pull(task_ids="apply_gate") is True)
        ti.xcom_push(key=SUMMARY_KEY, value=result)
        log.info("tdgc %s, %d target(s): %s", result["mode"], result["targets"], result["summary"])
        for row in result["by_target"]:
            log.info("  %s", row)
        if result["failed"]:
            raise AirflowFailException(f"tdgc: {len(result['failed'])} target(s) failed: {', '.join(result['failed'])}")
        return result

    found = targets()
    plans = plan.expand(target=found)
    gate = apply_gate()
    plans >> gate
    applies = apply.partial(gate=gate).expand(target=found)
    [plans, applies] >> summary(found)
