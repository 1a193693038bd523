"""A scheduled run, for the Lambda handler and the Airflow DAG: a Job in, a JSON-able summary out.

Both entry points describe what to do as a `Job` (plain values, as they arrive from an event, a DAG param
or the environment) and get back the summary below; the JSON report goes to a directory or S3 prefix on
the way. The run itself is `tdgc.collect.run.run`, the same one the CLI calls.

The summary (stable; fields are only ever added):
`{"tool", "tool_version", "mode": "plan"|"apply", "generated_at", "exit_code", "report": location|null,
"summary": {"families", "revisions", "keep", "deregister", "delete", "protected",
"results": {"done", "pending", "failed", "skipped"}, "deregistered", "deleted"}, "targets": [{"target", "account",
"region", "status": "ok"|"failed"|"refused"|"deferred", "error", "summary"}], "notes": [...], "incomplete": [...],
"closest_to_quota": [the report's `families` entries, the 20 closest to the quota]}`.
`exit_code` means what the CLI's exit status means (0 done, 1 some actions or targets failed, 2 nothing
worked and nothing changed, 3 a safety guard refused).
"""

from __future__ import annotations

import collections
import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import botocore.exceptions

from tdgc import TOOL, __version__
from tdgc.aws.connection import Connection, account_id, caller, caller_account, connect, parse_roles
from tdgc.aws.connection import session as aws_session
from tdgc.aws.errors import error_text
from tdgc.aws.s3 import S3Access, s3_access
from tdgc.aws.s3url import is_s3, s3_location
from tdgc.collect.run import MAX_PARALLEL, RunOptions, RunResult, exit_status_of, run
from tdgc.errors import EXIT_ACTIONS_FAILED, EXIT_GUARD, EXIT_OK, EXIT_USAGE, ReportError, UsageError
from tdgc.model import Action, Decision, Outcome, Result, Revision, Status, Why
from tdgc.permissions import MAP_RESULTS_NAME, TARGETS_NAME
from tdgc.policy import Overrides, Policy, load_policy, parse_policy
from tdgc.report import destination
from tdgc.report.metrics import QUOTA_FAMILIES
from tdgc.report.model import REPORT_VERSION, TARGET_STATUSES, Report, Summary, TargetSection, TargetStatus, Writer
from tdgc.report.quota import FamilyQuota, closest
from tdgc.report.summary import RunSummary, summary_from
from tdgc.report.writers import JsonWriter, TableWriter

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
    parallel: int = 1  # targets (accounts times regions) at once
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
    if isinstance(job.parallel, bool) or not isinstance(job.parallel, int) or not 1 <= job.parallel <= MAX_PARALLEL:
        raise UsageError(f"parallel: expected 1 to {MAX_PARALLEL} targets at once, not {job.parallel!r}")
    owner = job.archive_bucket_owner
    return RunOptions(
        policy=load_job_policy(job),
        apply=job.apply,
        regions=() if all_regions else regions,
        all_regions=all_regions,
        roles=tuple(parse_roles(job.role_arns, None, job.external_id)),
        profile=job.profile,
        endpoint_url=job.endpoint_url,
        archive=job.archive,
        time_budget=job.time_budget,
        parallel=job.parallel,
        bucket_owner=account_id(owner, "archive bucket owner") if owner is not None else None,
    )


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
        if options.bucket_owner is None:
            account = caller_account(caller)
            options = replace(options, bucket_owner=account, caller_account=account)
        s3 = s3_access(caller, options.bucket_owner, options.policy.safety.archive_kms_key)
    undelivered = None
    try:
        with destination.writers("json", None, location, s3) as writers:
            result = run(options, writers, now=now, connections=connections, clock=clock)
    except ReportError as exc:  # after the run: what it changed stands, and the summary says so
        undelivered = str(exc)
    summary = summary_of(result, mode, now, None if undelivered else location)
    if undelivered:
        summary = replace(
            summary, notes=(*summary.notes, undelivered), exit_code=summary.exit_code or ReportError.exit_code
        )
    return summary.to_dict()


def summary_of(result: RunResult, mode: str, now: datetime, location: str | None) -> RunSummary:
    return RunSummary(
        tool=TOOL,
        tool_version=__version__,
        mode=mode,
        generated_at=now.isoformat(),
        exit_code=result.exit_code,
        report=location,
        summary=result.summary,
        targets=tuple(result.targets),
        notes=tuple(result.notes),
        incomplete=tuple(result.incomplete),
        closest_to_quota=tuple(q.to_dict() for q in result.families[:QUOTA_FAMILIES]),
    )


def _caller(job: Job, connections: Sequence[Connection] | None) -> Connection:
    if connections:
        return connections[0].as_caller()
    return caller(aws_session(job.profile), job.endpoint_url, next((r for r in job.regions if r != ALL), None))


# --- organisation mode: targets listed, each collected by its own invocation, the reports merged ----------------
#
# The state machine of the SAM template and Terraform module (docs/design.md, "Organisation mode") runs these
# three steps: `org_targets` / `role_targets` list the targets, the collector runs once per target with an
# event naming its account and region (tdgc.lambda_handler.job_from), and `merge_from_s3` merges the
# per-target reports, found by name (`target_report`) rather than by listing the bucket.

_OU = re.compile(r"(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})")
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")  # a Step Functions execution name: no "/", no ".."
ORG_REPORT_NAME = "organisation"


def run_id(text: Any, label: str = "run_id") -> str:
    """A run's id (the execution name), checked before it becomes part of an S3 key."""
    if not isinstance(text, str) or not _RUN_ID.fullmatch(text):
        raise UsageError(f"{label}: expected 1 to 80 letters, digits, - or _, not {text!r}")
    return text


def target_report(report: str, run: str, account: str | None, region: str) -> str:
    """Where one target's report goes in an organisation run: `REPORT/RUN/ACCOUNT-REGION.json` (`self-REGION`
    for the function's own account). The collector writes it, the merge reads it: one name, computed by both."""
    return destination.resolve(_run_folder(report, run), f"{account or 'self'}-{region}.json")


def _run_folder(report: str, run: str) -> str:
    """`REPORT/RUN/`: where an organisation run's objects go (the targets' reports, their list, the merged one)."""
    base = report if report.endswith("/") else report + "/"
    return f"{base}{run_id(run)}/"


def organisational_units(values: Sequence[str]) -> tuple[str, ...]:
    """OU or root ids (`ou-...`, `r-...`), checked before any AWS call."""
    for value in values:
        if not _OU.fullmatch(value):
            raise UsageError(f"organisational unit {value!r}: expected an OU id (ou-...) or a root id (r-...)")
    return tuple(dict.fromkeys(values))


def org_accounts(organizations: Any, ous: Sequence[str] = ()) -> list[str]:
    """The ACTIVE accounts of the organisation, or of the given OUs and every OU below them, sorted.

    ListAccounts for the whole organisation; under OUs, ListAccountsForParent at each level and ListChildren
    for the OUs below (ListAccountsForParent gives only an OU's direct accounts). Every listing pages through
    botocore's paginators. An account is kept when its `State` (or, in older answers, `Status`) is ACTIVE: a
    suspended or closing account has no role to assume.
    """
    found: list[dict[str, Any]] = []
    if not ous:
        for page in organizations.get_paginator("list_accounts").paginate():
            found += page.get("Accounts", [])
    else:
        pending, seen = list(ous), set()
        while pending:
            parent = pending.pop(0)
            if parent in seen:
                continue
            seen.add(parent)
            for page in organizations.get_paginator("list_accounts_for_parent").paginate(ParentId=parent):
                found += page.get("Accounts", [])
            children = organizations.get_paginator("list_children")
            for page in children.paginate(ParentId=parent, ChildType="ORGANIZATIONAL_UNIT"):
                pending += [child["Id"] for child in page.get("Children", [])]
    active = {a["Id"] for a in found if a.get("State", a.get("Status")) == "ACTIVE"}
    return sorted(active)


def targets_of(accounts: Sequence[str | None], regions: Sequence[str]) -> list[dict[str, Any]]:
    """Each account times each region, as the Distributed Map's items: `{"account", "region"}` (account None:
    the function's own; always present, so that the state machine's path to it always resolves). Sorted, so
    that a run's reports and the merged report keep one order."""
    items = [{"account": a, "region": r} for a in accounts for r in dict.fromkeys(regions)]
    return sorted(items, key=lambda t: (t.get("account") or "", t["region"]))


def role_targets(role_arns: Sequence[str], regions: Sequence[str]) -> list[dict[str, Any]]:
    """The targets of a MemberRoleArns list: each role's account times each region (the collector finds the
    role again by its account, so that no role ARN travels in an event)."""
    roles = parse_roles(role_arns, None, None)
    return targets_of(list(dict.fromkeys(r.account for r in roles)) or [None], regions)


def org_report(report: str) -> str:
    """TDGC_REPORT in organisation mode, `s3://BUCKET/PREFIX/`: checked (the run's objects all go there, and
    the state machine reads and writes there too), with its trailing slash."""
    if not is_s3(report):
        raise UsageError(f"TDGC_REPORT: organisation mode keeps its objects in S3 (s3://BUCKET/PREFIX/): {report!r}")
    base = report if report.endswith("/") else report + "/"
    s3_location(base, "TDGC_REPORT")
    return base


def targets_location(report: str, run: str) -> str:
    """Where an organisation run's target list goes: `REPORT/RUN/targets.json`, beside the targets' reports.
    The targets function writes it, the map's ItemReader and the merge read it: one name, computed here."""
    return destination.resolve(_run_folder(org_report(report), run), TARGETS_NAME)


def write_targets(report: str, run: str, targets: Sequence[Mapping[str, Any]], s3: S3Access) -> dict[str, Any]:
    """The run's targets written to S3 as one JSON array (through the report writer: the bucket's owner named,
    the reports' encryption asked for); what the state machine passes on instead of the list:
    `{"run_id", "bucket", "key", "results_prefix", "count"}`, the same few hundred bytes however many targets.
    `results_prefix` is where the map's ResultWriter puts its children's results, beside the reports."""
    location = targets_location(report, run)
    with destination.open_report(location, s3) as out:
        json.dump(list(targets), out)
    bucket, key = s3_location(location, "targets", key_required=True)
    _, results = s3_location(_run_folder(org_report(report), run) + MAP_RESULTS_NAME, "TDGC_REPORT")
    return {"run_id": run, "bucket": bucket, "key": key, "results_prefix": results, "count": len(targets)}


def read_targets(location: str, s3: S3Access) -> list[dict[str, Any]]:
    """The run's target list as the targets function wrote it (`write_targets`), checked as the merge's input.
    A list that cannot be read is a ReportError: the collectors may have changed their accounts by then."""
    try:
        loaded = _get_json(s3, location, "targets")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise ReportError(f"targets {location}: cannot read ({error_text(exc)})") from None
    except ValueError as exc:
        raise ReportError(f"targets {location}: not JSON ({exc})") from None
    return check_targets(loaded)


def _exit_of(report: Mapping[str, Any]) -> int:
    """One report's exit status: its own `exit_code` when it carries one (a job summary), else the one
    tdgc.run.exit_status gives a finished run, from the report's targets, results and interruption."""
    if isinstance(report.get("exit_code"), int):
        return int(report["exit_code"])
    return exit_status_of(
        [TargetStatus(t["status"]) for t in report.get("targets", [])],
        report.get("summary", {}).get("results", {}),
        report.get("interrupted"),
    )


def merged_exit_code(codes: Sequence[int]) -> int:
    """The worst of the targets' exit statuses, by docs/design.md §5: 2 (nothing worked, nothing changed) only
    when every target says so; else 3 if a safety guard refused anywhere; else 1 if any target did not end
    cleanly (an action or target failed, a target's input was refused, a target was interrupted); else 0."""
    if codes and all(c == EXIT_USAGE for c in codes):
        return EXIT_USAGE
    if EXIT_GUARD in codes:
        return EXIT_GUARD
    return EXIT_ACTIONS_FAILED if any(codes) else EXIT_OK


def _section_key(section: Mapping[str, Any]) -> tuple[str, str, str]:
    return (section.get("account") or "", section.get("region") or "", section.get("target") or "")


def _added(total: dict[str, Any], part: Mapping[str, Any]) -> None:
    for key, value in part.items():
        if isinstance(value, Mapping):
            _added(total.setdefault(key, {}), value)
        elif isinstance(value, int) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value


def _label(report: Mapping[str, Any]) -> str:
    return ", ".join(t["target"] for t in report.get("targets", [])) or "?"


def merge_reports(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Many JSON reports (tdgc's report format, or job summaries) in, one out, in the same format.

    The summary is the sum of theirs; `families` is all of theirs, the closest to the quota first; `targets`
    holds every section, ordered by (account, region, target), and `decisions` and `outcomes` follow the same
    order, so that the merged report is the same whichever order the reports came in. Notes and incomplete
    sources are concatenated in that order, each prefixed with the target it came from; `exit_code` is
    `merged_exit_code` of theirs. The header (tool, mode, policy) is the first report's in that order;
    `regions` is every report's.
    """
    ordered = sorted(reports, key=lambda r: min((_section_key(t) for t in r.get("targets", [])), default=("", "", "")))
    summary: dict[str, Any] = Summary().to_dict()
    merged: dict[str, Any] = {"version": REPORT_VERSION}
    for key in ("tool", "tool_version", "mode", "generated_at", "policy"):
        if ordered and key in ordered[0]:
            merged[key] = ordered[0][key]
    regions = [r for report in ordered for r in report.get("regions", [t["region"] for t in report.get("targets", [])])]
    merged["regions"] = sorted(set(regions))
    merged["decisions"] = [d for report in ordered for d in report.get("decisions", [])]
    merged["outcomes"] = [o for report in ordered for o in report.get("outcomes", [])]
    merged["notes"] = [f"{_label(r)}: {note}" for r in ordered for note in r.get("notes", [])]
    merged["incomplete"] = [f"{_label(r)}: {item}" for r in ordered for item in r.get("incomplete", [])]
    merged["interrupted"] = next((r["interrupted"] for r in ordered if r.get("interrupted")), None)
    merged["targets"] = sorted((t for r in ordered for t in r.get("targets", [])), key=_section_key)
    families = (FamilyQuota.from_dict(f) for r in ordered for f in r.get("families", []))
    merged["families"] = [q.to_dict() for q in closest(families)]
    for report in ordered:
        _added(summary, report.get("summary", {}))
    merged["summary"] = summary
    merged["exit_code"] = merged_exit_code([_exit_of(r) for r in ordered])
    return merged


def missing_report(target: Mapping[str, Any], location: str, why: str) -> dict[str, Any]:
    """What stands for a target whose report is not there (its invocation failed before writing it, or timed
    out): a failed section, so that the merged report still names every target."""
    account, region = target.get("account"), str(target["region"])
    section = TargetSection(
        f"{account} {region}" if account else region,
        account,
        region,
        TargetStatus.FAILED,
        f"no report at {location} ({why})",
    )
    return {"targets": [section.to_dict()], "summary": Summary().to_dict(), "regions": [region]}


def check_targets(items: Any) -> list[dict[str, Any]]:
    """The merge's list of targets (the state machine passes the first step's output on), checked."""
    if not isinstance(items, list):
        raise UsageError("event: 'targets' must be a list of {account, region}")
    checked = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("region"), str) or set(item) - {"account", "region"}:
            raise UsageError(f"event: target {item!r} is not {{'account': ACCOUNT, 'region': REGION}}")
        if item.get("account") is not None:
            account_id(str(item["account"]), "target account")
        if not _REGION_NAME.fullmatch(item["region"]):
            raise UsageError(f"event: target region {item['region']!r} is not a region name")
        checked.append(dict(item))
    return checked


_REGION_NAME = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+|all")


def merge_from_s3(
    report: str, run: str, targets: Sequence[Mapping[str, Any]], s3: S3Access, *, now: datetime | None = None
) -> dict[str, Any]:
    """Merge the run's per-target reports into `REPORT/RUN/organisation.json` and `.md`; the merged summary.

    Reads the targets' reports in order, up to MERGE_READ_AHEAD of them fetched at once, and streams each one's
    decisions into the two writers, so that memory holds those few reports, not the organisation's. What the
    writers total is then set to the reports' own summaries (a report's family count is not in its decisions)."""
    now = now or datetime.now(UTC)
    folder = _run_folder(report, run)
    json_at = destination.resolve(folder, f"{ORG_REPORT_NAME}.json")
    markdown_at = destination.resolve(folder, f"{ORG_REPORT_NAME}.md")
    destination.check(json_at, s3)
    heads: list[dict[str, Any]] = []
    merged_report: Report | None = None
    ordered = sorted(targets, key=lambda t: (t.get("account") or "", t["region"]))
    locations = [target_report(report, run, t.get("account"), t["region"]) for t in ordered]
    with contextlib.ExitStack() as stack:
        for target, location, loaded in zip(ordered, locations, _read_ahead(s3, locations), strict=True):
            if isinstance(loaded, str):
                loaded = missing_report(target, location, loaded)
            if merged_report is None:
                writers: list[Writer] = [
                    JsonWriter(stack.enter_context(destination.open_report(json_at, s3))),
                    TableWriter(stack.enter_context(destination.open_report(markdown_at, s3)), markdown=True),
                ]
                header = {
                    "tool": TOOL,
                    "tool_version": __version__,
                    "mode": loaded.get("mode", "plan"),
                    "generated_at": now.isoformat(),
                    "regions": sorted({t["region"] for t in targets}),
                    "policy": loaded.get("policy", {}),
                    "run_id": run,
                }
                merged_report = Report(writers, header)
            _stream(merged_report, loaded)
            loaded.pop("decisions", None)
            loaded.pop("outcomes", None)
            heads.append(loaded)
        merged = merge_reports(heads)
        if merged_report is not None:
            merged_report.summary = summary_from(merged["summary"])
            merged_report.notes, merged_report.incomplete = merged["notes"], merged["incomplete"]
            merged_report.interrupted = merged["interrupted"]
            merged_report.finish()
    return {
        "tool": TOOL,
        "tool_version": __version__,
        "mode": merged.get("mode", "plan"),
        "generated_at": now.isoformat(),
        "exit_code": merged["exit_code"],
        "report": json_at if merged_report else None,
        "markdown": markdown_at if merged_report else None,
        "summary": merged["summary"],
        "targets": len(merged["targets"]),
        "targets_by_status": {s: sum(t["status"] == s for t in merged["targets"]) for s in TARGET_STATUSES},
        "notes": len(merged["notes"]),
        "incomplete": len(merged["incomplete"]),
    }


def _stream(report: Report, loaded: Mapping[str, Any]) -> None:
    """One target report's sections into the merged report: each section begun, its decisions (found by the
    account and region in their ARNs when a report holds several sections) and outcomes added, its summary set
    to the report's own, and its families' quotas carried over."""
    sections = sorted(loaded.get("targets", []), key=_section_key)
    decisions = [decision_from(d) for d in loaded.get("decisions", [])]
    outcomes = [outcome_from(o) for o in loaded.get("outcomes", [])]
    report.families.extend(FamilyQuota.from_dict(f) for f in loaded.get("families", []))
    for data in sections:
        section = report.begin_target(data["target"], data.get("account"), data["region"])
        section.status, section.error = TargetStatus(data["status"]), data.get("error")
        mine = decisions if len(sections) == 1 else [d for d in decisions if _in(d.revision.arn, data)]
        arns = {d.revision.arn for d in mine}
        report.add(mine, [o for o in outcomes if o.arn in arns])
        section.summary = summary_from(data.get("summary", {}))


def _in(arn: str, section: Mapping[str, Any]) -> bool:
    parts = arn.split(":")
    return len(parts) > 4 and parts[3] == section.get("region") and parts[4] == (section.get("account") or parts[4])


def decision_from(data: Mapping[str, Any]) -> Decision:
    """A decision as the JSON report has it (tdgc.report.decision_dict), read back for the writers."""
    revision = Revision(
        data["arn"],
        data["family"],
        int(data["revision"]),
        Status(data["status"]),
        registered_at=_moment(data.get("registered_at")),
        deregistered_at=_moment(data.get("deregistered_at")),
    )
    why = Why(data.get("why", Why.AGE.value))
    return Decision(
        revision,
        Action(data["action"]),
        data["reason"],
        protected=why in (Why.IN_USE, Why.TAGGED),
        in_use_by=tuple(data.get("in_use_by", ())),
        why=why,
    )


def outcome_from(data: Mapping[str, Any]) -> Outcome:
    return Outcome(data["arn"], Action(data["action"]), Result(data["result"]), data.get("error"))


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# Reports the merge fetches at once. S3 answers a GetObject in tens of milliseconds, so an organisation's thousands
# of reports read one at a time would take most of the merge's 15 minutes; 16 in flight hold at most 16 reports
# in memory, and the merge still takes them in order.
MERGE_READ_AHEAD = 16
# The merge function's /tmp (Lambda's ephemeral storage, which both templates set to its most): the merged JSON
# report holds every target's decisions, some 300 bytes each, spooled there before its upload. Lambda's default
# of 512 MB would stop at about 1.5 million decisions, a thousand targets with a backlog of 1,500; this holds 30
# million, for about the price of nothing (a GB-second beyond 512 MB costs a few millionths of a cent).
MERGE_DISK_MB = 10_240


def _read_ahead(s3: S3Access, locations: Sequence[str]) -> Iterator[dict[str, Any] | str]:
    """`_read_report` of each location, in order, with up to MERGE_READ_AHEAD of them being fetched meanwhile."""
    with ThreadPoolExecutor(MERGE_READ_AHEAD, thread_name_prefix="tdgc-merge") as pool:
        reading: collections.deque[Future[dict[str, Any] | str]] = collections.deque()
        for location in locations:
            reading.append(pool.submit(_read_report, s3, location))
            if len(reading) > MERGE_READ_AHEAD:
                yield reading.popleft().result()
        while reading:
            yield reading.popleft().result()


def _read_report(s3: S3Access, location: str) -> dict[str, Any] | str:
    """A target's JSON report, or why it cannot be read (a missing report is a failed target, not an error of
    the merge: the others are still merged)."""
    try:
        loaded = _get_json(s3, location, "report")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        return error_text(exc)
    except ValueError as exc:
        return f"not JSON: {exc}"
    return loaded if isinstance(loaded, dict) else "not a JSON report"


def _get_json(s3: S3Access, location: str, label: str) -> Any:
    """The JSON document at an s3:// location of tdgc's own (read as the bucket's owner's). S3's errors and
    ValueError (not JSON) are the caller's to word: what an unreadable object means differs."""
    bucket, key = s3_location(location, label, key_required=True)
    return json.loads(s3.client().get_object(Bucket=bucket, Key=key, **s3.protection.reads)["Body"].read())
