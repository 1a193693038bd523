"""Acting on decisions: deregister one revision per call, delete INACTIVE ones ten per call.

ECS throttles the two in separate buckets, so each goes out in a lane of its own (a thread), and the scan
reads on while both lanes work: a run takes as long as its busiest bucket, not the sum of all of them.
Every mutation is paced by the client's Pacer and retried by botocore, and is checked once more just before
it goes out (the references may have been read again since the decision). A failed item is recorded and
the rest go on; nothing is deleted unless its archive (when asked for) was written first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import botocore.exceptions
import structlog

from tdgc.aws.errors import error_text
from tdgc.collect.archive import Archive
from tdgc.collect.budget import Budget
from tdgc.model import Action, Decision, Outcome, Result, Revision, Status

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

DELETE_BATCH = 10  # the most DeleteTaskDefinitions takes in one call
_FAILED = {Action.DEREGISTER: "deregister failed", Action.DELETE: "delete failed"}  # log events
log = structlog.get_logger("tdgc.act")


# Why a decision may no longer be carried out, asked just before its call; None: go ahead.
Check = Callable[[Decision], str | None]


class Actor:
    def __init__(
        self,
        ecs: ECSClient,
        region: str,
        *,
        archive: Archive | None = None,
        budget: Budget | None = None,
        describe: Callable[[str], Revision | None] | None = None,
        check: Check | None = None,
    ) -> None:
        self._ecs = ecs
        self._region = region
        self._archive = archive
        self._budget = budget or Budget(None)
        self._describe = describe  # for a revision to archive that the scan did not describe
        self._check = check or (lambda _: None)
        # One thread per ECS bucket: each lane is paced by its own bucket and never waits for the other.
        self._lanes = {
            action: ThreadPoolExecutor(1, thread_name_prefix=f"tdgc-{action.value}")
            for action in (Action.DEREGISTER, Action.DELETE)
        }
        self._queued: dict[Action, list[Future[list[Outcome]]]] = {action: [] for action in self._lanes}

    def submit(self, decisions: Sequence[Decision]) -> list[Future[list[Outcome]]]:
        """Queue the decisions' mutations in their lanes; the futures give the outcomes."""
        work = {Action.DEREGISTER: self._deregister_all, Action.DELETE: self._delete_all}
        futures = []
        for action, lane in self._lanes.items():
            chosen = [d for d in decisions if d.action is action]
            if chosen:
                futures.append(lane.submit(self._stopping_on_error, work[action], chosen))
                self._queued[action].append(futures[-1])
        return futures

    def _stopping_on_error(
        self, work: Callable[[Sequence[Decision]], list[Outcome]], decisions: Sequence[Decision]
    ) -> list[Outcome]:
        """A lane that fails unexpectedly (or is interrupted) stops the run: nothing queued after it starts."""
        try:
            return work(decisions)
        except BaseException:
            self._budget.stop("run stopped")
            raise

    def busiest(self) -> list[Future[list[Outcome]]]:
        """The unfinished work of the lane with the most of it."""
        for action, queued in self._queued.items():
            self._queued[action] = [f for f in queued if not f.done()]
        return max(self._queued.values(), key=len)

    def close(self) -> None:
        for lane in self._lanes.values():
            lane.shutdown(wait=True)

    def act(self, decisions: Sequence[Decision]) -> list[Outcome]:
        """The decisions carried out, waiting for them."""
        return [outcome for future in self.submit(decisions) for outcome in future.result()]

    def _deregister_all(self, decisions: Sequence[Decision]) -> list[Outcome]:
        return [self._deregister(d) if self._budget.take(1) else self._budget.deferred(d) for d in decisions]

    def _delete_all(self, deletes: Sequence[Decision]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for start in range(0, len(deletes), DELETE_BATCH):
            batch = deletes[start : start + DELETE_BATCH]
            granted = self._budget.take(len(batch))
            outcomes += self._delete(batch[:granted]) if granted else []
            outcomes += [self._budget.deferred(d) for d in batch[granted:]]
        return outcomes

    def _deregister(self, decision: Decision) -> Outcome:
        arn = decision.revision.arn
        problem = self._check(decision)
        if problem:
            self._budget.give_back(1)
            log.warning("deregister skipped", arn=arn, reason=problem)
            return Outcome(arn, Action.DEREGISTER, Result.SKIPPED, problem)
        try:
            self._ecs.deregister_task_definition(taskDefinition=arn)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            return self._settled(decision, error_text(exc))
        log.info("deregistered", arn=arn, reason=decision.reason)
        return Outcome(arn, Action.DEREGISTER, Result.DONE)

    def _delete(self, batch: Sequence[Decision]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        ready: list[Decision] = []
        for decision in batch:
            skip = self._check(decision)
            problem = None if skip else self._archived(decision.revision)
            if skip or problem:
                self._budget.give_back(1)
                log.warning("delete skipped", arn=decision.revision.arn, error=skip or problem)
                result = Result.SKIPPED if skip else Result.FAILED
                outcomes.append(Outcome(decision.revision.arn, Action.DELETE, result, skip or problem))
            else:
                ready.append(decision)
        return outcomes + (self._send_delete(ready, again=True) if ready else [])

    def _send_delete(self, ready: Sequence[Decision], *, again: bool) -> list[Outcome]:
        try:
            answer = self._ecs.delete_task_definitions(taskDefinitions=[d.revision.arn for d in ready])
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            settled = [self._settled(d, error_text(exc)) for d in ready]
            unsettled = [d for d, o in zip(ready, settled, strict=True) if o.result is Result.FAILED]
            if again and unsettled and len(unsettled) < len(ready):
                # Refused whole for the sake of revisions already being deleted: once more without them.
                return [o for o in settled if o.result is not Result.FAILED] + self._send_delete(unsettled, again=False)
            return settled
        accepted = {td.get("taskDefinitionArn"): td.get("status") for td in answer.get("taskDefinitions", [])}
        failed = {f.get("arn"): f.get("reason") or f.get("detail") or "failed" for f in answer.get("failures", [])}
        outcomes = []
        for decision in ready:
            arn = decision.revision.arn
            if arn in accepted:
                # ECS finishes a delete once nothing references the revision: pending, not done.
                result = Result.PENDING if accepted[arn] == Status.DELETE_IN_PROGRESS else Result.DONE
                log.info("delete accepted", arn=arn, result=result.value, reason=decision.reason)
                outcomes.append(Outcome(arn, Action.DELETE, result))
            else:
                outcomes.append(self._settled(decision, failed.get(arn, "not in DeleteTaskDefinitions' answer")))
        return outcomes

    def _settled(self, decision: Decision, error: str) -> Outcome:
        """The outcome of a mutation ECS refused, or whose answer was lost, read from the revision itself.

        What ECS answers when a revision is already past the mutation (a repeated delete, a deregister of an
        INACTIVE revision, a retry after a dropped connection) is not documented (docs/design.md §8), and
        its messages are no contract; the revision's state is. One describe, only on this path.
        """
        arn, action = decision.revision.arn, decision.action
        try:
            now = self._describe(arn) if self._describe is not None else decision.revision
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            now = decision.revision  # unknown: the error stands
        if now is None:  # gone: ECS has finished deleting it
            result = Result.DONE
        elif now.status is Status.DELETE_IN_PROGRESS:
            result = Result.PENDING
        elif now.status is Status.INACTIVE and action is Action.DEREGISTER:
            result = Result.DONE
        else:
            log.warning(_FAILED[action], arn=arn, error=error)
            return Outcome(arn, action, Result.FAILED, error)
        log.info("already done", action=action.value, arn=arn, result=result.value, answer=error)
        return Outcome(arn, action, result)

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
