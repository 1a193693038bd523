"""The AWS Lambda entry point: `tdgc.lambda_handler.handler`, for an EventBridge Scheduler schedule.

Configuration comes from the environment (set by the SAM template or the Terraform module); the event may
override a few things per schedule. Thin: it builds a Job and calls `tdgc.job.run_job`, as the DAG does.

Environment:
  TDGC_POLICY / TDGC_POLICY_PARAMETER / TDGC_POLICY_FILE  the policy: TOML text, an SSM parameter holding
      it, or a file packaged with the function (relative to its root); at most one; none: built-in defaults
  TDGC_DRY_RUN     "true" (the default) plans only; "false" applies
  TDGC_REGIONS     comma-separated regions, or "all"; default: the function's region
  TDGC_ROLE_ARNS   comma-separated roles to assume, a member account each; TDGC_EXTERNAL_ID for them
  TDGC_ARCHIVE     s3://BUCKET/PREFIX: each revision's description is written there before its delete
  TDGC_REPORT      s3://BUCKET/PREFIX/: each run's JSON report goes there
  TDGC_ARCHIVE_BUCKET_OWNER  the account that must own those buckets (12 digits); default: the function's own
      account, read from its ARN (no STS call). The policy's [safety] archive_kms_key encrypts what goes there.
Event (the schedule's Input; every key optional): {"dry_run": bool, "regions": [...] | "all",
  "families": [...]}, plus the Scheduler context attributes the templates pass, logged as they are:
  "schedule", "scheduled_time", "execution_id", "attempt".

Logs are JSON lines: one per action ("deregistered", "delete accepted", ...) and a last "tdgc summary" line
with flat fields for CloudWatch Logs Insights. The function returns the summary (see tdgc.job) when the run
exits 0; otherwise it raises RunFailed after logging it, so that the invocation counts as an error (the
Errors metric, the dead-letter queue).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Protocol

import botocore.exceptions
import structlog

from tdgc.aws import Connection, account_id, error_text
from tdgc.aws import session as aws_session
from tdgc.errors import EXIT_OK, TdgcError, UsageError
from tdgc.job import Job, run_job
from tdgc.logs import configure
from tdgc.pacing import Pacer

log = structlog.get_logger("tdgc.lambda")
OVERRIDES = {"dry_run", "regions", "families"}
CONTEXT_KEYS = {"schedule", "scheduled_time", "execution_id", "attempt"}
POLICY_SOURCES = ("TDGC_POLICY", "TDGC_POLICY_PARAMETER", "TDGC_POLICY_FILE")
_FUNCTION_ARN = re.compile(r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:([0-9]{12}):function:[^:]+(?::[^:]+)?")


class LambdaContext(Protocol):
    function_name: str
    invoked_function_arn: str
    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int: ...


class RunFailed(Exception):
    """The run ended with a non-zero exit status; the message is its one-line summary."""


def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    configure("json", level=logging.INFO)
    structlog.contextvars.bind_contextvars(request_id=getattr(context, "aws_request_id", None))
    try:
        job = job_from(event, os.environ, time_budget(context), account=function_account(context))
        result = run_job(job)
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
    """The Job an invocation asks for; a UsageError names anything wrong in the event or the environment.
    `account` is the function's own, the buckets' owner unless TDGC_ARCHIVE_BUCKET_OWNER names another."""
    overrides = _overrides(event)
    owner = env.get("TDGC_ARCHIVE_BUCKET_OWNER") or None
    owner = account_id(owner, "TDGC_ARCHIVE_BUCKET_OWNER") if owner is not None else account
    text, source, path = _policy(env)
    dry_run = overrides.get("dry_run", _flag(env.get("TDGC_DRY_RUN", "true"), "TDGC_DRY_RUN"))
    regions = overrides.get("regions", _list(env.get("TDGC_REGIONS", "")))
    log.info("tdgc invoked", dry_run=dry_run, policy=source or path or "built-in",
             **{k: event[k] for k in sorted(CONTEXT_KEYS) if isinstance(event, dict) and k in event})  # fmt: skip
    return Job(
        policy_text=text, policy_source=source or "policy", policy_file=path, apply=not dry_run,
        regions=tuple(regions), role_arns=tuple(_list(env.get("TDGC_ROLE_ARNS", ""))),
        external_id=env.get("TDGC_EXTERNAL_ID") or None, families=tuple(overrides.get("families", ())),
        archive=env.get("TDGC_ARCHIVE") or None, report=env.get("TDGC_REPORT") or None, time_budget=budget,
        archive_bucket_owner=owner,
    )  # fmt: skip


def flat(result: dict[str, Any]) -> dict[str, Any]:
    """The summary as flat fields (`deregister`, `done`, `targets_failed`, ...), easy to query."""
    summary = dict(result["summary"])
    results = summary.pop("results")
    statuses = [t["status"] for t in result["targets"]]
    return {
        "mode": result["mode"], "exit_code": result["exit_code"], **summary, **results,
        "targets": len(statuses), **{f"targets_{s}": statuses.count(s) for s in ("failed", "refused", "deferred")},
        "report": result["report"], "notes": result["notes"], "incomplete": result["incomplete"],
    }  # fmt: skip


def _one_line(result: dict[str, Any]) -> str:
    s, r = result["summary"], result["summary"]["results"]
    failed = [f"{t['target']}: {t['status']}" + (f" ({t['error']})" if t["error"] else "")
              for t in result["targets"] if t["status"] != "ok"]  # fmt: skip
    return (f"tdgc {result['mode']} exited {result['exit_code']}: {r['failed']} actions failed of "
            f"{s['deregister'] + s['delete']}" + (f"; {'; '.join(failed)}" if failed else ""))  # fmt: skip


def _overrides(event: Any) -> dict[str, Any]:
    if event is None:
        return {}
    if not isinstance(event, dict):
        raise UsageError(f"event: expected a JSON object, got {type(event).__name__}")
    if "detail-type" in event and isinstance(event.get("detail"), dict):  # an EventBridge rule's envelope
        event = event["detail"]
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
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise UsageError(f"event: {key!r} must be a list of names")
            out[key] = value
    return out


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
    ssm = Connection(session, session.region_name or "us-east-1").client("ssm", Pacer({}))
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
