"""What a report holds: the summary, a section per target, notes; and the Writer each format implements."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import IO, Any

from tdgc.model import Decision, Outcome, Result

REPORT_VERSION = 1


@dataclass
class Summary:
    families: int = 0
    revisions: int = 0
    keep: int = 0
    deregister: int = 0
    delete: int = 0
    protected: int = 0
    results: Counter[str] = field(default_factory=Counter)  # done / pending / failed / skipped

    def count(self, decisions: Iterable[Decision], outcomes: Iterable[Outcome]) -> None:
        for d in decisions:
            self.revisions += 1
            setattr(self, d.action.value, getattr(self, d.action.value) + 1)
            self.protected += d.protected
        for o in outcomes:
            self.results[o.result.value] += 1

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
        for writer in self.writers:
            writer.start(self.header)

    def begin_target(self, target: str, account: str | None, region: str) -> TargetSection:
        section = TargetSection(target, account, region)
        self.targets.append(section)
        for writer in self.writers:
            writer.begin_target(section)
        return section

    def family_seen(self) -> None:
        self.summary.families += 1
        if self.targets:
            self.targets[-1].summary.families += 1

    def add(self, decisions: Sequence[Decision], outcomes: Sequence[Outcome] = ()) -> None:
        self.summary.count(decisions, outcomes)
        if self.targets:
            self.targets[-1].summary.count(decisions, outcomes)
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
        }

    def finish(self) -> Summary:
        for writer in self.writers:
            writer.finish(self)
        return self.summary
