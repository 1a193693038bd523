"""The one run function every entry point calls: scan → decide → act → report, family by family."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import botocore.exceptions
import structlog

from tdgc import TOOL, __version__
from tdgc.act import Actor
from tdgc.archive import DirectoryArchive
from tdgc.aws import Connection, connect, error_text
from tdgc.decide import decide, needs_description
from tdgc.errors import EXIT_ACTIONS_FAILED, EXIT_OK, EXIT_USAGE, TdgcError
from tdgc.model import Action, Decision, Outcome, Result, Status
from tdgc.pacing import Pacer
from tdgc.policy import Policy
from tdgc.report import Report, Summary, Writer
from tdgc.scan import Scanner

log = structlog.get_logger("tdgc.run")
Progress = Callable[[int, int], None]  # (families seen, revisions seen)


@dataclass(frozen=True)
class RunOptions:
    policy: Policy
    apply: bool = False
    regions: tuple[str, ...] = ()
    profile: str | None = None
    endpoint_url: str | None = None
    archive: str | None = None
    # Apply only these (ARN -> action), e.g. what a person confirmed; anything else is skipped.
    approved: Mapping[str, Action] | None = None


@dataclass
class RunResult:
    summary: Summary
    exit_code: int


class RunAborted(TdgcError):
    """AWS stopped the run part-way: exit 2 if nothing was changed yet, else 1."""

    def __init__(self, message: str, mutated: bool) -> None:
        super().__init__(message)
        self.exit_code = EXIT_ACTIONS_FAILED if mutated else EXIT_USAGE


def run(
    options: RunOptions,
    writers: Sequence[Writer],
    *,
    now: datetime | None = None,
    connections: Sequence[Connection] | None = None,
    progress: Progress | None = None,
    pacer_factory: Callable[[Mapping[str, float]], Pacer] = Pacer,
) -> RunResult:
    policy = options.policy
    targets = list(connections) if connections else connect(options.profile, options.regions, options.endpoint_url)
    archive = DirectoryArchive(options.archive) if options.archive else None
    if archive and options.apply:
        archive.check()
    now = now or datetime.now(UTC)
    mode = "apply" if options.apply else "plan"
    report = Report(writers, {
        "tool": TOOL, "tool_version": __version__, "mode": mode, "generated_at": now.isoformat(),
        "regions": [t.region for t in targets], "policy": policy.to_dict(),
    })  # fmt: skip
    log.info("run started", mode=mode, regions=[t.region for t in targets], policy=policy.source)
    try:
        for target in targets:
            _run_region(target, options, pacer_factory(policy.rates), report, now, progress, archive)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        mutated = any(report.summary.results[r.value] for r in (Result.DONE, Result.PENDING))
        message = f"AWS error, run stopped: {error_text(exc)}"
        report.notes.append(message + ("" if mutated else "; nothing was changed"))
        report.finish()
        log.error("run stopped", error=error_text(exc))
        raise RunAborted(message + ("" if mutated else " (nothing was changed)"), mutated) from None
    summary = report.finish()
    counts = summary.to_dict()
    log.info("run finished", mode=mode, **counts.pop("results"), **counts)
    return RunResult(summary, EXIT_ACTIONS_FAILED if summary.results[Result.FAILED.value] else EXIT_OK)


def _run_region(
    target: Connection,
    options: RunOptions,
    pacer: Pacer,
    report: Report,
    now: datetime,
    progress: Progress | None,
    archive: DirectoryArchive | None,
) -> None:
    ecs = target.ecs(pacer)
    scanner = Scanner(ecs, options.policy.only_families)
    actor = Actor(
        ecs, target.region, archive=archive,
        describe=lambda arn: scanner.revision(arn, Status.INACTIVE, describe=True),
    )  # fmt: skip
    for family in scanner.families():
        if not options.policy.in_scope(family):
            continue
        report.family_seen()
        for decisions in decide_pages(scanner, options.policy, family, now):
            actions = [d for d in decisions if d.action is not Action.KEEP]
            outcomes: list[Outcome] = []
            if options.apply and actions:
                allowed, skipped = _approved(actions, options.approved)
                outcomes = actor.act(allowed) + skipped
            report.add(decisions, outcomes)
            if progress:
                progress(report.summary.families, report.summary.revisions)


def decide_pages(scanner: Scanner, policy: Policy, family: str, now: datetime) -> Iterator[list[Decision]]:
    """One family's decisions, a page at a time: INACTIVE revisions first, then ACTIVE newest first.

    INACTIVE first, so that what this run deregisters is not listed again as INACTIVE in the same run.
    """
    rule, glob = policy.rule_for(family)
    for arns in scanner.pages(family, Status.INACTIVE):
        decisions = []
        for arn in arns:
            rev = scanner.revision(arn, Status.INACTIVE, describe=needs_description(rule, Status.INACTIVE, None))
            if rev is not None:
                decisions.append(decide(rev, rank=None, rule=rule, glob=glob, now=now))
        yield decisions
    rank = 0
    for arns in scanner.pages(family, Status.ACTIVE):
        decisions = []
        for arn in arns:
            rev = scanner.revision(arn, Status.ACTIVE, describe=needs_description(rule, Status.ACTIVE, rank))
            if rev is None:
                continue
            decisions.append(decide(rev, rank=rank, rule=rule, glob=glob, now=now))
            rank += 1
        yield decisions


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
