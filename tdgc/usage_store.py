"""Where register-or-reuse (tdgc.reuse) finds a content hash's revision again, and counts its uses.

Two stores, one protocol (`Store`). A store only points: a `tdgc:content-hash` tag can be copied onto any
revision and a table item edited, so tdgc.reuse checks the revision a store names against its own description
before handing it out, and replaces the store's answer when it does not hold the content.

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
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import botocore.exceptions

from tdgc.errors import error_code

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
    def lookup(self, digest: str, family: str) -> Record | None:
        """The revision last recorded for this content (it may have been deregistered since), or None."""
        ...

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

    def record_use(self, record: Record, *, now: datetime, who: str, how: str) -> Record:
        """Count one use of the record's revision."""
        ...

    def records(self) -> Iterator[Record]:
        """Every content the store knows, with its revision (in no particular order)."""
        ...


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# ---- DynamoDB ----------------------------------------------------------------------------------------------


class DynamoStore:
    """A DynamoDB table of content hash -> revision, uses and an audit trail (schema: the module docstring)."""

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        lease: float = 60.0,
        wait: float = 120.0,
        poll: Backoff = Backoff(first=0.05, cap=0.5),  # frozen: one shared default is safe
        audit_days: int | None = 365,
        clock: Callable[[], float] = time.time,
        create_missing: bool = True,
    ) -> None:
        self.client = client
        self.table = table
        self.create_missing = create_missing  # False for readers (plan, `tdgc usage`): they change nothing
        self.lease = lease
        self.wait = wait
        self.poll = poll
        self.audit_days = audit_days
        self.clock = clock

    # ---- the Store protocol ----

    def lookup(self, digest: str, family: str) -> Record | None:
        item = self._get(digest)
        return self._record(item) if item is not None and "arn" in item else None

    def claim(self, digest: str, family: str, *, stale_arn: str | None = None) -> Claim | Record:
        deadline = self.clock() + self.wait
        attempt = 0
        write = True  # whether a conditional write can win: not while another caller's live claim stands
        while True:
            mine = Claim(digest, family, uuid.uuid4().hex, self.clock() + self.lease)
            if write and self._try_claim(mine, stale_arn):
                return mine
            item = self._get(digest)
            if item is None:  # deleted by hand since: claim it afresh
                stale_arn, write = None, True
                continue
            arn = _s(item, "arn")
            if arn is not None:
                if arn != stale_arn:
                    return self._record(item)
                write = True  # still the stale ARN: the record changed and changed back; claim again
                continue
            owner, lease_until = _s(item, "owner"), _n(item, "lease_until")
            if owner is None or lease_until is None or lease_until < self.clock():
                if self._take_over(mine, owner):  # its owner crashed or hangs, or gave up
                    return mine
                write = False  # someone else took it over first: look again
                continue
            if self.clock() > deadline:
                raise StoreBusy(f"{digest}: another caller has been registering this content for over {self.wait:g}s")
            write = False
            self.poll.pause(attempt)
            attempt += 1

    def fill(self, claim: Claim, arn: str, revision: int, *, now: datetime, who: str, how: str) -> Record:
        try:
            answer = self._call(
                "update_item",
                Key=_key(claim.hash),
                UpdateExpression="SET #arn = :arn, #revision = :revision, #family = :family, #last_used = :now, "
                "#first_registered = if_not_exists(#first_registered, :now) ADD #use_count :one "
                "REMOVE #owner, #lease_until",
                # Not conditional on the owner: the first registration to finish wins, whoever holds the lease.
                ConditionExpression="attribute_not_exists(#arn)",
                **_expression(
                    ["arn", "revision", "family", "last_used", "first_registered", "use_count", "owner", "lease_until"],
                    {
                        ":arn": {"S": arn},
                        ":revision": {"N": str(revision)},
                        ":family": {"S": claim.family},
                        ":now": {"S": _iso(now)},
                        ":one": {"N": "1"},
                    },
                ),
                ReturnValues="ALL_NEW",
            )
            record = self._record(answer["Attributes"])
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            item = self._get(claim.hash)
            if item is None or "arn" not in item:  # pragma: no cover - fill and delete racing: keep our own
                return Record(claim.hash, claim.family, arn, revision, now, now, 1)
            return self._record(item)  # the caller counts its use of the winner's revision
        self._audit(claim.hash, arn, now=now, who=who, how=how)
        return record

    def release(self, claim: Claim) -> None:
        try:
            self._call(
                "update_item",
                Key=_key(claim.hash),
                UpdateExpression="REMOVE #owner, #lease_until",
                ConditionExpression="#owner = :me",
                **_expression(["owner", "lease_until"], {":me": {"S": claim.owner}}),
            )
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":  # taken over meanwhile: not ours to give up
                raise

    def record_use(self, record: Record, *, now: datetime, who: str, how: str) -> Record:
        try:
            answer = self._call(
                "update_item",
                Key=_key(record.hash),
                UpdateExpression="SET #last_used = :now ADD #use_count :one",
                # A record replaced meanwhile by another revision must not be credited with this use.
                ConditionExpression="#arn = :arn",
                **_expression(
                    ["last_used", "use_count", "arn"],
                    {":now": {"S": _iso(now)}, ":one": {"N": "1"}, ":arn": {"S": record.arn}},
                ),
                ReturnValues="ALL_NEW",
            )
            record = self._record(answer["Attributes"])
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
        self._audit(record.hash, record.arn, now=now, who=who, how=how)
        return record

    def records(self) -> Iterator[Record]:
        filtered = _expression(["sk", "arn"], {":record": {"S": RECORD}})
        for item in self._items("scan", FilterExpression="#sk = :record AND attribute_exists(#arn)", **filtered):
            yield self._record(item)

    def uses(self, digest: str) -> Iterator[dict[str, str]]:
        """The audit trail of one content, oldest first: arn, how, who, at."""
        keyed = _expression(["pk", "sk"], {":pk": {"S": _pk(digest)}, ":use": {"S": "use#"}})
        for item in self._items("query", KeyConditionExpression="#pk = :pk AND begins_with(#sk, :use)", **keyed):
            yield {k: str(_s(item, k) or "") for k in ("arn", "how", "who", "at")}

    # ---- the table ----

    def create(self) -> None:
        """Create the table (on-demand billing) unless it exists, and wait until it is ACTIVE."""
        created = False
        try:
            self.client.create_table(
                TableName=self.table,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            created = True
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "ResourceInUseException":  # another caller is creating it: wait for theirs
                raise
        self.client.get_waiter("table_exists").wait(TableName=self.table, WaiterConfig={"Delay": 2, "MaxAttempts": 150})
        if created and self.audit_days is not None:
            self.client.update_time_to_live(
                TableName=self.table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
            )

    def _call(self, operation: str, **kwargs: Any) -> Any:
        """Call the table; a missing table is created first (DynamoDB answers ResourceNotFound until ACTIVE)."""
        method = getattr(self.client, operation)
        try:
            return method(TableName=self.table, **kwargs)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException" or not self.create_missing:
                raise
        self.create()
        return method(TableName=self.table, **kwargs)

    def _items(self, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every item of a scan or query, through botocore's paginator; a missing table as for `_call`."""
        try:
            for page in self.client.get_paginator(operation).paginate(TableName=self.table, **kwargs):
                yield from page.get("Items", [])
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException" or not self.create_missing:
                raise
            self.create()  # a table just created holds nothing to list

    # ---- items ----

    def _get(self, digest: str) -> dict[str, Any] | None:
        # Consistent: a caller polling for another's registration must see the ARN as soon as it is written.
        item: dict[str, Any] | None = self._call("get_item", Key=_key(digest), ConsistentRead=True).get("Item")
        return item

    def _try_claim(self, claim: Claim, stale_arn: str | None) -> bool:
        values = {":me": {"S": claim.owner}, ":lease": {"N": repr(claim.lease_until)}, ":family": {"S": claim.family}}
        try:
            if stale_arn is None:
                self._call(
                    "put_item",
                    Item={
                        **_key(claim.hash),
                        "family": {"S": claim.family},
                        "owner": values[":me"],
                        "lease_until": values[":lease"],
                    },
                    ConditionExpression="attribute_not_exists(#pk)",
                    ExpressionAttributeNames={"#pk": "pk"},
                )
            else:  # keep the record's counts; drop the dead ARN so that others wait for the new one
                self._call(
                    "update_item",
                    Key=_key(claim.hash),
                    UpdateExpression="SET #owner = :me, #lease_until = :lease, #family = :family "
                    "REMOVE #arn, #revision",
                    ConditionExpression="#arn = :stale",
                    **_expression(
                        ["owner", "lease_until", "family", "arn", "revision"], {**values, ":stale": {"S": stale_arn}}
                    ),
                )
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def _take_over(self, claim: Claim, old_owner: str | None) -> bool:
        values = {":me": {"S": claim.owner}, ":lease": {"N": repr(claim.lease_until)}}
        if old_owner is None:
            held = "attribute_not_exists(#owner)"
        else:
            held, values[":old"] = "#owner = :old", {"S": old_owner}
        try:
            self._call(
                "update_item",
                Key=_key(claim.hash),
                UpdateExpression="SET #owner = :me, #lease_until = :lease",
                ConditionExpression=f"{held} AND attribute_not_exists(#arn)",
                **_expression(["owner", "lease_until", "arn"], values),
            )
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def _audit(self, digest: str, arn: str, *, now: datetime, who: str, how: str) -> None:
        item = {
            "pk": {"S": _pk(digest)},
            "sk": {"S": f"use#{_iso(now)}#{uuid.uuid4().hex[:12]}"},
            "arn": {"S": arn},
            "how": {"S": how},
            "who": {"S": who or "-"},
            "at": {"S": _iso(now)},
        }
        if self.audit_days is not None:
            item["expires_at"] = {"N": str(int((now + timedelta(days=self.audit_days)).timestamp()))}
        self._call("put_item", Item=item)

    def _record(self, item: Mapping[str, Any]) -> Record:
        digest = (_s(item, "pk") or "").removeprefix("content#")
        return Record(
            hash=digest,
            family=_s(item, "family") or "",
            arn=_s(item, "arn") or "",
            revision=int(_n(item, "revision") or 0),
            first_registered=_when(_s(item, "first_registered")),
            last_used=_when(_s(item, "last_used")),
            use_count=int(_n(item, "use_count") or 0),
        )


def open_store(spec: str, target: Any, *, create: bool = True) -> Store:
    """`tags`, or `dynamodb://TABLE` (created on first use unless `create` is False), on the target's
    connection (a tdgc.aws.Connection)."""
    from tdgc.errors import UsageError
    from tdgc.pacing import unpaced

    if spec == "tags":
        return TagStore(target.ecs(unpaced()))
    table = spec.removeprefix("dynamodb://")
    if not spec.startswith("dynamodb://") or not re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", table):
        raise UsageError(f"--store {spec!r}: expected tags or dynamodb://TABLE")
    return DynamoStore(target.client("dynamodb", unpaced()), table, create_missing=create)


def last_uses(store: Store) -> dict[str, datetime]:
    """ARN -> last use, for every revision the store knows a use of (what `unused_for` decides by)."""
    return {r.arn: r.last_used for r in store.records() if r.last_used is not None}


class LastUses(Mapping[str, datetime]):
    """ARN -> last use as the store told it at the start of a run (what `unused_for` decides by), and a fresh
    look at one revision's entry just before it is deregistered: `tdgc register` may hand it out meanwhile."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._records = {r.arn: r for r in store.records() if r.last_used is not None}

    def __getitem__(self, arn: str) -> datetime:
        last = self._records[arn].last_used
        assert last is not None  # only records with a last use are kept
        return last

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def now(self, arn: str) -> datetime | None:
        """The revision's last use as the store has it now (one read); None once its content has moved on to
        another revision, or the store has forgotten it."""
        known = self._records.get(arn)
        fresh = self._store.lookup(known.hash, known.family) if known is not None else None
        return fresh.last_used if fresh is not None and fresh.arn == arn else None


def record_dict(record: Record) -> dict[str, Any]:
    """A record as `tdgc usage --output json` prints it (stable: fields are only ever added)."""
    return {
        "family": record.family, "revision": record.revision, "arn": record.arn, "hash": record.hash,
        "first_registered": _iso(record.first_registered) if record.first_registered else None,
        "last_used": _iso(record.last_used) if record.last_used else None, "use_count": record.use_count,
    }  # fmt: skip


def _pk(digest: str) -> str:
    return f"content#{digest}"


def _key(digest: str) -> dict[str, Any]:
    return {"pk": {"S": _pk(digest)}, "sk": {"S": RECORD}}


def _expression(names: list[str], values: dict[str, Any]) -> dict[str, Any]:
    # Every attribute goes through a #name: several of ours (owner, at, ...) are DynamoDB reserved words.
    return {"ExpressionAttributeNames": {f"#{n}": n for n in names}, "ExpressionAttributeValues": values}


def _s(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return str(value["S"]) if isinstance(value, dict) and "S" in value else None


def _n(item: Mapping[str, Any], name: str) -> float | None:
    value = item.get(name)
    return float(value["N"]) if isinstance(value, dict) and "N" in value else None


# ---- tags on the revisions ---------------------------------------------------------------------------------


class TagStore:
    """The hash as a tag on the revision, found again among the family's newest ACTIVE revisions.

    No table, no use count, no agreement between concurrent callers (see the module docstring)."""

    def __init__(self, ecs_client: Any, *, lookback: int = 20) -> None:
        if lookback < 1:
            raise ValueError("lookback must be at least 1")
        self.ecs = ecs_client
        self.lookback = lookback

    def lookup(self, digest: str, family: str) -> Record | None:
        for record in self._tagged(family):
            if record.hash == digest:
                return record
        return None

    def claim(self, digest: str, family: str, *, stale_arn: str | None = None) -> Claim | Record:
        return Claim(digest, family, owner="", lease_until=float("inf"))

    def fill(self, claim: Claim, arn: str, revision: int, *, now: datetime, who: str, how: str) -> Record:
        return Record(claim.hash, claim.family, arn, revision, first_registered=now)

    def release(self, claim: Claim) -> None:
        pass

    def record_use(self, record: Record, *, now: datetime, who: str, how: str) -> Record:
        return record  # nowhere to count it

    def records(self) -> Iterator[Record]:
        """Each ACTIVE family's tagged revisions within the look-back: about families x (1 + lookback) reads."""
        for page in self.ecs.get_paginator("list_task_definition_families").paginate(status="ACTIVE"):
            for family in page.get("families", []):
                yield from self._tagged(family)

    def _tagged(self, family: str) -> Iterator[Record]:
        """The family's newest ACTIVE revisions that carry a hash tag, newest first, within the look-back."""
        for arn in self._newest(family):
            try:
                answer = self.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) == "ClientException":  # deleted since it was listed
                    continue
                raise
            td, tags = answer["taskDefinition"], answer.get("tags", [])
            digest = next((t.get("value") for t in tags if t.get("key") == HASH_TAG), None)
            if digest and td.get("status") == "ACTIVE":
                registered = td.get("registeredAt")
                yield Record(
                    digest, family, str(td["taskDefinitionArn"]), int(td["revision"]),
                    first_registered=registered if isinstance(registered, datetime) else None,
                    described={"taskDefinition": td, "tags": tags},
                )  # fmt: skip

    def _newest(self, family: str) -> Iterator[str]:
        pages = self.ecs.get_paginator("list_task_definitions").paginate(
            familyPrefix=family, status="ACTIVE", sort="DESC",
            PaginationConfig={"MaxItems": self.lookback, "PageSize": min(100, self.lookback)},
        )  # fmt: skip
        for page in pages:
            yield from page.get("taskDefinitionArns", [])
