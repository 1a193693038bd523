"""Where register-or-reuse (tdgc.reuse.register) finds a content hash's revision again, and counts its uses.

Two stores: both point (`Store`); only the table makes concurrent callers agree (`Coordinating`). A store
only points: a `tdgc:content-hash` tag can be copied onto any revision and a table item edited, so
tdgc.reuse.register checks the revision a store names against its own description before handing it out, and
replaces the store's answer when it does not hold the content.

`DynamoStore(dynamodb_client, table)`: a DynamoDB table, created on first use if it is missing (on-demand
billing, PAY_PER_REQUEST; time to live enabled on `expires_at`). Its schema:

    partition key  pk  (S)
    sort key       sk  (S)

    the record, one per content:   pk = "content#<hash>"  sk = "record"
        family            S   the task-definition family (the hash covers it: one family per hash)
        arn               S   the ACTIVE revision with this content; absent while a registration is in flight
        revision          N   its revision number
        first_registered  S   ISO 8601, UTC: when this content was first registered through the store
        last_used         S   ISO 8601, UTC: the last register-or-reuse that returned it (a registration counts)
        use_count         N   how many register-or-reuse calls returned this content (a registration counts)
        owner             S   only while a registration is in flight: the claim's owner id (a random UUID)
        lease_until       N   only then: epoch seconds after which another caller may take the claim over

    an audit item per use:         pk = "content#<hash>"  sk = "use#<ISO 8601 time>#<uuid>"
        arn S, how S ("found", "joined", "registered", "replaced"), who S, at S (ISO 8601),
        expires_at N      epoch seconds; DynamoDB's time to live deletes the item after it (audit_days)

Concurrency: callers that all miss the record race to claim it with a conditional put
(`attribute_not_exists(pk)`), or, to replace a revision deregistered or deleted since, a conditional update
(`arn = :stale`) that also removes the stale ARN. The one that wins registers; the others poll (jittered
backoff, bounded by `wait`) until the ARN appears. A claim carries a lease: a caller that finds it expired
(the winner crashed, or hangs) takes it over with a conditional update on the old owner, so nobody waits
forever; a caller whose registration fails releases its claim at once. Filling the ARN in is conditional
on the record having none yet: the first registration to finish wins, even one whose lease was taken over,
and a later one returns the winner's ARN instead of its own (its own revision stays ACTIVE and unused; the
retention rules collect it). Uses are counted with atomic `ADD use_count :one`. Lease expiry compares wall
clocks of different machines: keep `lease` well above any clock skew (the default is a minute).

`TagStore(ecs_client, lookback=20)`: no infrastructure. The hash is the revision's `tdgc:content-hash`
tag; a lookup lists the family's newest ACTIVE revisions (at most `lookback`) and describes them until one
carries the hash. What it cannot do, by design:
- it records no use: last use is unknown, so a rule on last use (`unused_for`) cannot judge its revisions;
- it cannot make concurrent callers agree: callers that miss at the same moment each register a revision
  (same content, each a valid ARN); later callers reuse the newest, and the retention rules collect the rest;
- content whose revision has slid out of the look-back window (more than `lookback` newer ACTIVE revisions
  in the family) is registered again;
- it finds the newest revision carrying the hash, nothing older: if that one holds other content (a copied
  tag), the content is registered again, and the new revision is the newest from then on.
The describe that finds a revision travels with its record (`Record.described`), so that checking it costs
no second read.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

HASH_TAG = "tdgc:content-hash"
RECORD = "record"


@dataclass(frozen=True)
class Record:
    """What a store knows of one content: its ACTIVE revision and, where the store counts them, its uses."""

    hash: str
    family: str
    arn: str
    revision: int
    first_registered: datetime | None = None
    last_used: datetime | None = None  # None: the store does not know (TagStore)
    use_count: int = 0
    # The DescribeTaskDefinition answer (`taskDefinition` and `tags`) the store read to find this revision, if it
    # read one (TagStore does): register-or-reuse checks the revision against it instead of describing it again.
    described: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Claim:
    """The right to register a content: given to one caller at a time, until `lease_until` (epoch seconds)."""

    hash: str
    family: str
    owner: str
    lease_until: float


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: callers that collided spread out instead of colliding again."""

    first: float = 0.2
    cap: float = 5.0
    attempts: int = 10
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def pause(self, attempt: int) -> None:
        self.sleep(random.uniform(0, min(self.cap, self.first * 2**attempt)))


class StoreBusy(Exception):
    """Another caller held a content's claim for longer than this caller was willing to wait."""


class Store(Protocol):
    """Where a content's revision is found again. Every store can point; only some can make callers agree."""

    def lookup(self, digest: str, family: str) -> Record | None:
        """The revision last recorded for this content (it may have been deregistered since), or None."""
        ...

    def record_use(self, record: Record, *, now: datetime, who: str, how: str) -> Record:
        """Count one use of the record's revision (a store that counts nothing returns the record)."""
        ...

    def records(self) -> Iterator[Record]:
        """Every content the store knows, with its revision (in no particular order)."""
        ...


@runtime_checkable
class Coordinating(Store, Protocol):
    """A store that makes concurrent callers agree: one of them registers a new content, the others wait for
    its revision (DynamoStore). With any other store, callers that miss at once each register."""

    def claim(self, digest: str, family: str, *, stale_arn: str | None = None) -> Claim | Record:
        """The right to register this content, or the record another caller filled in meanwhile.

        `stale_arn`: the record's revision was found deregistered or deleted; replace it."""
        ...

    def fill(self, claim: Claim, arn: str, revision: int, *, now: datetime, who: str, how: str) -> Record:
        """Record the revision registered under `claim`; if another registration finished first, its record."""
        ...

    def release(self, claim: Claim) -> None:
        """Give a claim up (its registration failed), so that the next caller need not wait for its lease."""
        ...


def record_dict(record: Record) -> dict[str, Any]:
    """A record as `tdgc usage --output json` prints it (stable: fields are only ever added)."""
    return {
        "family": record.family,
        "revision": record.revision,
        "arn": record.arn,
        "hash": record.hash,
        "first_registered": iso(record.first_registered) if record.first_registered else None,
        "last_used": iso(record.last_used) if record.last_used else None,
        "use_count": record.use_count,
    }


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
