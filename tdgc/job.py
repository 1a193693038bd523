"""A scheduled run, for the Lambda handler and the Airflow DAG: a Job in, a JSON-able summary out.

Both entry points describe what to do as a `Job` (plain values, as they arrive from an event, a DAG param
or the environment) and get back the summary below; the JSON report goes to a directory or S3 prefix on
the way. The run itself is `tdgc.collect.run.run`, the same one the CLI calls.

The summary (stable; fields are only ever added):
`{"tool", "tool_version", "mode": "plan"|"apply", "generated_at", "exit_code", "report": location|null,
"summary": {"families", "revisions", "keep", "deregister", "delete", "protected",
"results": {"done", "pending", "failed", "skipped"}}, "targets": [{"target", "account", "region",
"status": "ok"|"failed"|"refused"|"deferred", "error", "summary"}], "notes": [...], "incomplete": [...]}`.
`exit_code` means what the CLI's exit status means (0 done, 1 some actions or targets failed, 2 nothing
worked and nothing changed, 3 a safety guard refused).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from tdgc import TOOL, __version__
from tdgc.aws.connection import Connection, account_id, caller, caller_account, connect, parse_roles
from tdgc.aws.connection import session as aws_session
from tdgc.aws.s3 import s3_access
from tdgc.aws.s3url import is_s3
from tdgc.collect.run import RunOptions, RunResult, run
from tdgc.errors import ReportError, UsageError
from tdgc.policy import Overrides, Policy, load_policy, parse_policy
from tdgc.report import destination
from tdgc.report.model import Writer
from tdgc.report.writers import JsonWriter

ALL = "all"  # regions=("all",): every region enabled in each account


@dataclass(frozen=True)
class Job:
    """What a scheduled run does. Every field has the safe default: plan only, the built-in policy."""

    policy_text: str | None = None  # TOML; wins over policy_file
    policy_source: str = "policy"  # how errors in policy_text name it (e.g. "ssm:/tdgc/policy")
    policy_file: str | None = None
    apply: bool = False
    regions: tuple[str, ...] = ()  # () : the session's region; ("all",): every enabled region
    role_arns: tuple[str, ...] = ()  # assume each (a member account each); (): the caller's account
    external_id: str | None = None
    families: tuple[str, ...] = ()  # only these family globs
    archive: str | None = None  # a directory or s3://BUCKET/PREFIX, written before each delete
    report: str | None = None  # a directory, file or s3://BUCKET/PREFIX/ for the JSON report
    # The account that must own the archive's and the report's S3 buckets; None: the caller's own (asked of STS)
    archive_bucket_owner: str | None = None
    archive_kms_key: str | None = None  # SSE-KMS for what goes to S3; None: the policy's, else SSE-S3
    time_budget: float | None = None  # seconds the run may take
    endpoint_url: str | None = None
    profile: str | None = None


def load_job_policy(job: Job) -> Policy:
    overrides = Overrides(families=job.families, archive_kms_key=job.archive_kms_key)
    if job.policy_text is not None:
        return parse_policy(job.policy_text, job.policy_source, overrides)
    return load_policy(job.policy_file, overrides)


def options_for(job: Job) -> RunOptions:
    """The run's options, every value checked (a UsageError names the bad one) before any AWS call."""
    regions = tuple(r.strip() for r in job.regions if r.strip())
    all_regions = ALL in regions
    if all_regions and len(regions) > 1:
        raise UsageError(f"regions: {ALL!r} cannot be combined with named regions")
    if job.time_budget is not None and job.time_budget <= 0:
        raise UsageError(f"time budget: {job.time_budget} s left; nothing can be done in that")
    owner = job.archive_bucket_owner
    return RunOptions(
        policy=load_job_policy(job), apply=job.apply, regions=() if all_regions else regions,
        all_regions=all_regions, roles=tuple(parse_roles(job.role_arns, None, job.external_id)),
        profile=job.profile, endpoint_url=job.endpoint_url, archive=job.archive, time_budget=job.time_budget,
        bucket_owner=account_id(owner, "archive bucket owner") if owner is not None else None,
    )  # fmt: skip


def run_job(
    job: Job,
    *,
    now: datetime | None = None,
    connections: Sequence[Connection] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Run the job; the summary. Bad input raises a TdgcError (a UsageError or GuardError) before any change.
    `clock` times the run against `job.time_budget` (a test passes a fake one, as it may to `tdgc.collect.run.run`)."""
    options = options_for(job)
    now = now or datetime.now(UTC)
    mode = "apply" if job.apply else "plan"
    location = destination.resolve(job.report, destination.report_name(mode, now)) if job.report else None
    s3 = None
    if location and is_s3(location):
        if connections is None:  # the regions and endpoint checked first, as the run does (no call)
            connect(job.profile, options.regions, job.endpoint_url, all_regions=options.all_regions)
        caller = _caller(job, connections)
        # Settled once, for the report here and the archive in the run: one GetCallerIdentity at most.
        options = replace(options, bucket_owner=options.bucket_owner or caller_account(caller))
        s3 = s3_access(caller, options.bucket_owner, options.policy.safety.archive_kms_key)
    if location:
        destination.check(location, s3)
    undelivered = None
    try:
        with contextlib.ExitStack() as stack:
            writers: list[Writer] = []
            if location:
                writers.append(JsonWriter(stack.enter_context(destination.open_report(location, s3))))
            result = run(options, writers, now=now, connections=connections, clock=clock)
    except ReportError as exc:  # after the run: what it changed stands, and the summary says so
        undelivered = str(exc)
    summary = summary_of(result, mode, now, None if undelivered else location)
    if undelivered:
        summary["notes"] = [*summary["notes"], undelivered]
        summary["exit_code"] = summary["exit_code"] or ReportError.exit_code
    return summary


def summary_of(result: RunResult, mode: str, now: datetime, location: str | None) -> dict[str, Any]:
    return {
        "tool": TOOL, "tool_version": __version__, "mode": mode, "generated_at": now.isoformat(),
        "exit_code": result.exit_code, "report": location, "summary": result.summary.to_dict(),
        "targets": [t.to_dict() for t in result.targets], "notes": result.notes, "incomplete": result.incomplete,
    }  # fmt: skip


def _caller(job: Job, connections: Sequence[Connection] | None) -> Connection:
    if connections:
        return connections[0].as_caller()
    return caller(aws_session(job.profile), job.endpoint_url, next((r for r in job.regions if r != ALL), None))
