"""What a report holds: the summary, a section per target, notes; and the Writer each format implements."""

from __future__ import annotations

import enum
import pickle
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
    DEFERRED = "deferred"  # the time budget ran out (or the run was interrupted) before it


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
    """Counts the summary once and hands every page to each writer, one target's section after another.

    Safe to write from several threads at once (a run's targets in parallel, each with its lanes): what it
    counts and keeps is changed under one lock. A section reserved before its turn (`reserve`) has its pages
    kept in a spool of its own (in memory up to SPOOL_IN_MEMORY bytes, on disk beyond) and handed to the
    writers once the sections before it are closed: the writers see one target at a time, in the order the
    sections were reserved, whatever order they finish in.
    """

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
        self._lock = threading.RLock()
        self._live = 0  # the index of the section the writers are on (all before it are closed)
        self._spools: dict[int, _Spool] = {}  # sections waiting for their turn, by index
        self._closed: set[int] = set()
        for writer in self.writers:
            writer.start(self.header)

    def begin_target(self, target: str, account: str | None, region: str) -> TargetSection:
        """A section that the writers turn to now: every section before it is closed."""
        with self._lock:
            self._closed.update(range(len(self.targets)))
            section = self.reserve(target, account, region)
            self._advance()
            return section

    def reserve(self, target: str, account: str | None, region: str) -> TargetSection:
        """A section in its place in the report; the writers turn to it once those before it are closed."""
        with self._lock:
            section = TargetSection(target, account, region)
            self.targets.append(section)
            index = len(self.targets) - 1
            if index == self._live:
                self._begin(section)
            else:
                self._spools[index] = _Spool()
            return section

    def close(self, section: TargetSection) -> None:
        """The section is complete: the writers go on to the next ones (what they spooled meanwhile first)."""
        with self._lock:
            self._closed.add(self._index(section))
            self._advance()

    def family_seen(
        self, family: str = "", lists: Mapping[Status, Listing] | None = None, section: TargetSection | None = None
    ) -> None:
        """A family of `section` (default: the last one begun) is decided next; `lists`, what the scan listed of
        it, gives its quota."""
        with self._lock:
            self.summary.families += 1
            target = section or (self.targets[-1] if self.targets else None)
            if target is not None:
                target.summary.families += 1
            if lists is not None:
                self.quotas.seen(target.target if target else "", family, lists)

    def add(
        self, decisions: Sequence[Decision], outcomes: Sequence[Outcome] = (), section: TargetSection | None = None
    ) -> None:
        """A page of decisions and their outcomes, of `section` (default: the last one begun)."""
        with self._lock:
            self.summary.count(decisions, outcomes)
            target = section or (self.targets[-1] if self.targets else None)
            if target is not None:
                target.summary.count(decisions, outcomes)
            self.quotas.observe(target.target if target else "", decisions)
            index = self._index(section) if section else len(self.targets) - 1
            spool = self._spools.get(index)
            if spool is not None:
                spool.keep(decisions, outcomes)
                return
            for writer in self.writers:
                writer.add(decisions, outcomes)

    def note(self, text: str, *, once: bool = False) -> None:
        """A note for the reader; `once`: not again when the same note is there already."""
        with self._lock:
            if not (once and text in self.notes):
                self.notes.append(text)

    def out_of_time(self, text: str) -> None:
        """A note saying where the time budget ran out."""
        with self._lock:
            self.notes.append(text)
            self.out_of_time_noted = True

    def missing(self, text: str) -> None:
        """A source that could not be read (once, however often a refresh fails the same way)."""
        with self._lock:
            if text not in self.incomplete:
                self.incomplete.append(text)

    def _index(self, section: TargetSection) -> int:
        return next(i for i, s in enumerate(self.targets) if s is section)

    def _begin(self, section: TargetSection) -> None:
        for writer in self.writers:
            writer.begin_target(section)

    def _advance(self) -> None:
        """Turn the writers to the first section not closed, replaying the spools of those on the way."""
        while self._live in self._closed and self._live + 1 < len(self.targets):
            self._live += 1
            self._begin(self.targets[self._live])
            spool = self._spools.pop(self._live, None)
            if spool is not None:
                for decisions, outcomes in spool.pages():
                    for writer in self.writers:
                        writer.add(decisions, outcomes)

    def tail(self) -> dict[str, Any]:
        """What the machine formats write after the decisions: notes, targets and the summary."""
        with self._lock:
            return {
                "notes": list(self.notes),
                "incomplete": list(self.incomplete),
                "interrupted": self.interrupted,
                "targets": [t.to_dict() for t in self.targets],
                "summary": self.summary.to_dict(),
                "families": [q.to_dict() for q in self.families],
            }

    def finish(self) -> Summary:
        with self._lock:
            self._closed.update(range(len(self.targets)))
            self._advance()
            self._settle_quotas()
            for writer in self.writers:
                writer.finish(self)
            return self.summary

    def _settle_quotas(self) -> None:
        if self.families:  # carried over from the reports this one merges, which noted their own
            self.families = closest(self.families)
            return
        self.families = self.quotas.settle()
        near = [q for q in self.families if q.near_quota]
        self.notes.extend(quota_note(q) for q in near[:NEAR_QUOTA_NOTED])
        if len(near) > NEAR_QUOTA_NOTED:
            self.notes.append(f"… and {len(near) - NEAR_QUOTA_NOTED} more families near the quota (see families)")


SPOOL_IN_MEMORY = 1 << 20  # bytes of a waiting section's pages kept in memory; more go to a temporary file


class _Spool:
    """A waiting section's pages, pickled: in memory up to SPOOL_IN_MEMORY bytes, then on disk."""

    def __init__(self) -> None:
        # Closed by pages(), or with the process: a spool lives as long as its run.
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115

    def keep(self, decisions: Sequence[Decision], outcomes: Sequence[Outcome]) -> None:
        pickle.dump((list(decisions), list(outcomes)), self._file, protocol=pickle.HIGHEST_PROTOCOL)

    def pages(self) -> Iterator[tuple[list[Decision], list[Outcome]]]:
        """The pages kept, in order, read back one at a time; the spool is gone afterwards."""
        self._file.seek(0)
        try:
            while True:
                try:
                    yield pickle.load(self._file)  # our own pages, written by keep()
                except EOFError:
                    return
        finally:
            self._file.close()
