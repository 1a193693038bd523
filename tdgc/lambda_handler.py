"""The AWS Lambda entry point: `tdgc.lambda_handler.handler`, for an EventBridge Scheduler schedule.

Configuration comes from the environment (set by the SAM template or the Terraform module); the event may
narrow it per schedule or invocation. Thin: it builds a Job and calls `tdgc.job.run_job`, as the DAG does.

Environment:
  TDGC_POLICY / TDGC_POLICY_PARAMETER / TDGC_POLICY_FILE  the policy: TOML text, an SSM parameter holding
      it, or a file packaged with the function (relative to its root); at most one; none: built-in defaults
  TDGC_DRY_RUN     "true" (the default) plans only; "false" applies
  TDGC_REGIONS     comma-separated regions, or "all"; default: the function's region
  TDGC_ROLE_ARNS   comma-separated roles to assume, a member account each; TDGC_EXTERNAL_ID for them
  TDGC_ARCHIVE     s3://BUCKET/PREFIX: each revision's description is written there before its delete
  TDGC_REPORT      s3://BUCKET/PREFIX/: each run's JSON report goes there
  TDGC_ARCHIVE_BUCKET_OWNER  the account that must own those buckets (12 digits); default: the function's own
      account, read from its ARN (no STS call).
  TDGC_ARCHIVE_KMS_KEY  a KMS key (ARN, id or alias/NAME) that encrypts what goes there; default: SSE-S3 or
      the policy's [safety] archive_kms_key
  TDGC_EVENT_MAY_WIDEN  comma-separated, of "apply" and "regions": what an event may widen (default: nothing)
  TDGC_PARALLEL    targets (accounts times regions) collected at once, 1 to 64 (default 1: one after another)
  TDGC_MEMBER_ROLE_NAME  organisation mode: the role (NAME or PATH/NAME) to assume in the account an event
      names; TDGC_EXTERNAL_ID for it. The function's role may assume only roles of that name.
Event (the schedule's Input; every key optional): {"dry_run": bool, "regions": [...] | "all",
  "families": [...]}, plus the Scheduler context attributes the templates pass, logged as they are:
  "schedule", "scheduled_time", "execution_id", "attempt".
  Organisation mode's state machine sends one target per invocation (docs/design.md, "Organisation mode"):
  {"account": "111122223333", "regions": "eu-west-1", "run_id": EXECUTION_NAME, "time_budget": SECONDS}.

An event may narrow what the environment configures, never widen it (docs/security.md §3): whoever may
invoke the function or edit its schedule is not thereby allowed to change what the function deletes.
  dry_run   true narrows; false when TDGC_DRY_RUN is true widens (to apply)
  regions   a subset of TDGC_REGIONS (default: the function's region) narrows; any other region widens;
            with TDGC_REGIONS=all, any regions narrow
  families  narrows: the environment sets no family scope (every family), so any globs select fewer
  account   narrows to one account: checked as 12 digits before anything else; the role is TDGC_ROLE_ARNS'
            role in that account (one of those accounts, or refused), or TDGC_MEMBER_ROLE_NAME in it. Without
            either variable an account is refused: an event never names a role ARN.
  time_budget  narrows: seconds, at most what the invocation has left
  run_id    puts the report at TDGC_REPORT/RUN_ID/ACCOUNT-REGION.json (tdgc.job.target_report), where the
            state machine's merge finds it; needs TDGC_REPORT and one region
A widening event is refused (a UsageError: logged, nothing run, the invocation fails) unless
TDGC_EVENT_MAY_WIDEN names it. What only the environment sets (the policy, the archive and report
destinations, the roles, the endpoint; see ENVIRONMENT_ONLY) is refused in an event whatever it says.

Logs are JSON lines: one per action ("deregistered", "delete accepted", ...) and a "tdgc summary" line
with flat fields for CloudWatch Logs Insights, then the run's CloudWatch metrics as Embedded Metric Format
lines (tdgc.report.metrics: namespace tdgc; the templates' alarms watch them). The function returns the
summary (see tdgc.job) when the run exits 0; otherwise it raises RunFailed after logging it, so that the
invocation counts as an error (the Errors metric, the dead-letter queue).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import botocore.exceptions
import structlog

from tdgc.aws.connection import Role, account_id, caller
from tdgc.aws.connection import session as aws_session
from tdgc.aws.errors import error_text
from tdgc.aws.pacing import unpaced
from tdgc.aws.s3 import S3Access, s3_access
from tdgc.collect.run import MAX_PARALLEL
from tdgc.errors import EXIT_OK, TdgcError, UsageError
from tdgc.job import (
    ALL,
    Job,
    check_targets,
    merge_from_s3,
    org_accounts,
    org_report,
    organisational_units,
    read_targets,
    role_targets,
    run_id,
    run_job,
    target_report,
    targets_location,
    targets_of,
    write_targets,
)
from tdgc.logs import configure
from tdgc.report.metrics import emf
from tdgc.report.summary import RunSummary

log = structlog.get_logger("tdgc.lambda")
OVERRIDES = {"dry_run", "regions", "families", "account", "time_budget", "run_id"}
CONTEXT_KEYS = {"schedule", "scheduled_time", "execution_id", "attempt"}
POLICY_SOURCES = ("TDGC_POLICY", "TDGC_POLICY_PARAMETER", "TDGC_POLICY_FILE")
# Event keys that would widen the run whatever their value: what the function deletes (policy, apply), where
# (roles, endpoint) and where descriptions of revisions go (archive, report). Only the environment sets them;
# an event naming one is refused with the variable to set instead, rather than as an unknown key.
ENVIRONMENT_ONLY = {
    "apply": "TDGC_DRY_RUN",
    "policy": "/".join(POLICY_SOURCES),
    "policy_text": "/".join(POLICY_SOURCES),
    "policy_file": "TDGC_POLICY_FILE",
    "policy_parameter": "TDGC_POLICY_PARAMETER",
    "role_arns": "TDGC_ROLE_ARNS",
    "accounts": "TDGC_ROLE_ARNS",
    "external_id": "TDGC_EXTERNAL_ID",
    "archive": "TDGC_ARCHIVE",
    "report": "TDGC_REPORT",
    "endpoint_url": "AWS_ENDPOINT_URL",
}
WIDENINGS = ("apply", "regions")  # what TDGC_EVENT_MAY_WIDEN may allow an event to widen
NARROW_ONLY = "an event may narrow a run, never widen it"


_FUNCTION_ARN = re.compile(r"arn:(aws[a-z-]*):lambda:[a-z0-9-]+:([0-9]{12}):function:[^:]+(?::[^:]+)?")
# A role name, with an optional path (IAM's own limits: 64 characters for the name).
_ROLE_NAME = re.compile(r"([\w+=,.@-]+/)*[\w+=,.@-]{1,64}")


class LambdaContext(Protocol):
    function_name: str
    aws_request_id: str
    invoked_function_arn: str

    def get_remaining_time_in_millis(self) -> int: ...


class RunFailed(Exception):
    """The run ended with a non-zero exit status; the message is its one-line summary."""


def handler(event: Any, context: LambdaContext, *, clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """The function's entry point. `clock` times the run against what `context` says is left: Lambda passes
    only (event, context), so it is the real one; a test passes a fake one that `context` reads too."""
    configure("json", level=logging.INFO)
    structlog.contextvars.bind_contextvars(request_id=getattr(context, "aws_request_id", None))
    try:
        job = job_from(
            event,
            os.environ,
            time_budget(context),
            account=function_account(context),
            partition=function_partition(context),
        )
        result = run_job(job, clock=clock)
    except TdgcError as exc:
        log.error("tdgc refused", error=str(exc), exit_code=exc.exit_code)
        raise
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    summary = RunSummary.from_dict(result)
    log.info("tdgc summary", **summary.flat())
    # CloudWatch metrics: a JSON line on stdout is one (tdgc.report.metrics).
    for document in emf(result, getattr(context, "function_name", None)):
        print(json.dumps(document), flush=True)
    if summary.exit_code != EXIT_OK:
        raise RunFailed(summary.one_line())
    return result


def targets_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Organisation mode's first state: `{"run_id"}` in; the targets (see `targets_from`) written to
    TDGC_REPORT/RUN_ID/targets.json, the Distributed Map's ItemReader reads them there; out, where they are:
    `{"run_id", "bucket", "key", "results_prefix", "count"}` (tdgc.job.write_targets), whatever their number."""
    configure("json", level=logging.INFO)
    try:
        report = _org_report(os.environ)
        listed = targets_from(event, os.environ, _organizations)
        s3 = _report_access(os.environ, context)
        result = write_targets(report, listed["run_id"], listed["targets"], s3)
    except TdgcError as exc:
        log.error("tdgc refused", error=str(exc), exit_code=exc.exit_code)
        raise
    log.info("tdgc targets", run_id=result["run_id"], targets=result["count"], key=result["key"])
    return result


def _org_report(env: Any) -> str:
    report = env.get("TDGC_REPORT")
    if not report:
        raise UsageError("TDGC_REPORT: not set; organisation mode keeps the targets and their reports there")
    return org_report(str(report))


def _report_access(env: Any, context: LambdaContext) -> S3Access:
    """S3 for the run's own objects, as the reports are written: the bucket's owner (TDGC_ARCHIVE_BUCKET_OWNER,
    else the function's account) named on each call, TDGC_ARCHIVE_KMS_KEY's encryption asked for."""
    owner = env.get("TDGC_ARCHIVE_BUCKET_OWNER") or function_account(context)
    owner = account_id(owner, "TDGC_ARCHIVE_BUCKET_OWNER") if owner else None
    return s3_access(caller(aws_session(None), None), owner, env.get("TDGC_ARCHIVE_KMS_KEY") or None)


def targets_from(event: Any, env: Any, organizations: Callable[[], Any]) -> dict[str, Any]:
    """The targets of an organisation run, every input checked before any AWS call: TDGC_ROLE_ARNS' accounts,
    or with TDGC_MEMBER_ROLE_NAME the organisation's ACTIVE accounts (under TDGC_ORGANIZATIONAL_UNITS if set),
    or else the function's own account; times TDGC_REGIONS (default: the function's region). However many:
    the list goes to S3, never through the state machine's data."""
    if not isinstance(event, dict) or set(event) - {"run_id"}:
        raise UsageError(f"event: expected {{'run_id': EXECUTION_NAME}}, not {event!r}")
    run = run_id(event.get("run_id"), "event: 'run_id'")
    regions = _list(env.get("TDGC_REGIONS", "")) or [env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""]
    check_targets([{"region": region} for region in regions])
    if ALL in regions and len(regions) > 1:
        raise UsageError(f"TDGC_REGIONS: {ALL!r} cannot be combined with named regions")
    roles = _list(env.get("TDGC_ROLE_ARNS", ""))
    name = env.get("TDGC_MEMBER_ROLE_NAME") or ""
    ous = organisational_units(_list(env.get("TDGC_ORGANIZATIONAL_UNITS", "")))
    if roles and name:
        raise UsageError("set TDGC_ROLE_ARNS or TDGC_MEMBER_ROLE_NAME, not both")
    if ous and not name:
        raise UsageError("TDGC_ORGANIZATIONAL_UNITS needs TDGC_MEMBER_ROLE_NAME (the role to assume in each account)")
    if roles:
        return {"run_id": run, "targets": role_targets(roles, regions)}
    if not name:
        return {"run_id": run, "targets": targets_of([None], regions)}
    try:
        accounts = org_accounts(organizations(), ous)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise UsageError(f"cannot list the organisation's accounts ({error_text(exc)})") from None
    if not accounts:
        raise UsageError("no ACTIVE account in the organisation" + (f" under {', '.join(ous)}" if ous else ""))
    return {"run_id": run, "targets": targets_of(accounts, regions)}


def _organizations() -> Any:
    return caller(aws_session(None), None).client("organizations", unpaced())


def merge_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Organisation mode's last state: `{"run_id", "bucket", "key"}` in (where the first state wrote the
    targets, which must be TDGC_REPORT/RUN_ID/targets.json), the list read from there and the per-target
    reports merged into TDGC_REPORT/RUN_ID/organisation.json and .md; returns a summary small enough for a
    state's output (counts, not the targets), or raises RunFailed when the merged exit status is not 0."""
    configure("json", level=logging.INFO)
    try:
        if not isinstance(event, dict) or set(event) != {"run_id", "bucket", "key"}:
            raise UsageError("event: expected {'run_id': EXECUTION_NAME, 'bucket': BUCKET, 'key': KEY}")
        run = run_id(event["run_id"], "event: 'run_id'")
        report = _org_report(os.environ)
        location = targets_location(report, run)
        if not isinstance(event["bucket"], str) or not isinstance(event["key"], str):
            raise UsageError("event: 'bucket' and 'key' must be strings")
        # Only the run's own list: an event cannot point the merge at any other object.
        if f"s3://{event['bucket']}/{event['key']}" != location:
            raise UsageError(
                f"event: the targets of run {run} are at {location}, not s3://{event['bucket']}/{event['key']}"
            )
        s3 = _report_access(os.environ, context)
        result = merge_from_s3(report, run, read_targets(location, s3), s3)
    except TdgcError as exc:
        log.error("tdgc refused", error=str(exc), exit_code=exc.exit_code)
        raise
    log.info("tdgc organisation summary", **{k: v for k, v in result.items() if k not in ("tool", "tool_version")})
    if result["exit_code"] != EXIT_OK:
        by_status = ", ".join(f"{n} {s}" for s, n in result["targets_by_status"].items() if n)
        failed = result["summary"]["results"]["failed"]
        raise RunFailed(
            f"tdgc {result['mode']} of {result['targets']} targets exited {result['exit_code']}: "
            f"{by_status}; {failed} actions failed; see {result['report']}"
        )
    return result


def time_budget(context: LambdaContext) -> float:
    """Seconds the run may take: what the invocation has left, less a margin for the runtime to return."""
    left = context.get_remaining_time_in_millis() / 1000
    return left - min(10.0, max(1.0, left * 0.02))


def function_account(context: LambdaContext) -> str | None:
    """The function's account, from its ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]): the
    account its execution role acts in, which Lambda requires to be the function's own."""
    found = _FUNCTION_ARN.fullmatch(context.invoked_function_arn)
    return found[2] if found else None


def function_partition(context: LambdaContext) -> str:
    """The function's partition (aws, aws-cn, aws-us-gov), from its ARN: the member roles are in the same one."""
    found = _FUNCTION_ARN.fullmatch(context.invoked_function_arn)
    return found[1] if found else "aws"


def job_from(event: Any, env: Any, budget: float | None, *, account: str | None = None, partition: str = "aws") -> Job:
    """The Job an invocation asks for; a UsageError names anything wrong in the event or the environment, or
    an event that would widen the run. Checked before any AWS call (the policy parameter is read last).
    `account` is the function's own, the buckets' owner unless TDGC_ARCHIVE_BUCKET_OWNER names another."""
    owner = env.get("TDGC_ARCHIVE_BUCKET_OWNER") or None
    owner = account_id(owner, "TDGC_ARCHIVE_BUCKET_OWNER") if owner is not None else account
    overrides = _overrides(event)
    configured_dry_run = _flag(env.get("TDGC_DRY_RUN", "true"), "TDGC_DRY_RUN")
    configured_regions = _list(env.get("TDGC_REGIONS", ""))
    may_widen = _may_widen(env.get("TDGC_EVENT_MAY_WIDEN", ""))
    dry_run = overrides.get("dry_run", configured_dry_run)
    if configured_dry_run and not dry_run and "apply" not in may_widen:
        raise UsageError(f"event: 'dry_run': false asks to apply, and TDGC_DRY_RUN is true; {NARROW_ONLY}")
    regions = overrides.get("regions", configured_regions)
    if "regions" in overrides and "regions" not in may_widen:
        _within_regions(regions, configured_regions, env)
    roles = _roles(overrides.get("account"), env, partition)
    if "time_budget" in overrides:
        budget = min(budget, overrides["time_budget"]) if budget is not None else overrides["time_budget"]
    report = env.get("TDGC_REPORT") or None
    if "run_id" in overrides:
        if report is None:
            raise UsageError("event: 'run_id' names a report in TDGC_REPORT, which is not set")
        if len(regions) != 1:
            raise UsageError("event: 'run_id' needs one region (the report is per account and region)")
        report = target_report(report, overrides["run_id"], overrides.get("account"), regions[0])
    text, source, path = _policy(env)
    log.info(
        "tdgc invoked",
        dry_run=dry_run,
        policy=source or path or "built-in",
        from_event=sorted(overrides) or None,
        **{k: event[k] for k in sorted(CONTEXT_KEYS) if isinstance(event, dict) and k in event},
    )
    return Job(
        policy_text=text,
        policy_source=source or "policy",
        policy_file=path,
        apply=not dry_run,
        regions=tuple(regions),
        role_arns=roles,
        external_id=env.get("TDGC_EXTERNAL_ID") or None,
        families=tuple(overrides.get("families", ())),
        archive=env.get("TDGC_ARCHIVE") or None,
        report=report,
        time_budget=budget,
        parallel=_parallel(env.get("TDGC_PARALLEL", "1")),
        archive_bucket_owner=owner,
        archive_kms_key=env.get("TDGC_ARCHIVE_KMS_KEY") or None,
    )


def _overrides(event: Any) -> dict[str, Any]:
    if event is None:
        return {}
    if not isinstance(event, dict):
        raise UsageError(f"event: expected a JSON object, got {type(event).__name__}")
    if "detail-type" in event and isinstance(event.get("detail"), dict):  # an EventBridge rule's envelope
        event = event["detail"]
    reserved = sorted(set(event) & set(ENVIRONMENT_ONLY))
    if reserved:
        key = reserved[0]
        raise UsageError(
            f"event: {key!r} is set by the function's environment ({ENVIRONMENT_ONLY[key]}), "
            f"not by an event; {NARROW_ONLY}"
        )
    unknown = sorted(set(event) - OVERRIDES - CONTEXT_KEYS)
    if unknown:
        raise UsageError(f"event: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(OVERRIDES | CONTEXT_KEYS))})")
    out: dict[str, Any] = {}
    # The account first: a malformed one is refused before anything else is read, let alone called.
    if event.get("account") is not None:  # null: the function's own account, as if the key were absent
        if not isinstance(event["account"], str):  # a JSON number would lose leading zeros: never guess
            raise UsageError(
                f"event: 'account' {event['account']!r}: expected an AWS account id, 12 digits, as a string"
            )
        out["account"] = account_id(event["account"], "event: 'account'")
    if "time_budget" in event:
        seconds = event["time_budget"]
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= 900:
            raise UsageError("event: 'time_budget' must be a number of seconds, more than 0 and at most 900")
        out["time_budget"] = float(seconds)
    if "run_id" in event:
        out["run_id"] = run_id(event["run_id"], "event: 'run_id'")
    if "dry_run" in event:
        if not isinstance(event["dry_run"], bool):
            raise UsageError("event: 'dry_run' must be true or false")
        out["dry_run"] = event["dry_run"]
    for key in ("regions", "families"):
        if key in event:
            value = event[key]
            if isinstance(value, str):
                value = _list(value)
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                raise UsageError(f"event: {key!r} must be a list of names")
            if value:  # an empty list leaves the environment's value, as a missing key does
                out[key] = [v.strip() for v in value]
    return out


def _roles(account: str | None, env: Any, partition: str) -> tuple[str, ...]:
    """The roles the run assumes: TDGC_ROLE_ARNS; an event's account narrows them to that account's role, or
    names the account whose TDGC_MEMBER_ROLE_NAME role to assume. The ARN is always built or chosen here,
    from the environment: an event can choose an account among those the function's role may reach (IAM
    allows only roles of that name), never a role."""
    configured = tuple(_list(env.get("TDGC_ROLE_ARNS", "")))
    name = (env.get("TDGC_MEMBER_ROLE_NAME") or "").strip("/")
    if name and not _ROLE_NAME.fullmatch(name):
        raise UsageError(f"TDGC_MEMBER_ROLE_NAME: {name!r} is not a role name (NAME or PATH/NAME)")
    if name and configured:
        raise UsageError("set TDGC_ROLE_ARNS or TDGC_MEMBER_ROLE_NAME, not both")
    if account is None:
        return configured
    if configured:
        chosen = tuple(arn for arn in configured if Role(arn).account == account)
        if not chosen:
            raise UsageError(f"event: 'account' {account} has no role in TDGC_ROLE_ARNS; {NARROW_ONLY}")
        return chosen
    if name:
        return (f"arn:{partition}:iam::{account}:role/{name}",)
    raise UsageError("event: 'account' needs TDGC_MEMBER_ROLE_NAME or TDGC_ROLE_ARNS in the function's environment")


def _may_widen(text: str) -> frozenset[str]:
    allowed = frozenset(_list(text))
    bad = sorted(allowed - set(WIDENINGS))
    if bad:
        raise UsageError(f"TDGC_EVENT_MAY_WIDEN: {bad[0]!r} is not one of {', '.join(WIDENINGS)}")
    return allowed


def _within_regions(asked: list[str], configured: list[str], env: Any) -> None:
    """An event's regions must be among those the environment configures: TDGC_REGIONS, or without it the
    function's own region (which the Lambda runtime sets as AWS_REGION); with "all", any region is."""
    if ALL in configured:
        return
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    allowed = configured or ([region] if region else [])
    outside = [r for r in asked if r not in allowed]
    if outside:
        where = (
            f"TDGC_REGIONS ({', '.join(configured)})"
            if configured
            else f"the function's region ({region or 'unknown'})"
        )
        raise UsageError(f"event: 'regions' asks for {', '.join(outside)}, outside {where}; {NARROW_ONLY}")


def _policy(env: Any) -> tuple[str | None, str | None, str | None]:
    """(text, source, path): the policy's TOML text and how to name it, or a file's path; all None: built-in."""
    given = [name for name in POLICY_SOURCES if env.get(name)]
    if len(given) > 1:
        raise UsageError(f"policy: set one of {', '.join(POLICY_SOURCES)}, not {' and '.join(given)}")
    if env.get("TDGC_POLICY"):
        return env["TDGC_POLICY"], "TDGC_POLICY", None
    if env.get("TDGC_POLICY_PARAMETER"):
        name = env["TDGC_POLICY_PARAMETER"]
        return _parameter(name), f"ssm:{name}", None
    if env.get("TDGC_POLICY_FILE"):
        path = Path(env["TDGC_POLICY_FILE"])
        return None, None, str(path if path.is_absolute() else Path(env.get("LAMBDA_TASK_ROOT", ".")) / path)
    return None, None, None


def _parameter(name: str) -> str:
    session = aws_session(None)
    ssm = caller(session, None).client("ssm", unpaced())
    try:
        value: str = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise UsageError(f"policy parameter {name}: cannot read it ({error_text(exc)})") from None
    return value


def _parallel(text: str) -> int:
    """TDGC_PARALLEL: a whole number of targets at once, 1 to MAX_PARALLEL."""
    value = text.strip()
    if not value.isdigit() or not 1 <= int(value) <= MAX_PARALLEL:
        raise UsageError(f"TDGC_PARALLEL: expected a whole number from 1 to {MAX_PARALLEL}, not {text!r}")
    return int(value)


def _flag(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise UsageError(f"{name}: expected true or false, not {text!r}")
    return value == "true"


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
