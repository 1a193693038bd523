"""Register-or-reuse: one ACTIVE revision per task-definition content, found again by a content hash.

    store = DynamoStore(boto3.client("dynamodb", config=CLIENT_CONFIG), "tdgc-reuse")   # or TagStore(ecs)
    found = register_or_reuse(ecs, json.loads(Path("td.json").read_text()), store)
    found.arn, found.reused, found.how

An orchestrator that registers a revision per run marches its family toward ECS's 1,000,000-revision limit
even when nothing changed. Here the request is hashed (`content_hash`), the store says which revision holds
that content, and that revision is returned once ECS's own description of it shows it ACTIVE, with this
content and these protect tags; only otherwise is one registered, tagged `tdgc:content-hash` so that the
content can be recognised on the revision itself.

The store is a pointer, never the proof: a `tdgc:content-hash` tag can be copied onto any revision and a
table item edited, so the candidate's description (DescribeTaskDefinition with its tags, the one read that
also shows it ACTIVE) is made canonical again and compared with the request's. A candidate that differs is
never returned: tdgc warns (`reuse.mismatch`, naming its ARN), registers, and the store's record is
replaced as for a revision deregistered since.

The protect tags (`protect_tags`, default `tdgc:keep`, the key the collector's default policy honours) are
part of what must match: a request that carries one only reuses a revision carrying the same key with the
same value, and a revision carrying one only serves requests that carry it too, so what is protected stays
exactly what was asked to be. They enter the hash, so each combination has its own record. Other tags (run
ids and the like) are not content.

The hash is taken over `canonical(args)`, the request as ECS will hold it, so that two requests meaning the
same thing hash the same, and so does the DescribeTaskDefinition answer for the revision a request
registered:
- only RegisterTaskDefinition's fields count (botocore's model of ECS is the authority); the read-only fields
  of a description (taskDefinitionArn, revision, status, registeredAt, ...) are dropped, and so are `tags`;
- an empty value is dropped only where ECS is known to answer it for a field the request left out (or to
  drop it from what it was sent), and only at that level (`_AS_ABSENT`): anywhere else "", [] and {} are
  content (a label "" is a label; a Docker volume configuration {} is not a bind mount);
- the defaults ECS documents are filled in where a field is missing (each quoted below from the API
  reference, the text botocore's model carries);
- task-level cpu and memory become the numbers ECS stores ("0.25 vCPU" -> "256", "2 GB" -> "2048");
- lists that ECS treats as sets are sorted (environment, secrets, ulimits, ...), when their names are unique.
Where a normalisation is in doubt it is left out: a missed equality costs one more revision (and, since the
candidate is checked, a `reuse.mismatch` warning each time), a wrong one would run different content. The
order of containers, commands, DNS servers, links and mount points is kept.
"""

from __future__ import annotations

import enum
import functools
import getpass
import socket
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import botocore.exceptions
import structlog

from tdgc.aws.ecs import TaskDefinitions
from tdgc.reuse.content import PROTECT_TAGS, Verdict, _Wanted, register_fields
from tdgc.reuse.store import HASH_TAG, Backoff, Claim, Coordinating, Record, Store

log = structlog.get_logger("tdgc.reuse")


class How(enum.StrEnum):
    """How register_or_reuse settled on the revision it returns."""

    FOUND = "found"  # the store's revision, still ACTIVE with this content
    JOINED = "joined"  # another caller registered it a moment ago, while this one waited
    REGISTERED = "registered"  # new content
    REPLACED = "replaced"  # the store's revision was gone or not this content: registered again, record repaired


HOW = tuple(h.value for h in How)  # the values of Reused.how
# ECS's answer when registrations in one family overlap; a ClientException, so botocore does not retry it.
TOO_MANY = "Too many concurrent attempts"
_ROUNDS = 4  # lookups a call may need: found stale, claimed, lost the claim to a registration, ...


@dataclass(frozen=True)
class Reused:
    """The revision to run. `how`: "found" (the store's revision, still ACTIVE with this content), "joined"
    (another caller registered it a moment ago, while this one waited), "registered" (new content),
    "replaced" (the store's revision was deregistered or deleted since, or was found to hold other content or
    other protect tags: registered again, the record repaired)."""

    arn: str
    family: str
    revision: int
    hash: str
    reused: bool
    how: How


class ReuseError(Exception):
    """register_or_reuse could not settle on a revision (the store kept changing under it)."""


# ---- register or reuse -------------------------------------------------------------------------------------


def register_or_reuse(
    ecs_client: Any,
    args: Mapping[str, Any],
    store: Store,
    *,
    now: datetime | None = None,
    who: str | None = None,
    backoff: Backoff | None = None,
    protect_tags: Collection[str] = PROTECT_TAGS,
) -> Reused:
    """The ARN of an ACTIVE revision with this content: the store's, or one registered now.

    `args`: RegisterTaskDefinition's arguments (a DescribeTaskDefinition `taskDefinition` works too; its
    read-only fields are not sent). The caller's tags are sent with `tdgc:content-hash` added. A revision is
    reused only if its description shows it ACTIVE, with this content, and with the same value as the request
    for each tag key in `protect_tags` (or without it, as the request). `who` goes to the store's audit trail
    (default: user@host). `backoff` paces the retries of ECS's "Too many concurrent attempts" answer;
    throttles are botocore's to retry (tdgc.aws.CLIENT_CONFIG's standard mode).
    """
    family = args.get("family")
    if not isinstance(family, str) or not family:
        raise ValueError("a task definition needs a family")
    wanted = _Wanted.of(args, protect_tags)
    digest = wanted.digest
    who = who or default_who()

    def clock() -> datetime:
        return now or datetime.now(UTC)

    record = store.lookup(digest, family)
    joined = False
    stale: str | None = None
    for _ in range(_ROUNDS):
        if record is not None:
            # The store read the revision to find it (the tag store), or it is described now: one read either way.
            verdict = wanted.verdict(
                record.described if record.described is not None else _described(ecs_client, record.arn)
            )
            if verdict is Verdict.USABLE:
                how = How.JOINED if joined else How.FOUND
                used = store.record_use(record, now=clock(), who=who, how=how)
                return Reused(used.arn, family, used.revision, digest, True, how)
            if verdict is not Verdict.GONE:  # a copied tag, an edited record: never handed out
                log.warning("reuse.mismatch", arn=record.arn, hash=digest, verdict=verdict.name, reason=verdict.value)
            stale = record.arn
        outcome = _claim(store, digest, family, stale)
        if isinstance(outcome, Record):  # someone else registered it while this caller waited
            record, joined = outcome, True
            continue
        registered = _register_claimed(ecs_client, args, store, outcome, stale, clock(), who, backoff or Backoff())
        if isinstance(registered, Reused):
            return registered
        record, joined = registered, True  # another registration finished first: checked as any other
    raise ReuseError(f"{family} {digest}: no stable revision after {_ROUNDS} rounds")


def _claim(store: Store, digest: str, family: str, stale: str | None) -> Claim | Record:
    """The right to register: asked of a store that makes callers agree; any other has nobody to ask."""
    if isinstance(store, Coordinating):
        return store.claim(digest, family, stale_arn=stale)
    return Claim(digest, family, owner="", lease_until=float("inf"))


def _register_claimed(
    ecs: Any,
    args: Mapping[str, Any],
    store: Store,
    claim: Claim,
    stale: str | None,
    now: datetime,
    who: str,
    backoff: Backoff,
) -> Reused | Record:
    """The revision registered under the claim, or the record of another registration that finished first."""
    try:
        arn, revision = register(ecs, args, claim.hash, backoff)
    except BaseException:
        if isinstance(store, Coordinating):
            store.release(claim)
        raise
    how = How.REPLACED if stale else How.REGISTERED
    if not isinstance(store, Coordinating):  # the tag on the revision is the record
        return Reused(arn, claim.family, revision, claim.hash, False, how)
    record = store.fill(claim, arn, revision, now=now, who=who, how=how)
    if record.arn != arn:  # our lease was taken over and the other registration finished first: use theirs
        log.warning("reuse.duplicate", arn=arn, kept=record.arn, reason="claim taken over while registering")
        return record
    return Reused(arn, claim.family, revision, claim.hash, False, how)


def register(ecs: Any, args: Mapping[str, Any], digest: str, backoff: Backoff) -> tuple[str, int]:
    """Register the content tagged with its hash; retry ECS's "Too many concurrent attempts" answer."""
    request = {k: v for k, v in args.items() if k in register_fields()}
    tags = [t for t in request.get("tags") or [] if t.get("key") != HASH_TAG]
    request["tags"] = [*tags, {"key": HASH_TAG, "value": digest}]
    attempt = 0
    while True:
        try:
            td = TaskDefinitions(ecs).register(request)
            return str(td["taskDefinitionArn"]), int(td["revision"])
        except botocore.exceptions.ClientError as exc:
            if not _too_many(exc) or attempt + 1 >= backoff.attempts:
                raise
        backoff.pause(attempt)
        attempt += 1


def _too_many(exc: botocore.exceptions.ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") == "ClientException" and TOO_MANY.lower() in str(error.get("Message", "")).lower()


def _described(ecs: Any, arn: str) -> dict[str, Any] | None:
    """The revision's DescribeTaskDefinition answer with its tags; None if it no longer exists."""
    answer = TaskDefinitions(ecs).describe(arn)
    if answer is None:
        return None
    return {"taskDefinition": answer["taskDefinition"], "tags": answer.get("tags", [])}


@functools.cache
def default_who() -> str:
    """user@host, for the audit trail."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container without a passwd entry
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
