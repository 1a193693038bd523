"""One target's references and the right to act on them: what a lane asks just before each mutation."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from tdgc.aws.connection import Connection
from tdgc.aws.pacing import Pacer
from tdgc.collect.references import History, References, discover
from tdgc.collect.tfstate import States
from tdgc.collect.usage import LastUses
from tdgc.model import Decision
from tdgc.policy import Policy
from tdgc.report.model import Report

log = structlog.get_logger("tdgc.run")


class ReferenceGuard:
    """The references of one target, their rollback history and their age, and whether apply may act here.

    The scan and both lanes ask for fresh references at once, so everything is read and changed under one
    lock. Apply loses the right to act (for the rest of the run) the first time the references come back
    incomplete, unless the policy accepts that; plan never had it.
    """

    def __init__(
        self,
        target: Connection,
        policy: Policy,
        pacer: Pacer,
        report: Report,
        *,
        apply: bool,
        max_age: float,
        clock: Callable[[], float],
        usage: LastUses | None = None,
        states: States | None = None,
    ) -> None:
        self._target, self._policy, self._pacer, self._report = target, policy, pacer, report
        self._max_age, self._clock, self._usage, self._states = max_age, clock, usage, states
        self._refs = References()
        self._history: History = {}  # each service's rollback targets, read again only once it deploys
        self._lock = threading.Lock()
        self._acting = apply
        self._read_at = clock()
        with self._lock:
            self._read()

    @property
    def acting(self) -> bool:
        """Whether apply may still change anything here."""
        with self._lock:
            return self._acting

    def fresh(self) -> References:
        """The references, read again first when older than the maximum age."""
        with self._lock:
            if self._clock() - self._read_at >= self._max_age:
                self._read()
            return self._refs

    def veto(self, decision: Decision) -> str | None:
        """Why a mutation decided a while ago must not go out now; None: go ahead. Asked by a lane just before
        the call."""
        refs = self.fresh()
        if not self.acting:
            return "not changed: references incomplete"
        rev = decision.revision
        uses = refs.uses(rev.family, rev.revision, newest_active=False)
        if uses:
            return f"in use by {uses[0]} (seen after the decision)"
        if decision.last_used is not None and self._usage is not None:
            now = self._usage.now(rev.arn)  # `tdgc register` may have handed it out since the run began
            if now is not None and now > decision.last_used:
                return f"used since the decision (last used {now.isoformat(timespec='seconds')})"
        return None

    def _read(self) -> None:
        """Read every source again (the caller holds the lock); an incomplete read may end the right to act."""
        sources = self._policy.safety.references
        depth = self._policy.safety.rollback_depth
        found = (
            discover(self._target, sources, self._pacer, depth, self._history, self._states)
            if sources
            else References()
        )
        self._refs.refresh_from(found)
        self._read_at = self._clock()
        refs, label = self._refs, self._target.label
        if refs.failed:
            self._report.missing(f"{label}: references incomplete: {refs.failure_text()}")
            if self._acting and not self._policy.safety.accept_incomplete_references:
                self._report.note(
                    f"{label}: nothing (more) was changed here, since a revision in use could look unused; "
                    "fix the source, skip it (--skip-reference), or --accept-incomplete-references"
                )
                log.error("apply refused", region=label, failed=sorted(refs.failed))
                self._acting = False
        for note in refs.notes:
            self._report.note(f"{label}: {note}", once=True)
