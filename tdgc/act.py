"""Acting on decisions: deregister one revision per call, delete INACTIVE ones ten per call.

Every mutation is paced by the client's Pacer and retried by botocore. A failed item is recorded and the
rest go on; nothing is deleted unless its archive (when asked for) was written first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import botocore.exceptions
import structlog

from tdgc.archive import Archive
from tdgc.aws import error_text
from tdgc.model import Action, Decision, Outcome, Result, Revision, Status

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

DELETE_BATCH = 10  # the most DeleteTaskDefinitions takes in one call
log = structlog.get_logger("tdgc.act")


class Budget:
    """How much more this run may do: revisions to act on (--max-actions) and time (--time-budget).

    A mutation starts only while more than `reserve` seconds are left, so that the run ends cleanly (the
    mutations under way finish, the report is written) before its deadline.
    """

    def __init__(self, limit: int | None, deadline: float | None = None, reserve: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.remaining = limit
        self.deadline = deadline
        self.reserve = reserve
        self._clock = clock

    def out_of_time(self) -> bool:
        return self.deadline is not None and self._clock() >= self.deadline - self.reserve

    def take(self, wanted: int) -> int:
        if self.out_of_time():
            return 0
        if self.remaining is None:
            return wanted
        granted = min(wanted, self.remaining)
        self.remaining -= granted
        return granted

    def give_back(self, count: int) -> None:
        if self.remaining is not None:
            self.remaining += count

    def deferred(self, decision: Decision) -> Outcome:
        why = "time budget reached" if self.out_of_time() else "max_actions reached"
        return Outcome(decision.revision.arn, decision.action, Result.SKIPPED, f"deferred: {why}")


class Actor:
    def __init__(
        self,
        ecs: ECSClient,
        region: str,
        *,
        archive: Archive | None = None,
        budget: Budget | None = None,
        describe: Callable[[str], Revision | None] | None = None,
    ) -> None:
        self._ecs = ecs
        self._region = region
        self._archive = archive
        self._budget = budget or Budget(None)
        self._describe = describe  # for a revision to archive that the scan did not describe

    def act(self, decisions: Sequence[Decision]) -> list[Outcome]:
        outcomes = [
            self._deregister(d) if self._budget.take(1) else self._budget.deferred(d)
            for d in decisions
            if d.action is Action.DEREGISTER
        ]
        deletes = [d for d in decisions if d.action is Action.DELETE]
        for start in range(0, len(deletes), DELETE_BATCH):
            batch = deletes[start : start + DELETE_BATCH]
            granted = self._budget.take(len(batch))
            outcomes += self._delete(batch[:granted]) if granted else []
            outcomes += [self._budget.deferred(d) for d in batch[granted:]]
        return outcomes

    def _deregister(self, decision: Decision) -> Outcome:
        arn = decision.revision.arn
        try:
            self._ecs.deregister_task_definition(taskDefinition=arn)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            log.warning("deregister failed", arn=arn, error=error_text(exc))
            return Outcome(arn, Action.DEREGISTER, Result.FAILED, error_text(exc))
        log.info("deregistered", arn=arn, reason=decision.reason)
        return Outcome(arn, Action.DEREGISTER, Result.DONE)

    def _delete(self, batch: Sequence[Decision]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        ready: list[Decision] = []
        for decision in batch:
            problem = self._archived(decision.revision)
            if problem:
                self._budget.give_back(1)
                log.warning("delete skipped", arn=decision.revision.arn, error=problem)
                outcomes.append(Outcome(decision.revision.arn, Action.DELETE, Result.FAILED, problem))
            else:
                ready.append(decision)
        if not ready:
            return outcomes
        arns = [d.revision.arn for d in ready]
        try:
            answer = self._ecs.delete_task_definitions(taskDefinitions=arns)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            log.warning("delete failed", arns=arns, error=error_text(exc))
            return outcomes + [Outcome(a, Action.DELETE, Result.FAILED, error_text(exc)) for a in arns]
        accepted = {td.get("taskDefinitionArn"): td.get("status") for td in answer.get("taskDefinitions", [])}
        failed = {f.get("arn"): f.get("reason") or f.get("detail") or "failed" for f in answer.get("failures", [])}
        for decision in ready:
            arn = decision.revision.arn
            if arn in accepted:
                # ECS finishes a delete once nothing references the revision: pending, not done.
                result = Result.PENDING if accepted[arn] == Status.DELETE_IN_PROGRESS else Result.DONE
                log.info("delete accepted", arn=arn, result=result.value, reason=decision.reason)
                outcomes.append(Outcome(arn, Action.DELETE, result))
            else:
                error = failed.get(arn, "not in DeleteTaskDefinitions' answer")
                log.warning("delete failed", arn=arn, error=error)
                outcomes.append(Outcome(arn, Action.DELETE, Result.FAILED, error))
        return outcomes

    def _archived(self, revision: Revision) -> str | None:
        """Archive before delete; the problem that prevents it, if any."""
        if self._archive is None:
            return None
        description: Any = revision.description
        if description is None and self._describe is not None:
            described = self._describe(revision.arn)
            description = described.description if described else None
        if description is None:
            return "not archived: the revision could not be described"
        try:
            self._archive.write(revision.arn, description, self._region)
        except (OSError, TypeError) as exc:
            return f"not archived: {exc}"
        return None
