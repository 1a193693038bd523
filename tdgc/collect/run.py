"""The one run function every entry point calls: scan → decide → act → report, family by family.

A run is a `RunContext` (what every target shares: options, report, budget, archive, usage, clock) and a
`_Target` per account and region, each with its own pacer, `ReferenceGuard`, lanes and `InOrderReporter`;
with `parallel` above 1, that many targets at once (ECS throttles each account and Region on its own).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import botocore.exceptions
import structlog

from tdgc import TOOL, __version__, signals
from tdgc.aws.connection import ALL_REGIONS, Connection, Role, connect, enabled_regions, load_models, whoami
from tdgc.aws.errors import error_text
from tdgc.aws.pacing import Pacer
from tdgc.aws.s3 import s3_access
from tdgc.aws.s3url import is_s3
from tdgc.collect.act import Actor
from tdgc.collect.archive import Archive, open_archive
from tdgc.collect.budget import Budget
from tdgc.collect.cutoff import decide_pages
from tdgc.collect.guard import ReferenceGuard
from tdgc.collect.references import SOURCES
from tdgc.collect.reporter import InOrderReporter
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


@dataclass(frozen=True)
class RunProgress:
    """Where one target's run stands, for a progress display: given after each page decided, and after each page
    whose actions are done (from the target's thread: a display shared by targets in parallel locks)."""

    target: str
    families_seen: int
    families_listed: int | None  # None until the listing is done
    revisions_seen: int
    planned: int  # deregistrations and deletions decided so far
    acted: int  # of those, with an outcome (done, pending, failed or skipped)
    deregistered: int
    deleted: int
    applying: bool


class Progress(Protocol):
    """A progress display: told where each target stands, and closed before the report is written."""

    def __call__(self, progress: RunProgress) -> None: ...

    def close(self) -> None: ...


PacerFactory = Callable[[Mapping[str, float]], Pacer]
MAX_PARALLEL = 64  # targets at once, at most: a thread each, plus its two lanes


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
    # Targets (accounts times regions) run at once: each has its own pacer, references and lanes, since ECS
    # throttles each account and Region on its own. 1: one after another.
    parallel: int = 1


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


@dataclass(frozen=True)
class RunContext:
    """What every target of a run shares."""

    options: RunOptions
    report: Report
    budget: Budget  # the run's: each target draws a share of it (Budget.share)
    now: datetime
    clock: Callable[[], float]
    archive: Archive | None = None
    usage: LastUses | None = None
    states: States | None = None
    pacer_factory: PacerFactory = Pacer
    progress: Progress | None = None

    @property
    def mode(self) -> str:
        return "apply" if self.options.apply else "plan"


_AWS_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)


def run(
    options: RunOptions,
    writers: Sequence[Writer],
    *,
    now: datetime | None = None,
    connections: Sequence[Connection] | None = None,
    progress: Progress | None = None,
    pacer_factory: PacerFactory | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RunResult:
    """Plan (or apply) every target: each account in each region, `options.parallel` at once, one report with
    a section for each, in the targets' order.

    An AWS error stops only the target it happened in; the others go on, and the exit status says so.
    """
    started = clock()
    check(options)
    targets = (
        list(connections)
        if connections
        else connect(
            options.profile, options.regions, options.endpoint_url, roles=options.roles, all_regions=options.all_regions
        )
    )
    when = now or datetime.now(UTC)
    context = _context(options, writers, targets, when, started, clock, pacer_factory or Pacer, progress)
    log.info("run started", mode=context.mode, targets=[t.label for t in targets], policy=options.policy.source)
    try:
        _run_targets(context, targets)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM (tdgc.signals), after the lanes drained: report it all
        _interrupted(context.report, exc)
    except BaseException:
        if progress is not None:  # the error's line starts on a line of its own
            progress.close()
        raise
    return _result(context)


def check(options: RunOptions) -> None:
    """What the options alone may refuse, before any AWS call."""
    if not 1 <= options.parallel <= MAX_PARALLEL:
        raise UsageError(f"parallel: {options.parallel} targets at once; expected 1 to {MAX_PARALLEL}")
    if options.apply and options.policy.safety.require_archive and not options.archive:
        raise GuardError("the policy requires an archive (require_archive = true): pass --archive DIR or s3://...")


def _context(
    options: RunOptions,
    writers: Sequence[Writer],
    targets: Sequence[Connection],
    now: datetime,
    started: float,
    clock: Callable[[], float],
    pacer_factory: PacerFactory,
    progress: Progress | None,
) -> RunContext:
    policy = options.policy
    states = _states(policy, targets[0])  # before the first AWS call: a missing local state is a usage error
    # The archive lives with the caller (a central bucket), not in the member accounts.
    archive = _archive(options, targets[0].as_caller()) if options.archive and options.apply else None
    if archive:
        archive.check()
    usage = _last_uses(policy, targets[0].as_caller()) if policy.uses_usage else None
    budget = Budget(
        policy.safety.max_actions,
        deadline=started + options.time_budget if options.time_budget is not None else None,
        reserve=reserve_for(options.time_budget) if options.time_budget is not None else 0.0,
        clock=clock,
    )
    report = _new_report(writers, options, now, targets)
    return RunContext(options, report, budget, now, clock, archive, usage, states, pacer_factory, progress)


def _interrupted(report: Report, exc: KeyboardInterrupt) -> None:
    report.interrupted = signals.stopped_by(exc)[0]
    report.note(
        f"interrupted ({report.interrupted}): no change was started after it; the next run picks up "
        "where this one stopped"
    )
    log.warning("run interrupted", signal=report.interrupted)


def _result(context: RunContext) -> RunResult:
    report = context.report
    if context.progress is not None:  # the report may go to the same screen
        context.progress.close()
    summary = _finish(report, context.budget, context.mode)
    refused = [t.target for t in report.targets if t.status is TargetStatus.REFUSED]
    unchanged = "" if _mutated(summary) else " (nothing was changed)"
    failed = [
        f"{t.target}: AWS error, stopped there: {t.error}{unchanged}"
        for t in report.targets
        if t.status is TargetStatus.FAILED
    ]
    return RunResult(
        summary,
        exit_status(report),
        refused,
        failed,
        report.targets,
        report.notes,
        report.incomplete,
        report.interrupted,
        report.families,
    )


def _finish(report: Report, budget: Budget, mode: str) -> Summary:
    deferred = report.summary.results[Result.SKIPPED.value]
    if deferred and budget.out_of_time() and not report.out_of_time_noted:
        report.note("time budget reached: what was not done is deferred to the next run")
    summary = report.finish()
    counts = summary.to_dict()
    statuses = {t.target: t.status for t in report.targets}
    log.info(
        "run finished", mode=mode, **counts.pop("results"), **counts, targets=statuses, incomplete=report.incomplete
    )
    return summary


def _new_report(writers: Sequence[Writer], options: RunOptions, now: datetime, targets: Sequence[Connection]) -> Report:
    regions = ["all"] if options.all_regions else list(dict.fromkeys(t.region for t in targets))
    header = {
        "tool": TOOL,
        "tool_version": __version__,
        "mode": "apply" if options.apply else "plan",
        "generated_at": now.isoformat(),
        "regions": regions,
        "policy": options.policy.to_dict(),
    }
    report = Report(writers, header)
    for warning in options.policy.warnings:
        report.note(warning)
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


def rotated(items: Sequence[_Item], now: datetime) -> list[_Item]:
    """The items from a place that moves with the hour: a run that cannot finish every target starts, the next
    hour, elsewhere in the list, with no state of tdgc's own. (sha256: Python's hash() changes per process.)"""
    if not items:
        return []
    hour = now.astimezone(UTC).strftime("%Y-%m-%dT%H")
    start = int.from_bytes(hashlib.sha256(hour.encode()).digest()[:8], "big") % len(items)
    return [*items[start:], *items[:start]]


@dataclass(frozen=True)
class _Item:
    target: Connection
    section: TargetSection


class _Schedule:
    """The targets' turns, and each one's fair share of the time left when it starts: the time left divided
    among the targets not started yet, times the slots they run in. A target that ends early leaves its
    unused time to those after it."""

    def __init__(self, items: Sequence[_Item], context: RunContext) -> None:
        self._waiting = len(items)
        self._slots = context.options.parallel
        self._budget, self._clock = context.budget, context.clock
        self._lock = threading.Lock()
        self.started: set[int] = set()

    def start(self, item: _Item) -> float | None:
        """The item's share of the time left, in seconds (None without a time budget)."""
        with self._lock:
            self.started.add(id(item))
            waiting, self._waiting = self._waiting, self._waiting - 1
            if self._budget.deadline is None:
                return None
            left = max(0.0, self._budget.deadline - self._budget.reserve - self._clock())
            return left * min(self._slots, waiting) / waiting


def _run_targets(context: RunContext, accounts: Sequence[Connection]) -> None:
    """Every target: one after another, or `parallel` at once; an AWS error stops only the target it happened
    in. With a time budget, the targets start where the hour puts them (`rotated`)."""
    alone = len(accounts) == 1 and not context.options.all_regions
    items = list(_items(accounts, context.report))
    order = rotated(items, context.now) if context.options.time_budget is not None else items
    schedule = _Schedule(order, context)
    try:
        if context.options.parallel == 1:
            for item in order:
                _serve(context, item, schedule, alone=alone)
        else:
            _in_parallel(context, order, schedule, alone=alone)
    finally:
        for item in order:  # stopped before their turn: what they would have done waits for the next run
            if id(item) not in schedule.started:
                item.section.status = TargetStatus.DEFERRED
                context.report.close(item.section)


def _in_parallel(context: RunContext, order: Sequence[_Item], schedule: _Schedule, *, alone: bool) -> None:
    first = order[0].target
    sources = context.options.policy.safety.references
    services = ["sts", "ecs", *(service for source in sources for service in SOURCES[source].services)]
    load_models(first.caller or first.session, services, first.as_caller().region)
    pool = ThreadPoolExecutor(context.options.parallel, thread_name_prefix="tdgc-target")
    try:
        futures = [pool.submit(_serve, context, item, schedule, alone=alone) for item in order]
        for future in futures:
            future.result()
    except BaseException:  # Ctrl-C reaches the main thread only: the targets stop starting mutations
        context.budget.stop("run stopped")
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _serve(context: RunContext, item: _Item, schedule: _Schedule, *, alone: bool) -> None:
    """One target's turn, its section closed at the end (the report goes on to the next)."""
    target, section, report = item.target, item.section, context.report
    try:
        share = schedule.start(item)
        if context.budget.stopped:
            section.status = TargetStatus.DEFERRED
            return
        if context.budget.out_of_time():
            section.status = TargetStatus.DEFERRED
            report.out_of_time(f"{target.label}: time budget reached before this target; the next run goes on")
            return
        try:
            # A role that cannot be assumed, credentials AWS rejects, or an endpoint out of reach fail here,
            # in seconds, rather than as every reference source unreadable.
            if target.role or context.options.caller_account is None:  # else the entry point's answer stands
                whoami(target)
            if not _Target(context, target, section, context.budget.share(share)).run():
                section.status = TargetStatus.REFUSED
        except _AWS_ERRORS as exc:
            _failed(report, section, exc, alone=alone)
    finally:
        report.close(section)


def _items(accounts: Sequence[Connection], report: Report) -> Iterator[_Item]:
    """Each account's targets, a section reserved for each in this order: the account itself, or with
    --all-regions one per region enabled in it."""
    for account in accounts:
        if account.region != ALL_REGIONS:
            yield _Item(account, report.reserve(account.label, account.account, account.region))
            continue
        try:
            regions = enabled_regions(account)
        except _AWS_ERRORS as exc:
            section = report.reserve(account.label, account.account, ALL_REGIONS)
            _failed(report, section, exc, alone=False)
            report.close(section)
            continue
        for region in regions:
            target = account.in_region(region)
            yield _Item(target, report.reserve(target.label, target.account, target.region))


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


def _failed(report: Report, section: TargetSection, exc: BaseException, *, alone: bool) -> None:
    section.status, section.error = TargetStatus.FAILED, error_text(exc)
    others = "" if alone else "; the other targets went on"
    report.note(f"{section.target}: AWS error, stopped there: {section.error}{others}")
    log.error("target failed", target=section.target, error=section.error)


def reserve_for(time_budget: float) -> float:
    """Seconds kept back from a time budget to end cleanly: a tenth of it, between 2 s and 60 s."""
    return min(60.0, max(2.0, time_budget / 10))


class _Target:
    """One account in one region: references first, then each family's pages decided and (in apply) acted on,
    with this target's own pacer, guard, lanes and reporter."""

    def __init__(self, context: RunContext, target: Connection, section: TargetSection, budget: Budget) -> None:
        self.context, self.target, self.section, self.budget = context, target, section, budget
        options, report = context.options, context.report
        pacer = context.pacer_factory(options.policy.rates)
        ecs = target.ecs(pacer)
        self.scanner = Scanner(ecs, options.policy.only_families)
        self.guard = ReferenceGuard(
            target,
            options.policy,
            pacer,
            report,
            apply=options.apply,
            max_age=options.references_max_age,
            clock=context.clock,
            usage=context.usage,
            states=context.states,
        )
        self.actor = Actor(
            ecs,
            target.region,
            archive=context.archive,
            budget=budget,
            check=self.guard.veto,
            describe=lambda arn: self.scanner.revision(arn, Status.INACTIVE, describe=True),
        )
        self.reporter = InOrderReporter(self._add, lambda: len(self.actor.busiest()))

    def _add(self, decisions: Sequence[Decision], outcomes: Sequence[Outcome]) -> None:
        self.context.report.add(decisions, outcomes, self.section)
        if outcomes:
            self._progress()

    def _progress(self) -> None:
        if self.context.progress is None:
            return
        s = self.section.summary
        self.context.progress(
            RunProgress(
                target=self.target.label,
                families_seen=s.families,
                families_listed=self.scanner.listed,
                revisions_seen=s.revisions,
                planned=s.deregister + s.delete,
                acted=sum(s.results.values()),
                deregistered=s.deregistered,
                deleted=s.deleted,
                applying=self.guard.acting and self.context.options.apply,
            )
        )

    def run(self) -> bool:
        """Plan (and apply) this target; False if apply refused to act here."""
        try:
            self._scan()
        except BaseException:
            self.budget.stop("run stopped")  # the lanes defer what they have not started
            raise
        finally:
            self.actor.close()
            self.reporter.report_done(drain=True)
        return self.guard.acting or not self.context.options.apply

    def _scan(self) -> None:
        # The account is listed before anything is decided (tdgc.collect.scan says why); with a time budget, the
        # listing may take half of what is left, so that a huge account still gets acted on every run.
        listing_ends = self.budget.halfway()
        clock = self.context.clock
        stop = (lambda: clock() >= listing_ends) if listing_ends is not None else None
        families = self.scanner.revision_lists(stop)
        try:
            self._decide(families)
        finally:
            if self.scanner.truncated:
                self.context.report.note(
                    f"{self.target.label}: time budget: the listing stopped halfway through the account; "
                    "the families after it wait for a run with more time"
                )

    def _decide(self, families: Iterator[tuple[str, dict[Status, RevisionList]]]) -> None:
        context, report, policy = self.context, self.context.report, self.context.options.policy
        for family, lists in families:
            if not policy.in_scope(family):
                continue
            if self._out_of_time(f"before family {family}"):
                return
            report.family_seen(family, lists, self.section)
            refs = self.guard.fresh()
            for decisions in decide_pages(self.scanner, policy, family, context.now, refs, lists, context.usage):
                outcomes: list[Outcome] = []
                futures = []
                actions = [d for d in decisions if d.action is not Action.KEEP]
                if self.guard.acting and actions:
                    allowed, outcomes = _approved(actions, context.options.approved)
                    futures = self.actor.submit(allowed)
                self.reporter.push(decisions, outcomes, futures)
                self._progress()
                if self._out_of_time(f"in family {family}"):
                    return
                self.guard.fresh()  # in place: the next page is decided on fresh references

    def _out_of_time(self, where: str) -> bool:
        if not self.budget.out_of_time():
            return False
        self.context.report.out_of_time(
            f"{self.target.label}: time budget reached {where}; the next run goes on from the account as it is"
        )
        log.warning("time budget reached", target=self.target.label, where=where)
        return True


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
