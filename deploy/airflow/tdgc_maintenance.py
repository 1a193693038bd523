"""tdgc maintenance DAG: garbage-collect ECS task-definition revisions (Airflow 2.10+ and 3.1+).

Copy this file into the DAGs folder and install tdgc into the Airflow environment (`pip install tdgc`, or a
line in MWAA's requirements.txt); see README.md beside it.

    targets ─> plan[target] ─> apply_gate ─> apply[target] ─> summary (all_done)

`targets` is accounts x regions. `plan` and `apply` are mapped over them (one task instance per account
and region) and call tdgc as a library (`tdgc.job.run_job`); each returns tdgc's summary as its XCom.

What a run may do is the operator's, in Airflow Variables: `tdgc_policy`, `tdgc_role_arns` (and
`tdgc_external_id`), `tdgc_regions`, `tdgc_archive`, `tdgc_report`, and `tdgc_apply`. A run's params may
narrow that (`apply` false, some of the accounts, some of the regions, some families), never widen it:
whoever may trigger the DAG is not thereby allowed to change what it deletes (docs/security.md §3). A param
that would widen the run (`apply` true while `tdgc_apply` is not "true", an account or region outside the
Variables, a `policy`, `archive` or `report` of its own) fails `targets`, with one line saying why, before
anything runs.

Nothing is ever changed unless BOTH say so: the run's `apply` param is true AND the Variable `tdgc_apply` is
"true". A run whose `apply` param is false plans only (`apply_gate` is skipped, and so are the apply tasks).
Each apply task reads the Variable again before it starts: setting it to "false" stops the applies that
have not started yet.

A target whose run failed (an action failed, AWS refused, bad input) or whose apply a safety guard
refused (exit status 3) fails its task, after its report was written. `summary` gathers the mapped
summaries into one short XCom, logs it, and fails too if any target did, so that the run shows failed.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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
# The operator's settings, an Airflow Variable each (the UI, `airflow variables set`, AIRFLOW_VAR_*, a secrets
# backend): editing Variables is a permission of its own, which triggering the DAG does not give.
POLICY_VARIABLE = "tdgc_policy"  # TOML text, or a file path (relative: to the DAG folder); unset: built-in
ROLES_VARIABLE = "tdgc_role_arns"  # role ARNs, a member account each; unset: the worker's own account
EXTERNAL_ID_VARIABLE = "tdgc_external_id"  # for assuming those roles
REGIONS_VARIABLE = "tdgc_regions"  # regions, or "all"; unset: the worker's default region
ARCHIVE_VARIABLE = "tdgc_archive"  # a directory or s3://BUCKET/PREFIX, each revision written before its delete
REPORT_VARIABLE = "tdgc_report"  # a directory or s3://BUCKET/PREFIX, each target's reports under it
SETTINGS_VARIABLES = (
    POLICY_VARIABLE,
    ROLES_VARIABLE,
    EXTERNAL_ID_VARIABLE,
    REGIONS_VARIABLE,
    ARCHIVE_VARIABLE,
    REPORT_VARIABLE,
)
PARAMS = ("apply", "accounts", "regions", "families")  # all narrow the Variables, or are refused
# Params this DAG took before its settings moved to Variables: a run still giving one is told where it went,
# rather than having it ignored (a run that believes it set its own policy must not run with another).
OPERATOR_ONLY = {
    "policy": POLICY_VARIABLE,
    "archive": ARCHIVE_VARIABLE,
    "report": REPORT_VARIABLE,
    "external_id": EXTERNAL_ID_VARIABLE,
    "role_arns": ROLES_VARIABLE,
}
NARROW_ONLY = "a run's params may narrow what the operator's Variables allow, never widen it"
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


class Refused(ValueError):
    """A run's params ask for more than the operator's Variables allow; the message is one line."""


@dataclass(frozen=True)
class Settings:
    """One run's settings: the operator's Variables, narrowed by the run's params."""

    policy: str | None = None
    archive: str | None = None
    report: str | None = None
    external_id: str | None = None
    accounts: tuple[str, ...] = ()  # role ARNs to assume; (): the worker's own account
    regions: tuple[str, ...] = ()  # (): the worker's default region
    families: tuple[str, ...] = ()  # (): every family


def settings(
    params: Mapping[str, Any], given: Iterable[str], variables: Mapping[str, str | None], default_region: str | None
) -> Settings:
    """The run's settings from the Variables, narrowed by the params; Refused if a param would widen them.

    `given`: the keys the run was triggered with (its conf), so that one this DAG no longer takes is refused,
    not ignored. `default_region`: the worker's, which is what an unset `tdgc_regions` means.
    """
    extra = sorted(set(given) - set(PARAMS))
    if extra:
        key = extra[0]
        if key in OPERATOR_ONLY:
            raise Refused(f"param {key!r}: set by the operator, as Variable {OPERATOR_ONLY[key]}; {NARROW_ONLY}")
        raise Refused(f"param {key!r}: not a param of this DAG (its params: {', '.join(PARAMS)})")
    roles = items(variables.get(ROLES_VARIABLE), f"Variable {ROLES_VARIABLE}")
    accounts = items(params.get("accounts"), "param 'accounts'")
    outside = [arn for arn in accounts if arn not in roles]
    if outside:
        among = f"Variable {ROLES_VARIABLE}" if roles else f"Variable {ROLES_VARIABLE} (not set: the worker's account)"
        raise Refused(f"param 'accounts': {outside[0]} is not in {among}; {NARROW_ONLY}")
    configured = items(variables.get(REGIONS_VARIABLE), f"Variable {REGIONS_VARIABLE}")
    regions = items(params.get("regions"), "param 'regions'")
    if ALL_REGIONS not in configured:
        allowed = configured or ((default_region,) if default_region else ())
        outside = [region for region in regions if region not in allowed]
        if outside:
            where = f"Variable {REGIONS_VARIABLE} ({', '.join(configured)})"
            if not configured:
                where = (
                    f"the worker's default region, {default_region or 'none'} (Variable {REGIONS_VARIABLE} is not set)"
                )
            raise Refused(f"param 'regions': {outside[0]} is outside {where}; {NARROW_ONLY}")
    return Settings(
        policy=variables.get(POLICY_VARIABLE),
        archive=(variables.get(ARCHIVE_VARIABLE) or "").strip() or None,
        report=(variables.get(REPORT_VARIABLE) or "").strip() or None,
        external_id=(variables.get(EXTERNAL_ID_VARIABLE) or "").strip() or None,
        accounts=accounts or roles,
        regions=regions or configured,
        families=items(params.get("families"), "param 'families'"),
    )


def apply_refused(param: object, variable: str | None) -> str | None:
    """Why a run's `apply` param asks for more than Variable tdgc_apply allows, or None."""
    if param is not True or apply_allowed(param, variable)[0]:
        return None
    shown = "not set" if variable is None else repr(variable)
    return f"param 'apply' is true, but Variable {APPLY_VARIABLE} is {shown} (an operator allows apply); {NARROW_ONLY}"


def items(value: object, name: str) -> tuple[str, ...]:
    """A list of names from a param (a list) or a Variable (a JSON list, or names separated by commas or
    whitespace), each once, in order."""
    if value is None:
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("[", "{")):  # JSON, which must then be a list
            try:
                value = json.loads(text)
            except ValueError:
                raise ValueError(f"{name}: not a JSON list of names") from None
        else:
            value = re.split(r"[\s,]+", text)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name}: expected a list of names")
    return tuple(dict.fromkeys(v.strip() for v in value if v.strip()))


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
    from tdgc.report.summary import RunSummary  # in the task only, as every tdgc import here

    run = RunSummary.from_dict(summary)
    if run.error:
        return run.error
    failed = run.failed_targets()
    if not run.exit_code and not failed:
        return None
    details = "; ".join(f"{t.target}: {t.status.value}: {t.error}" for t in failed)
    return f"tdgc exited {run.exit_code}" + (f" ({details})" if details else "")


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


def _variables() -> dict[str, str | None]:
    """The operator's settings. Unlike tdgc_apply's, a failed read fails the task: taken as not set, it would
    mean the built-in policy, no archive, or the worker's own account, each wider than what was set."""
    found: dict[str, str | None] = {}
    for name in SETTINGS_VARIABLES:
        try:
            value = Variable.get(name, None)
        except Exception as exc:
            raise AirflowFailException(f"cannot read Variable {name}: {type(exc).__name__}: {exc}") from None
        found[name] = None if value is None else str(value)
    return found


def _given(context: Any) -> list[str]:
    """The keys the run was triggered with."""
    conf = getattr(context.get("dag_run"), "conf", None)
    return list(conf) if isinstance(conf, Mapping) else []


def _default_region() -> str | None:
    import boto3

    return boto3.session.Session().region_name


def _run(target: Target, *, apply: bool) -> dict[str, Any]:
    """One target's plan or apply through tdgc's library: its summary, also pushed as XCom `tdgc_summary`."""
    from tdgc.errors import TdgcError
    from tdgc.job import Job, run_job

    context = get_current_context()
    context["tdgc_target"] = target["label"]  # type: ignore[typeddict-unknown-key]  # names the mapped instance
    ti = context["ti"]
    try:  # the same rule as `targets` applied, to the Variables as they are now
        chosen = settings(context["params"], _given(context), _variables(), _default_region())
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from None
    policy_text, policy_file = policy_source(chosen.policy, Path(__file__).resolve().parent)
    mode = "apply" if apply else "plan"
    try:
        job = Job(
            policy_text=policy_text,
            policy_source=f"Variable {POLICY_VARIABLE}",
            policy_file=policy_file,
            apply=apply,
            regions=(target["region"],) if target["region"] else (),
            role_arns=(target["role_arn"],) if target["role_arn"] else (),
            external_id=chosen.external_id,
            families=chosen.families,
            archive=chosen.archive,
            report=report_location(chosen.report, context["run_id"], target),
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
        # Each narrows what the operator's Variables allow; a run asking for more fails in `targets`.
        "apply": Param(
            False,
            type="boolean",
            description=f"Deregister and delete what the policy releases; needs Variable {APPLY_VARIABLE} true.",
        ),
        "accounts": Param(
            [],
            type="array",
            items={"type": "string", "pattern": _ROLE_ARN},
            description=f"Only these of the role ARNs in Variable {ROLES_VARIABLE}; [] = all of them.",
        ),
        "regions": Param(
            [],
            type="array",
            items={"type": "string", "pattern": f"^{ALL_REGIONS}$|{_REGION}"},
            description=f"Only these of the regions in Variable {REGIONS_VARIABLE}; [] = all of them.",
        ),
        "families": Param([], type="array", items={"type": "string"}, description="Only these families (globs)."),
    },
) as dag:

    @task(multiple_outputs=False)
    def targets() -> list[Target]:
        """accounts x regions, from the Variables as the params narrow them; fails before anything runs if a
        param would widen them, or a role or region is malformed."""
        context = get_current_context()
        params = context["params"]
        try:
            refused = apply_refused(params.get("apply"), _variable(APPLY_VARIABLE))
            if refused:
                raise Refused(refused)
            chosen = settings(params, _given(context), _variables(), _default_region())
            found = make_targets(chosen.accounts, chosen.regions)
        except ValueError as exc:  # Refused included: one line, in the task's log and the UI
            raise AirflowFailException(str(exc)) from None
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
        if not isinstance(targets, list):  # 3.x runs this with None when `targets` failed; 2.x fails it first
            raise AirflowFailException("tdgc: no targets, nothing ran: see the targets task's log")
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
