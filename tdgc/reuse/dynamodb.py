"""The DynamoDB store (its schema and concurrency: tdgc.reuse.store)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import botocore.exceptions

from tdgc.aws.errors import error_code
from tdgc.reuse.store import RECORD, Backoff, Claim, Record, StoreBusy, iso, when

# ---- DynamoDB ----------------------------------------------------------------------------------------------


POLL = Backoff(first=0.05, cap=0.5)  # how often a caller looks again while another registers; frozen, so shared


class DynamoStore:
    """A DynamoDB table of content hash -> revision, uses and an audit trail (schema: the module docstring)."""

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        lease: float = 60.0,
        wait: float = 120.0,
        poll: Backoff = POLL,
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
                        ":now": {"S": iso(now)},
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
                    {":now": {"S": iso(now)}, ":one": {"N": "1"}, ":arn": {"S": record.arn}},
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
            "sk": {"S": f"use#{iso(now)}#{uuid.uuid4().hex[:12]}"},
            "arn": {"S": arn},
            "how": {"S": how},
            "who": {"S": who or "-"},
            "at": {"S": iso(now)},
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
            first_registered=when(_s(item, "first_registered")),
            last_used=when(_s(item, "last_used")),
            use_count=int(_n(item, "use_count") or 0),
        )


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
