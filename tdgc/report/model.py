"""What a report holds: the summary, a section per target, notes; and the Writer each format implements."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import IO, Any

from tdgc.model import Action, Decision, Outcome, Result, Status
from tdgc.report.quota import FamilyQuota, Listing, Quotas, closest, quota_note

REPORT_VERSION = 1
NEAR_QUOTA_NOTED = 10  # notes for the families nearest the quota; the rest are counted


@dataclass
class Summary:
    families: int = 0
    revisions: int = 0
    keep: int = 0
    deregister: int = 0
    delete: int = 0
    protected: int = 0
    results: Counter[str] = field(default_factory=Counter)  # done / pending / failed / skipped
    deregistered: int = 0  # deregisters done
    deleted: int = 0  # deletes ECS accepted (done or pending)

    def count(self, decisions: Iterable[Decision], outcomes: Iterable[Outcome]) -> None:
        for d in decisions:
            self.revisions += 1
            setattr(self, d.action.value, getattr(self, d.action.value) + 1)
            self.protected += d.protected
        for o in outcomes:
            self.results[o.result.value] += 1
            if o.result is Result.DONE and o.action is Action.DEREGISTER:
                self.deregistered += 1
            elif o.result in (Result.DONE, Result.PENDING) and o.action is Action.DELETE:
                self.deleted += 1

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["results"] = {r.value: self.results.get(r.value, 0) for r in Result}
        return out


class TargetStatus(enum.StrEnum):
    """How a target's part of the run ended."""

    OK = "ok"
    FAILED = "failed"  # an AWS error stopped this target; `error` says which, the others went on
    REFUSED = "refused"  # apply changed nothing here: references incomplete
    DEFERRED = "deferred"  # the time budget ran out before it


TARGET_STATUSES = tuple(s.value for s in TargetStatus)


@dataclass
class TargetSection:
    """One target's part of the report: an account (when a role is assumed) in a region."""

    target: str
    account: str | None
    region: str
    status: TargetStatus = TargetStatus.OK
    error: str | None = None
    summary: Summary = field(default_factory=Summary)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "account": self.account,
            "region": self.region,
            "status": self.status.value,
            "error": self.error,
            "summary": self.summary.to_dict(),
        }


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class Writer:
    """One destination. `start`, then `add` once per page of decisions, then `finish`."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def start(self, header: Mapping[str, Any]) -> None:
        self.header = dict(header)

    def begin_target(self, section: TargetSection) -> None:
        """The pages that follow belong to this target (until the next one begins)."""

    def add(self, decisions: Sequence[Decision], outcomes: Sequence[Outcome]) -> None:
        raise NotImplementedError

    def finish(self, report: Report) -> None:
        self.out.flush()


class Report:
    """Counts the summary once and hands every page to each writer."""

    def __init__(self, writers: Sequence[Writer], header: Mapping[str, Any]) -> None:
        self.writers = list(writers)
        self.summary = Summary()
        self.notes: list[str] = []
        self.incomplete: list[str] = []  # what could not be read, so the decisions may miss a reference
        self.interrupted: str | None = None  # the signal that stopped the run before it was done
        self.out_of_time_noted = False  # a note already says where the time budget ran out
        self.targets: list[TargetSection] = []
        self.header = {"version": REPORT_VERSION, **header}
        generated = self.header.get("generated_at")
        self.quotas = Quotas(datetime.fromisoformat(generated) if isinstance(generated, str) else None)
        self.families: list[FamilyQuota] = []  # each family's quota, closest first: set by finish
        for writer in self.writers:
            writer.start(self.header)

    def begin_target(self, target: str, account: str | None, region: str) -> TargetSection:
        section = TargetSection(target, account, region)
        self.targets.append(section)
        for writer in self.writers:
            writer.begin_target(section)
        return section

    def family_seen(self, family: str = "", lists: Mapping[Status, Listing] | None = None) -> None:
        """A family is decided next; `lists`, what the scan listed of it, gives its quota."""
        self.summary.families += 1
        if lists is not None:
            self.quotas.seen(self.targets[-1].target if self.targets else "", family, lists)
        if self.targets:
            self.targets[-1].summary.families += 1

    def add(self, decisions: Sequence[Decision], outcomes: Sequence[Outcome] = ()) -> None:
        self.summary.count(decisions, outcomes)
        if self.targets:
            self.targets[-1].summary.count(decisions, outcomes)
        self.quotas.observe(self.targets[-1].target if self.targets else "", decisions)
        for writer in self.writers:
            writer.add(decisions, outcomes)

    def tail(self) -> dict[str, Any]:
        """What the machine formats write after the decisions: notes, targets and the summary."""
        return {
            "notes": self.notes,
            "incomplete": self.incomplete,
            "interrupted": self.interrupted,
            "targets": [t.to_dict() for t in self.targets],
            "summary": self.summary.to_dict(),
            "families": [q.to_dict() for q in self.families],
        }

    def finish(self) -> Summary:
        if self.families:  # carried over from the reports this one merges, which noted their own
            self.families = closest(self.families)
        else:
            self.families = self.quotas.settle()
            near = [q for q in self.families if q.near_quota]
            self.notes.extend(quota_note(q) for q in near[:NEAR_QUOTA_NOTED])
            if len(near) > NEAR_QUOTA_NOTED:
                self.notes.append(f"… and {len(near) - NEAR_QUOTA_NOTED} more families near the quota (see families)")
        for writer in self.writers:
            writer.finish(self)
        return self.summary
