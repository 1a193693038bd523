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

import copy
import enum
import functools
import getpass
import hashlib
import json
import re
import socket
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

import botocore.exceptions
import botocore.session
import structlog

from tdgc.errors import error_code
from tdgc.usage_store import HASH_TAG, Backoff, Claim, Record, Store

log = structlog.get_logger("tdgc.reuse")


class How(enum.StrEnum):
    """How register_or_reuse settled on the revision it returns."""

    FOUND = "found"  # the store's revision, still ACTIVE with this content
    JOINED = "joined"  # another caller registered it a moment ago, while this one waited
    REGISTERED = "registered"  # new content
    REPLACED = "replaced"  # the store's revision was gone or not this content: registered again, record repaired


HOW = tuple(h.value for h in How)  # the values of Reused.how
# The tag keys whose values a reused revision must carry as the request does: the key the collector's default
# policy protects by (tdgc.policy.Rule.protect_tags), so that content asked to be kept is kept.
PROTECT_TAGS = ("tdgc:keep",)
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


class Verdict(Enum):
    """What a store's revision turned out to be, once described, for the request at hand."""

    USABLE = "ACTIVE, with this content and these protect tags"
    GONE = "deregistered or deleted"
    OTHER_CONTENT = "holds other content"
    OTHER_PROTECTION = "carries other protect tags"


# ---- the content hash --------------------------------------------------------------------------------------


_MODEL_LOCK = threading.Lock()


def register_fields() -> frozenset[str]:
    """RegisterTaskDefinition's arguments, per botocore's model of ECS (tags included)."""
    return _fields()[0]


def described_fields() -> frozenset[str]:
    """The fields of DescribeTaskDefinition's `taskDefinition`: the arguments minus tags, plus read-only ones."""
    return _fields()[1]


def _fields() -> tuple[frozenset[str], frozenset[str]]:
    with _MODEL_LOCK:  # threads of one process starting together would each load the model (~50 ms each)
        return _load_fields()


@functools.cache
def _load_fields() -> tuple[frozenset[str], frozenset[str]]:
    model = botocore.session.get_session().get_service_model("ecs")
    register = model.operation_model("RegisterTaskDefinition").input_shape
    described = model.operation_model("DescribeTaskDefinition").output_shape.members["taskDefinition"]  # type: ignore[union-attr]
    return frozenset(register.members), frozenset(described.members)  # type: ignore[union-attr]


# What ECS is known to answer for a field the request left out, per level of the document: botocore's own
# examples of ECS (examples-1.json: DescribeTaskDefinition "hello_world:8", RegisterTaskDefinition "sleep360")
# answer [] for a container's environment, mountPoints, portMappings and volumesFrom and for the task's volumes,
# and drop the taskRoleArn "" they were sent; real answers (tests/test_reuse.py WEB_DESCRIBED) add
# placementConstraints, a container's systemControls and a log configuration's secretOptions as []. So these
# values, at these levels only, are the same content as no value at all; every other empty value is content.
_AS_ABSENT: Mapping[str, Mapping[str, Any]] = {
    "task": {"volumes": [], "placementConstraints": [], "taskRoleArn": ""},
    "container": {"environment": [], "mountPoints": [], "portMappings": [], "volumesFrom": [], "systemControls": []},
    "logConfiguration": {"secretOptions": []},
}


def canonical(args: Mapping[str, Any]) -> dict[str, Any]:
    """The content of a RegisterTaskDefinition request (or of a DescribeTaskDefinition `taskDefinition`), as
    ECS holds it: the same intent gives the same value. See the module docstring for the rules."""
    fields = register_fields() - {"tags"}
    unknown = set(args) - register_fields() - described_fields()
    if unknown:  # a typo would otherwise hash as if absent, and could match content it does not describe
        raise ValueError(f"not task-definition fields: {', '.join(sorted(unknown))}")
    td: dict[str, Any] = _without_absent(copy.deepcopy({k: v for k, v in args.items() if k in fields}), "task")
    # "If no network mode is specified, the default is bridge." (RegisterTaskDefinition, networkMode)
    mode = td.setdefault("networkMode", "bridge")
    # "String values are converted to an integer indicating the CPU units [the MiB] when the task definition is
    # registered." (RegisterTaskDefinition, cpu and memory): "1 vCPU" or "1 vcpu", "1GB" or "1 GB".
    if "cpu" in td:
        td["cpu"] = _units(td["cpu"], "vcpu", 1024)
    if "memory" in td:
        td["memory"] = _units(td["memory"], "gb", 1024)
    if "requiresCompatibilities" in td:
        td["requiresCompatibilities"] = _set_of(td["requiresCompatibilities"])
    if "containerDefinitions" in td:
        td["containerDefinitions"] = [_container(c, mode) for c in td["containerDefinitions"]]
    if "volumes" in td:
        td["volumes"] = _by(list(map(_volume, td["volumes"])), "name")
    if "placementConstraints" in td:
        td["placementConstraints"] = _set_of(td["placementConstraints"])
    if "inferenceAccelerators" in td:
        td["inferenceAccelerators"] = _by(td["inferenceAccelerators"], "deviceName")
    return td


def content_hash(args: Mapping[str, Any], protect_tags: Collection[str] = PROTECT_TAGS) -> str:
    """The hash: "sha256:" and the hex digest of the canonical content as JSON (sorted keys, no spaces), with
    the request's protect tags (`protection`) under `tags` when it carries any, so that the hash of content
    without them is the content's alone."""
    return _Wanted.of(args, protect_tags).digest


def protection(tags: Any, protect_tags: Collection[str] = PROTECT_TAGS) -> list[dict[str, Any]]:
    """The tags (a request's, or a description's) whose key is a protect tag, sorted: part of what must match."""
    if not isinstance(tags, list):
        return []
    found = [
        {"key": t["key"], "value": t.get("value")} for t in tags if isinstance(t, dict) and t.get("key") in protect_tags
    ]
    return sorted(found, key=_json)


def _json(value: Any) -> str:
    # The text hashed and compared: JSON tells true from 1 where Python's == does not.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class _Wanted:
    """What a revision must hold to serve a request: its canonical content and its protect tags, as JSON."""

    content: str
    protected: str
    protect_tags: tuple[str, ...]
    digest: str

    @classmethod
    def of(cls, args: Mapping[str, Any], protect_tags: Collection[str]) -> _Wanted:
        keys = (protect_tags,) if isinstance(protect_tags, str) else tuple(protect_tags)  # one key, not its letters
        content, protected = canonical(args), protection(args.get("tags"), keys)
        hashed = _json({**content, "tags": protected} if protected else content)  # tags: never a content key
        digest = "sha256:" + hashlib.sha256(hashed.encode()).hexdigest()
        return cls(_json(content), _json(protected), keys, digest)

    def verdict(self, answer: Mapping[str, Any] | None) -> Verdict:
        """What a DescribeTaskDefinition answer (with tags; None: the revision is gone) says of its revision."""
        if answer is None or answer["taskDefinition"].get("status") != "ACTIVE":
            return Verdict.GONE
        if _json(canonical(answer["taskDefinition"])) != self.content:
            return Verdict.OTHER_CONTENT
        if _json(protection(answer.get("tags"), self.protect_tags)) != self.protected:
            return Verdict.OTHER_PROTECTION
        return Verdict.USABLE


def _without_absent(value: Any, level: str) -> Any:
    """Without the values that ECS answers for a field left out at this level (`_AS_ABSENT`)."""
    if not isinstance(value, dict):
        return value
    absent = _AS_ABSENT[level]
    return {k: v for k, v in value.items() if not (k in absent and _json(v) == _json(absent[k]))}


def _container(definition: Any, mode: str) -> Any:
    if not isinstance(definition, dict):
        return definition
    c = _without_absent(definition, "container")
    if "logConfiguration" in c:
        c["logConfiguration"] = _without_absent(c["logConfiguration"], "logConfiguration")
    # "If this parameter is omitted, a container is assumed to be essential." (ContainerDefinition, essential)
    c.setdefault("essential", True)
    # "Null, zero, and CPU values of 1 are passed to Docker as 2" (Linux), "A null or zero CPU value is passed to
    # Docker as 0" (Windows): an omitted cpu is 0 (ContainerDefinition, cpu). ECS answers "cpu": 0.
    c.setdefault("cpu", 0)
    if "portMappings" in c:
        c["portMappings"] = [_port(p, mode) for p in c["portMappings"]]
    for key, name in (("environment", "name"), ("secrets", "name"), ("ulimits", "name"),
                      ("systemControls", "namespace"), ("dependsOn", "containerName"),
                      ("resourceRequirements", "type")):  # fmt: skip
        if key in c:
            c[key] = _by(c[key], name)
    health = c.get("healthCheck")
    if isinstance(health, dict) and "command" in health:
        # "The default value is 30 seconds." / "The default value is 5." / "The default value is 3." (HealthCheck)
        c["healthCheck"] = {"interval": 30, "timeout": 5, "retries": 3, **health}
    linux = c.get("linuxParameters")
    caps = linux.get("capabilities") if isinstance(linux, dict) else None
    if isinstance(caps, dict):  # capabilities added or dropped are sets
        c["linuxParameters"] = {**c["linuxParameters"], "capabilities": {k: _set_of(v) for k, v in caps.items()}}
    return c


def _port(mapping: Any, mode: str) -> Any:
    if not isinstance(mapping, dict):
        return mapping
    p = dict(mapping)
    # "Valid values are tcp and udp (case-sensitive). The default is tcp." (PortMapping, protocol)
    p.setdefault("protocol", "tcp")
    # "If you use containers in a task with the awsvpc or host network mode, the hostPort can either be left blank
    # or set to the same value as the containerPort." ... "[bridge:] omit the hostPort (or set it to 0)".
    if mode in ("awsvpc", "host") and "containerPort" in p:
        p.setdefault("hostPort", p["containerPort"])
    elif mode == "bridge" and p.get("hostPort") == 0:
        del p["hostPort"]
    return p


def _volume(volume: Any) -> Any:
    efs = volume.get("efsVolumeConfiguration") if isinstance(volume, dict) else None
    if not isinstance(efs, dict):
        return volume
    # "Specifying / will have the same effect as omitting this parameter." (rootDirectory) and "If this parameter
    # is omitted, the default value of DISABLED is used." (transitEncryption) (EFSVolumeConfiguration)
    return {**volume, "efsVolumeConfiguration": {"rootDirectory": "/", "transitEncryption": "DISABLED", **efs}}


def _units(value: Any, unit: str, per_unit: int) -> Any:
    text = str(value).strip()
    if text.isdigit():
        return str(int(text))
    found = re.fullmatch(rf"(\d+(?:\.\d*)?|\.\d+)\s*{unit}", text, re.IGNORECASE)
    if found:
        try:
            amount = Decimal(found[1]) * per_unit
        except InvalidOperation:  # pragma: no cover - the pattern only lets decimals through
            return text
        if amount == amount.to_integral_value():
            return str(int(amount))
    return text  # something ECS would refuse: hashed as written


def _by(items: Any, key: str) -> Any:
    """Sorted by `key` when every item has a distinct one; otherwise as given (with duplicate names, which
    entry wins may depend on the order)."""
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get(key), str) for i in items):
        return items
    names = [i[key] for i in items]
    return sorted(items, key=lambda i: str(i[key])) if len(set(names)) == len(names) else items


def _set_of(items: Any) -> Any:
    if not isinstance(items, list):
        return items
    unique = {json.dumps(i, sort_keys=True): i for i in items}
    return [unique[k] for k in sorted(unique)]


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
        outcome = store.claim(digest, family, stale_arn=stale)
        if isinstance(outcome, Record):  # someone else registered it while this caller waited
            record, joined = outcome, True
            continue
        registered = _register_claimed(ecs_client, args, store, outcome, stale, clock(), who, backoff or Backoff())
        if isinstance(registered, Reused):
            return registered
        record, joined = registered, True  # another registration finished first: checked as any other
    raise ReuseError(f"{family} {digest}: no stable revision after {_ROUNDS} rounds")


def _register_claimed(
    ecs: Any, args: Mapping[str, Any], store: Store, claim: Claim, stale: str | None, now: datetime, who: str,
    backoff: Backoff,
) -> Reused | Record:  # fmt: skip
    """The revision registered under the claim, or the record of another registration that finished first."""
    try:
        arn, revision = register(ecs, args, claim.hash, backoff)
    except BaseException:
        store.release(claim)
        raise
    how = How.REPLACED if stale else How.REGISTERED
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
            td = ecs.register_task_definition(**request)["taskDefinition"]
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
    try:
        answer = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ClientException":  # deleted: "Unable to describe ..."
            return None
        raise
    return {"taskDefinition": answer["taskDefinition"], "tags": answer.get("tags", [])}


@functools.cache
def default_who() -> str:
    """user@host, for the audit trail."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container without a passwd entry
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
