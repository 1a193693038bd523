"""The values that flow through scan → decide → act → report. Plain data, no behaviour beyond parsing."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Status(enum.StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    DELETE_IN_PROGRESS = "DELETE_IN_PROGRESS"


class Action(enum.StrEnum):
    KEEP = "keep"
    DEREGISTER = "deregister"
    DELETE = "delete"


class Result(enum.StrEnum):
    DONE = "done"
    PENDING = "pending"  # DeleteTaskDefinitions accepted it; ECS finishes once nothing references it
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Revision:
    """One task-definition revision as far as the scanner found out.

    `described` says whether DescribeTaskDefinition was called; when it was, a missing timestamp means
    ECS has none (old revisions), not that tdgc did not look.
    """

    arn: str
    family: str
    revision: int
    status: Status
    described: bool = False
    registered_at: datetime | None = None
    deregistered_at: datetime | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    # Known without describing it, from an older revision that was described (registeredAt never decreases
    # as the revision number grows): registered at or after this moment.
    registered_after: datetime | None = None
    # Known likewise from a newer revision that was described: registered at or before this moment. Revision
    # numbers are given in registration order, so this holds even where ECS recorded no timestamp.
    registered_before: datetime | None = None
    # DescribeTaskDefinition's whole answer (tags included) when described: what an archive keeps.
    description: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


class Why(enum.StrEnum):
    """What a decision rests on, whatever its reason's words: what reports count and group by."""

    EXCLUDED = "excluded"  # the family's rule excludes it
    IN_USE = "in_use"  # a reference needs it
    TAGGED = "tagged"  # a protecting tag
    NEWEST = "newest"  # among the newest keep_last ACTIVE, or a family's last ACTIVE
    LAST_USED = "last_used"  # the usage store's last use against unused_for
    NOT_NEWEST = "not_newest"  # beyond keep_last, with no age limit
    AGE = "age"  # registered or deregistered long enough ago, or not
    NO_TIME = "no_time"  # the age rule has no timestamp to judge by: kept
    NO_DELETION = "no_deletion"  # delete_after = never
    ALREADY = "already"  # already being deleted


@dataclass(frozen=True, slots=True)
class Decision:
    revision: Revision
    action: Action
    reason: str
    protected: bool = False  # kept by a tag or a reference, which no rule can override
    in_use_by: tuple[str, ...] = ()
    # Decided by `unused_for` on this last use, as the usage store had it: checked again before acting.
    last_used: datetime | None = None
    why: Why = Why.AGE


@dataclass(frozen=True, slots=True)
class Outcome:
    arn: str
    action: Action
    result: Result
    error: str | None = None


def parse_arn(arn: str) -> tuple[str, int]:
    """Family and revision of a task-definition ARN (`...:task-definition/FAMILY:REV`)."""
    tail = arn.rsplit("/", 1)[-1]
    family, sep, rev = tail.rpartition(":")
    if not sep or not family or not rev.isdigit():
        raise ValueError(f"not a task-definition ARN with a revision: {arn}")
    return family, int(rev)
