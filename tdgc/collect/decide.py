"""The decision core: one decision and a one-line reason per revision. Pure: no boto3, no clock, no I/O.

Invariants that hold whatever the policy says:
- an ACTIVE revision is never deleted (it is deregistered first, and deleted on a later run);
- a revision in use is neither deregistered nor deleted;
- a revision carrying a protecting tag is kept;
- the newest `keep_last` ACTIVE revisions are kept, and so is a family's newest ACTIVE revision unless its
  rule sets allow_deregister_all;
- an excluded family is never touched;
- without the timestamp an age rule needs, the revision is kept.

With `unused_for`, an ACTIVE revision the usage store knows (`last_used`, from `tdgc register`) is decided
by its last use alone, past the invariants above: kept while used that recently, deregistered once not.
Revisions the store has never seen are left to the other rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tdgc.durations import Duration, age_against
from tdgc.model import Action, Decision, Revision, Status, Why
from tdgc.policy import Rule


def needs_description(rule: Rule, status: Status, rank: int | None) -> bool:
    """Whether deciding this revision depends on DescribeTaskDefinition (timestamps or tags).

    `rank` is the revision's position among the family's ACTIVE revisions, newest first, from 0.
    """
    if rule.exclude:
        return False
    if status is Status.ACTIVE:
        if rank is None or rank < ranks_kept(rule):
            return False
        return bool(rule.protect_tags) or rule.deregister_after is not None
    if status is Status.INACTIVE:
        return rule.delete_after is not None
    return False


def decide(
    rev: Revision,
    *,
    rank: int | None,
    rule: Rule,
    glob: str | None,
    now: datetime,
    in_use_by: Sequence[str] = (),
    last_used: datetime | None = None,
) -> Decision:
    """Decide one revision. `glob` is the rule's family glob that matched (None for the defaults);
    `last_used`, when the usage store knows the revision, is its last use."""
    if rule.exclude:
        return Decision(rev, Action.KEEP, f"family excluded by rule {glob or rule.name}", why=Why.EXCLUDED)
    if in_use_by:
        return Decision(
            rev, Action.KEEP, f"in use by {in_use_by[0]}" + _more(in_use_by), True, tuple(in_use_by), why=Why.IN_USE
        )
    if rev.status is Status.ACTIVE:
        return _decide_active(rev, rank, rule, now, last_used)
    if rev.status is Status.INACTIVE:
        return _decide_inactive(rev, rule, now)
    return Decision(rev, Action.KEEP, f"already {rev.status.value}", why=Why.ALREADY)


def _decide_active(rev: Revision, rank: int | None, rule: Rule, now: datetime, last_used: datetime | None) -> Decision:
    if rank is None:
        raise ValueError(f"an ACTIVE revision needs its rank: {rev.arn}")
    kept = _kept_by_rank(rule, rank)
    if kept:
        return Decision(rev, Action.KEEP, kept, why=Why.NEWEST)
    protection = _tag_protection(rev, rule)
    if protection:
        return protection
    if rule.unused_for is not None and last_used is not None:
        old, text = _age(last_used, rule.unused_for, now)
        return Decision(
            rev, Action.DEREGISTER if old else Action.KEEP, f"last used {text}", last_used=last_used, why=Why.LAST_USED
        )
    limit = rule.deregister_after
    if limit is None:
        return Decision(rev, Action.DEREGISTER, f"not among the newest {rule.keep_last} ACTIVE", why=Why.NOT_NEWEST)
    if rev.registered_at is None:
        # Strictly after the cut-off: one registered at it would be old enough, and not "less than" the limit.
        if rev.registered_after is not None and rev.registered_after > limit.before(now):
            return Decision(rev, Action.KEEP, f"registered less than {limit.text} ago")
        if rev.registered_before is not None:
            old, text = _age(rev.registered_before, limit, now)
            if old:
                return Decision(rev, Action.DEREGISTER, f"registered before a revision registered {text}")
        return Decision(rev, Action.KEEP, "no registration time known; kept", why=Why.NO_TIME)
    old, text = _age(rev.registered_at, limit, now)
    return Decision(rev, Action.DEREGISTER if old else Action.KEEP, f"registered {text}")


def _decide_inactive(rev: Revision, rule: Rule, now: datetime) -> Decision:
    if rule.delete_after is None:
        return Decision(rev, Action.KEEP, "deletion disabled (delete_after = never)", why=Why.NO_DELETION)
    protection = _tag_protection(rev, rule)
    if protection:
        return protection
    if rev.deregistered_at is None:
        after = rev.registered_at or rev.registered_after
        if after is not None and after > rule.delete_after.before(now):
            # deregisteredAt >= registeredAt: registered recently means deregistered more recently still.
            return Decision(rev, Action.KEEP, f"registered less than {rule.delete_after.text} ago; deregistered since")
        return Decision(rev, Action.KEEP, "no deregistration time known; kept", why=Why.NO_TIME)
    old, text = _age(rev.deregistered_at, rule.delete_after, now)
    return Decision(rev, Action.DELETE if old else Action.KEEP, f"deregistered {text}")


def ranks_kept(rule: Rule) -> int:
    """How many of a family's newest ACTIVE revisions are kept whatever else is known of them."""
    return max(rule.keep_last, 0 if rule.allow_deregister_all else 1)


def _kept_by_rank(rule: Rule, rank: int) -> str | None:
    if rank < rule.keep_last:
        return f"newest {rule.keep_last} kept" if rule.keep_last > 1 else "newest kept"
    if rank == 0 and not rule.allow_deregister_all:
        return "newest ACTIVE kept: a family is never left without one (allow_deregister_all)"
    return None


def _tag_protection(rev: Revision, rule: Rule) -> Decision | None:
    tag = rule.protected_by(rev.tags)
    return Decision(rev, Action.KEEP, f"protected by tag {tag}", True, why=Why.TAGGED) if tag else None


def _age(moment: datetime, limit: Duration, now: datetime) -> tuple[bool, str]:
    """Whether `moment` is at least `limit` before `now`, and the phrase that says so."""
    return age_against(moment, limit, now)


def _more(items: Sequence[str]) -> str:
    return f" (+{len(items) - 1} more)" if len(items) > 1 else ""
