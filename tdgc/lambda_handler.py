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
Event (the schedule's Input; every key optional): {"dry_run": bool, "regions": [...] | "all",
  "families": [...]}, plus the Scheduler context attributes the templates pass, logged as they are:
  "schedule", "scheduled_time", "execution_id", "attempt".

An event may narrow what the environment configures, never widen it (docs/security.md §3): whoever may
invoke the function or edit its schedule is not thereby allowed to change what the function deletes.
  dry_run   true narrows; false when TDGC_DRY_RUN is true widens (to apply)
  regions   a subset of TDGC_REGIONS (default: the function's region) narrows; any other region widens;
            with TDGC_REGIONS=all, any regions narrow
  families  narrows: the environment sets no family scope (every family), so any globs select fewer
A widening event is refused (a UsageError: logged, nothing run, the invocation fails) unless
TDGC_EVENT_MAY_WIDEN names it. What only the environment sets (the policy, the archive and report
destinations, the roles, the endpoint; see ENVIRONMENT_ONLY) is refused in an event whatever it says.

Logs are JSON lines: one per action ("deregistered", "delete accepted", ...) and a last "tdgc summary" line
with flat fields for CloudWatch Logs Insights. The function returns the summary (see tdgc.job) when the run
exits 0; otherwise it raises RunFailed after logging it, so that the invocation counts as an error (the
Errors metric, the dead-letter queue).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import botocore.exceptions
import structlog

from tdgc.aws.connection import account_id, caller
from tdgc.aws.connection import session as aws_session
from tdgc.aws.errors import error_text
from tdgc.aws.pacing import unpaced
from tdgc.errors import EXIT_OK, TdgcError, UsageError
from tdgc.job import ALL, Job, run_job
from tdgc.logs import configure
from tdgc.report.model import TargetStatus

log = structlog.get_logger("tdgc.lambda")
OVERRIDES = {"dry_run", "regions", "families"}
CONTEXT_KEYS = {"schedule", "scheduled_time", "execution_id", "attempt"}
POLICY_SOURCES = ("TDGC_POLICY", "TDGC_POLICY_PARAMETER", "TDGC_POLICY_FILE")
# Event keys that would widen the run whatever their value: what the function deletes (policy, apply), where
# (roles, endpoint) and where descriptions of revisions go (archive, report). Only the environment sets them;
# an event naming one is refused with the variable to set instead, rather than as an unknown key.
ENVIRONMENT_ONLY = {
    "apply": "TDGC_DRY_RUN", "policy": "/".join(POLICY_SOURCES), "policy_text": "/".join(POLICY_SOURCES),
    "policy_file": "TDGC_POLICY_FILE", "policy_parameter": "TDGC_POLICY_PARAMETER", "role_arns": "TDGC_ROLE_ARNS",
    "accounts": "TDGC_ROLE_ARNS", "external_id": "TDGC_EXTERNAL_ID", "archive": "TDGC_ARCHIVE",
    "report": "TDGC_REPORT", "endpoint_url": "AWS_ENDPOINT_URL",
}  # fmt: skip
WIDENINGS = ("apply", "regions")  # what TDGC_EVENT_MAY_WIDEN may allow an event to widen
NARROW_ONLY = "an event may narrow a run, never widen it"


_FUNCTION_ARN = re.compile(r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:([0-9]{12}):function:[^:]+(?::[^:]+)?")


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
        job = job_from(event, os.environ, time_budget(context), account=function_account(context))
        result = run_job(job, clock=clock)
    except TdgcError as exc:
        log.error("tdgc refused", error=str(exc), exit_code=exc.exit_code)
        raise
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    log.info("tdgc summary", **flat(result))
    if result["exit_code"] != EXIT_OK:
        raise RunFailed(_one_line(result))
    return result


def time_budget(context: LambdaContext) -> float:
    """Seconds the run may take: what the invocation has left, less a margin for the runtime to return."""
    left = context.get_remaining_time_in_millis() / 1000
    return left - min(10.0, max(1.0, left * 0.02))


def function_account(context: LambdaContext) -> str | None:
    """The function's account, from its ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]): the
    account its execution role acts in, which Lambda requires to be the function's own."""
    found = _FUNCTION_ARN.fullmatch(context.invoked_function_arn)
    return found[1] if found else None


def job_from(event: Any, env: Any, budget: float | None, *, account: str | None = None) -> Job:
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
    text, source, path = _policy(env)
    log.info("tdgc invoked", dry_run=dry_run, policy=source or path or "built-in",
             from_event=sorted(overrides) or None,
             **{k: event[k] for k in sorted(CONTEXT_KEYS) if isinstance(event, dict) and k in event})  # fmt: skip
    return Job(
        policy_text=text, policy_source=source or "policy", policy_file=path, apply=not dry_run,
        regions=tuple(regions), role_arns=tuple(_list(env.get("TDGC_ROLE_ARNS", ""))),
        external_id=env.get("TDGC_EXTERNAL_ID") or None, families=tuple(overrides.get("families", ())),
        archive=env.get("TDGC_ARCHIVE") or None, report=env.get("TDGC_REPORT") or None, time_budget=budget,
        archive_bucket_owner=owner, archive_kms_key=env.get("TDGC_ARCHIVE_KMS_KEY") or None,
    )  # fmt: skip


def flat(result: dict[str, Any]) -> dict[str, Any]:
    """The summary as flat fields (`deregister`, `done`, `targets_failed`, ...), easy to query."""
    summary = dict(result["summary"])
    results = summary.pop("results")
    statuses = [t["status"] for t in result["targets"]]
    stopped = [s for s in TargetStatus if s is not TargetStatus.OK]
    return {
        "mode": result["mode"], "exit_code": result["exit_code"], **summary, **results,
        "targets": len(statuses), **{f"targets_{s.value}": statuses.count(s) for s in stopped},
        "report": result["report"], "notes": result["notes"], "incomplete": result["incomplete"],
    }  # fmt: skip


def _one_line(result: dict[str, Any]) -> str:
    s, r = result["summary"], result["summary"]["results"]
    failed = [f"{t['target']}: {t['status']}" + (f" ({t['error']})" if t["error"] else "")
              for t in result["targets"] if t["status"] != TargetStatus.OK]  # fmt: skip
    return (f"tdgc {result['mode']} exited {result['exit_code']}: {r['failed']} actions failed of "
            f"{s['deregister'] + s['delete']}" + (f"; {'; '.join(failed)}" if failed else ""))  # fmt: skip


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
        raise UsageError(f"event: {key!r} is set by the function's environment ({ENVIRONMENT_ONLY[key]}), "
                         f"not by an event; {NARROW_ONLY}")  # fmt: skip
    unknown = sorted(set(event) - OVERRIDES - CONTEXT_KEYS)
    if unknown:
        raise UsageError(f"event: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(OVERRIDES | CONTEXT_KEYS))})")
    out: dict[str, Any] = {}
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


def _flag(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise UsageError(f"{name}: expected true or false, not {text!r}")
    return value == "true"


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
