"""The one run function every entry point calls: scan → decide → act → report, family by family."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime

import botocore.exceptions
import structlog

from tdgc import TOOL, __version__, signals
from tdgc.aws.connection import ALL_REGIONS, Connection, Role, connect, enabled_regions, whoami
from tdgc.aws.errors import error_text
from tdgc.aws.pacing import Pacer
from tdgc.aws.s3 import s3_access
from tdgc.aws.s3url import is_s3
from tdgc.collect.act import Actor
from tdgc.collect.archive import Archive, open_archive
from tdgc.collect.budget import Budget
from tdgc.collect.cutoff import decide_pages
from tdgc.collect.references import History, References, discover
from tdgc.collect.scan import RevisionList, Scanner
from tdgc.collect.tfstate import States
from tdgc.collect.usage import LastUses
from tdgc.errors import EXIT_ACTIONS_FAILED, EXIT_GUARD, EXIT_OK, EXIT_USAGE, GuardError, UsageError
from tdgc.model import Action, Decision, Outcome, Result, Status
from tdgc.policy import Policy
from tdgc.report.model import Report, Summary, TargetSection, TargetStatus, Writer
from tdgc.report.quota import FamilyQuota
from tdgc.reuse.backends import open_store

log = structlog.get_logger("tdgc.run")
Progress = Callable[[int, int], None]  # (families seen, revisions seen)
PAGES_AHEAD = 8  # pages decided but not yet reported, at most: the scan's lead over the lanes
LANE_DEPTH = 2  # pages queued in one lane, at most: mutations wait little after their decision


@dataclass(frozen=True)
class RunOptions:
    policy: Policy
    apply: bool = False
    regions: tuple[str, ...] = ()
    all_regions: bool = False  # every region enabled in each account
    roles: tuple[Role, ...] = ()  # assume each in turn (a member account each); none: the caller's account
    profile: str | None = None
    endpoint_url: str | None = None
    archive: str | None = None  # a directory or s3://bucket/prefix
    # The account that must own the archive's (and report's) bucket; None: the caller's, asked of STS when needed.
    # Entry points that know it already (from --archive-bucket-owner, or a call of their own) give it here.
    bucket_owner: str | None = None
    # The caller's account, where the entry point asked STS already: its own targets (no role) are not asked again.
    caller_account: str | None = None
    # Apply only these (ARN -> action), e.g. what a person confirmed; anything else is skipped.
    approved: Mapping[str, Action] | None = None
    # References are read again once older than this, so that a long apply sees a rollback deployed meanwhile.
    references_max_age: float = 300.0
    # Seconds this run may take; it stops starting mutations early enough to end cleanly within it.
    time_budget: float | None = None


@dataclass
class RunResult:
    summary: Summary
    exit_code: int
    refused: list[str]  # targets where apply changed nothing because references were incomplete
    failed: list[str] = field(default_factory=list)  # "TARGET: AWS error, …" for each target an error stopped
    targets: list[TargetSection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    interrupted: str | None = None  # the signal that stopped the run ("SIGTERM"); its report has what was done
    families: list[FamilyQuota] = field(default_factory=list)  # each family's quota, the closest first


_AWS_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)


def run(
    options: RunOptions,
    writers: Sequence[Writer],
    *,
    now: datetime | None = None,
    connections: Sequence[Connection] | None = None,
    progress: Progress | None = None,
    pacer_factory: Callable[[Mapping[str, float]], Pacer] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RunResult:
    """Plan (or apply) every target in turn: each account in each region, one report with a section for each.

    An AWS error stops only the target it happened in; the others go on, and the exit status says so.
    """
    started = clock()
    policy = options.policy
    if options.apply and policy.safety.require_archive and not options.archive:
        raise GuardError("the policy requires an archive (require_archive = true): pass --archive DIR or s3://...")
    targets = list(connections) if connections else connect(
        options.profile, options.regions, options.endpoint_url, roles=options.roles, all_regions=options.all_regions
    )  # fmt: skip
    states = _states(policy, targets[0])  # before the first AWS call: a missing local state is a usage error
    # The archive lives with the caller (a central bucket), not in the member accounts.
    archive = _archive(options, targets[0].as_caller()) if options.archive and options.apply else None
    if archive:
        archive.check()
    usage = _last_uses(policy, targets[0].as_caller()) if policy.uses_usage else None
    now = now or datetime.now(UTC)
    mode = "apply" if options.apply else "plan"
    report = _new_report(writers, options, mode, now, targets)
    budget = Budget(
        policy.safety.max_actions,
        deadline=started + options.time_budget if options.time_budget is not None else None,
        reserve=reserve_for(options.time_budget) if options.time_budget is not None else 0.0,
        clock=clock,
    )
    log.info("run started", mode=mode, targets=[t.label for t in targets], policy=policy.source)
    try:
        _run_targets(targets, options, report, budget, now, archive, clock, usage, states, pacer_factory, progress)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM (tdgc.signals), after the lanes drained: report it all
        interrupted: str | None = signals.stopped_by(exc)[0]
        report.interrupted = interrupted
        report.notes.append(f"interrupted ({interrupted}): no change was started after it; the next run picks up "
                            "where this one stopped")  # fmt: skip
        log.warning("run interrupted", signal=interrupted)
    else:
        interrupted = None
    summary = _finish(report, budget, mode)
    refused = [t.target for t in report.targets if t.status is TargetStatus.REFUSED]
    unchanged = "" if _mutated(summary) else " (nothing was changed)"
    failed = [f"{t.target}: AWS error, stopped there: {t.error}{unchanged}" for t in report.targets
              if t.status is TargetStatus.FAILED]  # fmt: skip
    return RunResult(summary, exit_status(report), refused, failed, report.targets, report.notes, report.incomplete,
                     interrupted, report.families)  # fmt: skip


def _finish(report: Report, budget: Budget, mode: str) -> Summary:
    deferred = report.summary.results[Result.SKIPPED.value]
    if deferred and budget.out_of_time() and not report.out_of_time_noted:
        report.notes.append("time budget reached: what was not done is deferred to the next run")
    summary = report.finish()
    counts = summary.to_dict()
    statuses = {t.target: t.status for t in report.targets}
    log.info("run finished", mode=mode, **counts.pop("results"), **counts, targets=statuses,
             incomplete=report.incomplete)  # fmt: skip
    return summary


def _new_report(writers: Sequence[Writer], options: RunOptions, mode: str, now: datetime,
                targets: Sequence[Connection]) -> Report:  # fmt: skip
    regions = ["all"] if options.all_regions else list(dict.fromkeys(t.region for t in targets))
    report = Report(writers, {
        "tool": TOOL, "tool_version": __version__, "mode": mode, "generated_at": now.isoformat(),
        "regions": regions, "policy": options.policy.to_dict(),
    })  # fmt: skip
    report.notes.extend(options.policy.warnings)
    return report


def exit_status(report: Report) -> int:
    """The exit status a finished report calls for (docs/design.md §5)."""
    return exit_status_of([t.status for t in report.targets], report.summary.results, report.interrupted)


def exit_status_of(statuses: Sequence[TargetStatus], results: Mapping[str, int], interrupted: str | None) -> int:
    """The exit status of a run whose targets ended so, with these action results (done, pending, failed,
    skipped) and interruption: also what tdgc.job.merge_reports applies to a report read back."""
    if interrupted:
        return signals.exit_status(interrupted)
    mutated = any(results.get(r.value, 0) for r in (Result.DONE, Result.PENDING))
    if statuses and all(s is TargetStatus.FAILED for s in statuses) and not mutated:
        return EXIT_USAGE  # nothing worked anywhere, and nothing changed: most likely credentials or access
    if TargetStatus.REFUSED in statuses:
        return EXIT_GUARD
    if TargetStatus.FAILED in statuses or results.get(Result.FAILED.value, 0):
        return EXIT_ACTIONS_FAILED
    return EXIT_OK


def _mutated(summary: Summary) -> bool:
    return any(summary.results[r.value] for r in (Result.DONE, Result.PENDING))


def _run_targets(targets: Sequence[Connection], options: RunOptions, report: Report, budget: Budget, now: datetime,
                 archive: Archive | None, clock: Callable[[], float], usage: LastUses | None,
                 states: States | None, pacer_factory: Callable[[Mapping[str, float]], Pacer] | None,
                 progress: Progress | None) -> None:  # fmt: skip
    """Each account in each region, in turn; an AWS error stops only the target it happened in."""
    policy = options.policy
    for account in targets:
        for target in _regions_of(account, report):
            section = report.begin_target(target.label, target.account, target.region)
            if budget.out_of_time():
                section.status = TargetStatus.DEFERRED
                report.notes.append(f"{target.label}: time budget reached before this target; the next run goes on")
                report.out_of_time_noted = True
                continue
            budget.resume()  # a target that failed stopped its own lanes, not the next target's
            try:
                # A role that cannot be assumed, credentials AWS rejects, or an endpoint out of reach fail here,
                # in seconds, rather than as every reference source unreadable.
                if target.role or options.caller_account is None:  # else the entry point's answer stands
                    whoami(target)
                pacer = (pacer_factory or Pacer)(policy.rates)
                region = _Region(target, options, pacer, report, now, archive, budget, clock, usage, states)
                if not region.run(progress):
                    section.status = TargetStatus.REFUSED
            except _AWS_ERRORS as exc:
                _failed(report, section, exc, alone=len(targets) == 1 and not options.all_regions)


def _archive(options: RunOptions, caller: Connection) -> Archive:
    assert options.archive is not None
    s3 = None
    if is_s3(options.archive):
        s3 = s3_access(caller, options.bucket_owner, options.policy.safety.archive_kms_key)
    return open_archive(options.archive, s3)


def _last_uses(policy: Policy, caller: Connection) -> LastUses:
    """Each revision's last use, from the store `tdgc register` writes (read only: plan changes nothing)."""
    assert policy.usage_store is not None  # the policy insists on one wherever unused_for is set
    try:
        return LastUses(open_store(policy.usage_store, caller, create=False))
    except _AWS_ERRORS as exc:
        raise UsageError(f"usage store {policy.usage_store}: cannot read it ({error_text(exc)})") from None


def _states(policy: Policy, target: Connection) -> States | None:
    """The Terraform states to read, each location checked now; S3 ones are read with the caller's credentials
    (a team's state bucket is seldom in each member account), and remembered for the whole run."""
    if "terraform" not in policy.safety.references or not policy.safety.terraform_state:
        return None
    return States(policy.safety.terraform_state, target.as_caller())


def _regions_of(account: Connection, report: Report) -> list[Connection]:
    """The account's targets: itself, or with --all-regions one per region enabled in it."""
    if account.region != ALL_REGIONS:
        return [account]
    try:
        return [account.in_region(region) for region in enabled_regions(account)]
    except _AWS_ERRORS as exc:
        _failed(report, report.begin_target(account.label, account.account, ALL_REGIONS), exc, alone=False)
        return []


def _failed(report: Report, section: TargetSection, exc: BaseException, *, alone: bool) -> None:
    section.status, section.error = TargetStatus.FAILED, error_text(exc)
    others = "" if alone else "; the other targets went on"
    report.notes.append(f"{section.target}: AWS error, stopped there: {section.error}{others}")
    log.error("target failed", target=section.target, error=section.error)


def reserve_for(time_budget: float) -> float:
    """Seconds kept back from a time budget to end cleanly: a tenth of it, between 2 s and 60 s."""
    return min(60.0, max(2.0, time_budget / 10))


class _Region:
    """One region's run: references first, then each family's pages decided and (in apply) acted on."""

    def __init__(self, target: Connection, options: RunOptions, pacer: Pacer, report: Report, now: datetime,
                 archive: Archive | None, budget: Budget, clock: Callable[[], float],
                 usage: LastUses | None = None, states: States | None = None) -> None:  # fmt: skip
        self.target, self.options, self.policy, self.usage = target, options, options.policy, usage
        self.states = states
        self.report, self.now, self.budget, self.clock = report, now, budget, clock
        ecs = target.ecs(pacer)
        self.pacer = pacer
        self.scanner = Scanner(ecs, self.policy.only_families)
        self.actor = Actor(
            ecs, target.region, archive=archive, budget=budget, check=self._still_wanted,
            describe=lambda arn: self.scanner.revision(arn, Status.INACTIVE, describe=True),
        )  # fmt: skip
        self.refs = References()
        self.history: History = {}  # each service's rollback targets, read again only once it deploys
        self.refs_lock = threading.Lock()  # the scan and both lanes ask for fresh references
        # Pages decided whose mutations are queued or under way, reported in order once they are done.
        self.pending: deque[tuple[list[Decision], list[Outcome], list[Future[list[Outcome]]]]] = deque()

    def run(self, progress: Progress | None) -> bool:
        """Plan (and apply) this region; False if apply refused to act here."""
        self.acting = self.options.apply
        self._read_references()
        try:
            self._scan(progress)
        except BaseException:
            self.budget.stop("run stopped")  # the lanes defer what they have not started
            raise
        finally:
            self.actor.close()
            self._report_done(drain=True)
        return self.acting or not self.options.apply

    def _scan(self, progress: Progress | None) -> None:
        # The account is listed before anything is decided (tdgc.collect.scan says why); with a time budget, the
        # listing may take half of what is left, so that a huge account still gets acted on every run.
        listing_ends = self.budget.halfway()
        stop = (lambda: self.clock() >= listing_ends) if listing_ends is not None else None
        families = self.scanner.revision_lists(stop)
        try:
            self._decide(families, progress)
        finally:
            if self.scanner.truncated:
                self.report.notes.append(
                    f"{self.target.label}: time budget: the listing stopped halfway through the account; "
                    "the families after it wait for a run with more time"
                )

    def _decide(self, families: Iterator[tuple[str, dict[Status, RevisionList]]], progress: Progress | None) -> None:
        for family, lists in families:
            if not self.policy.in_scope(family):
                continue
            if self._out_of_time(f"before family {family}"):
                return
            self.report.family_seen(family, lists)
            for decisions in decide_pages(self.scanner, self.policy, family, self.now, self.refs, lists, self.usage):
                outcomes: list[Outcome] = []
                futures: list[Future[list[Outcome]]] = []
                actions = [d for d in decisions if d.action is not Action.KEEP]
                if self.acting and actions:
                    allowed, outcomes = _approved(actions, self.options.approved)
                    futures = self.actor.submit(allowed)
                self.pending.append((decisions, outcomes, futures))
                self._report_done()
                if progress:
                    progress(self.report.summary.families, self.report.summary.revisions)
                if self._out_of_time(f"in family {family}"):
                    return
                self._fresh()  # in place: the next page is decided on fresh references

    def _report_done(self, drain: bool = False) -> None:
        """Report the pages whose mutations are done, in order; wait while the lanes are too far behind.

        The scan reads ahead of the lanes by a few pages at most, so memory stays flat.
        """
        while self.pending:
            decisions, outcomes, futures = self.pending[0]
            if not all(f.done() for f in futures):
                behind = len(self.pending) > PAGES_AHEAD or len(self.actor.busiest()) > LANE_DEPTH
                if not (drain or behind):
                    return
                wait(futures)
            self.pending.popleft()
            # Draining after a failure, a lane that failed has no outcomes to give; otherwise its error goes on.
            done = [f for f in futures if not (drain and f.exception() is not None)]
            self.report.add(decisions, outcomes + [o for f in done for o in f.result()])

    def _fresh(self) -> References:
        """The references, read again first when older than references_max_age."""
        with self.refs_lock:
            if self.clock() - self.refs_read_at >= self.options.references_max_age:
                self._read_references()
        return self.refs

    def _still_wanted(self, decision: Decision) -> str | None:
        """Asked by a lane just before a mutation, which may go out a while after its decision."""
        refs = self._fresh()
        if not self.acting:
            return "not changed: references incomplete"
        rev = decision.revision
        uses = refs.uses(rev.family, rev.revision, newest_active=False)
        if uses:
            return f"in use by {uses[0]} (seen after the decision)"
        if decision.last_used is not None and self.usage is not None:
            now = self.usage.now(rev.arn)  # `tdgc register` may have handed it out since the run began
            if now is not None and now > decision.last_used:
                return f"used since the decision (last used {now.isoformat(timespec='seconds')})"
        return None

    def _out_of_time(self, where: str) -> bool:
        if not self.budget.out_of_time():
            return False
        self.report.notes.append(f"{self.target.label}: time budget reached {where}; the next run goes on "
                                 "from the account as it is")  # fmt: skip
        self.report.out_of_time_noted = True
        log.warning("time budget reached", target=self.target.label, where=where)
        return True

    def _read_references(self) -> None:
        sources = self.policy.safety.references
        depth = self.policy.safety.rollback_depth
        found = (
            discover(self.target, sources, self.pacer, depth, self.history, self.states) if sources else References()
        )
        self.refs.refresh_from(found)
        self.refs_read_at = self.clock()
        refs, region = self.refs, self.target.label
        if refs.failed:
            problem = f"{region}: references incomplete: {refs.failure_text()}"
            if problem not in self.report.incomplete:  # a refresh that fails the same way says nothing new
                self.report.incomplete.append(problem)
            if self.acting and not self.policy.safety.accept_incomplete_references:
                self.report.notes.append(
                    f"{region}: nothing (more) was changed here, since a revision in use could look unused; "
                    "fix the source, skip it (--skip-reference), or --accept-incomplete-references"
                )
                log.error("apply refused", region=region, failed=sorted(refs.failed))
                self.acting = False
        for note in refs.notes:
            if f"{region}: {note}" not in self.report.notes:
                self.report.notes.append(f"{region}: {note}")


def _approved(
    actions: Sequence[Decision], approved: Mapping[str, Action] | None
) -> tuple[list[Decision], list[Outcome]]:
    if approved is None:
        return list(actions), []
    allowed = [d for d in actions if approved.get(d.revision.arn) is d.action]
    skipped = [
        Outcome(d.revision.arn, d.action, Result.SKIPPED, "not in the plan that was confirmed")
        for d in actions
        if approved.get(d.revision.arn) is not d.action
    ]
    return allowed, skipped
