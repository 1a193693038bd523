"""Register-or-reuse: one ACTIVE revision per task-definition content, found again by a content hash.

    store = DynamoStore(boto3.client("dynamodb", config=CLIENT_CONFIG), "tdgc-reuse")   # or TagStore(ecs)
    found = register_or_reuse(ecs, json.loads(Path("td.json").read_text()), store)
    found.arn, found.reused, found.how

An orchestrator that registers a revision per run marches its family toward ECS's 1,000,000-revision limit
even when nothing changed. Here the request is hashed (`content_hash`), the store says which revision holds
that content, and that revision is returned if it is still ACTIVE; only otherwise is one registered, tagged
`tdgc:content-hash` so that the content can be recognised on the revision itself.

The hash is taken over `canonical(args)`, the request as ECS will hold it, so that two requests meaning the
same thing hash the same, and so does the DescribeTaskDefinition answer for the revision a request
registered:
- only RegisterTaskDefinition's fields count (botocore's model of ECS is the authority); the read-only fields
  of a description (taskDefinitionArn, revision, status, registeredAt, ...) are dropped, and so are `tags`:
  they are not content, and the hash itself travels as one;
- empty values (None, "", [], {}) are dropped: ECS answers [] for the lists a request left out;
- the defaults ECS documents are filled in where a field is missing (each quoted below from the API
  reference, the text botocore's model carries);
- task-level cpu and memory become the numbers ECS stores ("0.25 vCPU" -> "256", "2 GB" -> "2048");
- lists that ECS treats as sets are sorted (environment, secrets, ulimits, ...), when their names are unique.
Where a normalisation is in doubt it is left out: a missed equality costs one more revision, a wrong one
would run different content. The order of containers, commands, DNS servers, links and mount points is
kept.
"""

from __future__ import annotations

import copy
import functools
import getpass
import hashlib
import json
import re
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import botocore.exceptions
import botocore.session
import structlog

from tdgc.usage_store import HASH_TAG, Backoff, Claim, Record, Store

log = structlog.get_logger("tdgc.reuse")

HOW = ("found", "joined", "registered", "replaced")  # the values of Reused.how
# ECS's answer when registrations in one family overlap; a ClientException, so botocore does not retry it.
TOO_MANY = "Too many concurrent attempts"
_ROUNDS = 4  # lookups a call may need: found stale, claimed, lost the claim to a registration, ...


@dataclass(frozen=True)
class Reused:
    """The revision to run. `how`: "found" (the store's revision, still ACTIVE), "joined" (another caller
    registered it a moment ago, while this one waited), "registered" (new content), "replaced" (the store's
    revision was deregistered or deleted since: registered again, the record repaired)."""

    arn: str
    family: str
    revision: int
    hash: str
    reused: bool
    how: str


class ReuseError(Exception):
    """register_or_reuse could not settle on a revision (the store kept changing under it)."""


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


def canonical(args: Mapping[str, Any]) -> dict[str, Any]:
    """The content of a RegisterTaskDefinition request (or of a DescribeTaskDefinition `taskDefinition`), as
    ECS holds it: the same intent gives the same value. See the module docstring for the rules."""
    fields = register_fields() - {"tags"}
    unknown = set(args) - register_fields() - described_fields()
    if unknown:  # a typo would otherwise hash as if absent, and could match content it does not describe
        raise ValueError(f"not task-definition fields: {', '.join(sorted(unknown))}")
    td: dict[str, Any] = _prune(copy.deepcopy({k: v for k, v in args.items() if k in fields}))
    # "If no network mode is specified, the default is bridge." (RegisterTaskDefinition, networkMode)
    mode = td.setdefault("networkMode", "bridge")
    # "String values are converted to an integer indicating the CPU units [the MiB] when the task definition is
    # registered." (RegisterTaskDefinition, cpu and memory): "1 vCPU" or "1 vcpu", "1GB" or "1 GB".
    if "cpu" in td:
        td["cpu"] = _units(td["cpu"], "vcpu", 1024)
    if "memory" in td:
        td["memory"] = _units(td["memory"], "gb", 1024)
    if "requiresCompatibilities" in td:
        td["requiresCompatibilities"] = sorted(set(td["requiresCompatibilities"]))
    if "containerDefinitions" in td:
        td["containerDefinitions"] = [_container(c, mode) for c in td["containerDefinitions"]]
    if "volumes" in td:
        td["volumes"] = _by(list(map(_volume, td["volumes"])), "name")
    if "placementConstraints" in td:
        td["placementConstraints"] = _set_of(td["placementConstraints"])
    if "inferenceAccelerators" in td:
        td["inferenceAccelerators"] = _by(td["inferenceAccelerators"], "deviceName")
    return td


def content_hash(args: Mapping[str, Any]) -> str:
    """The hash: "sha256:" and the hex digest of the canonical content as JSON (sorted keys, no spaces)."""
    text = json.dumps(canonical(args), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _container(definition: Any, mode: str) -> Any:
    if not isinstance(definition, dict):
        return definition
    c = dict(definition)
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
    caps = (c.get("linuxParameters") or {}).get("capabilities")
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


def _prune(value: Any) -> Any:
    """Without None, "", [] and {} as values of a key, at any depth. List items are kept: ["", "x"] as a
    command is not ["x"]."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v is not None and v != "" and v != [] and v != {}}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


# ---- register or reuse -------------------------------------------------------------------------------------


def register_or_reuse(
    ecs_client: Any,
    args: Mapping[str, Any],
    store: Store,
    *,
    now: datetime | None = None,
    who: str | None = None,
    backoff: Backoff | None = None,
) -> Reused:
    """The ARN of an ACTIVE revision with this content: the store's, or one registered now.

    `args`: RegisterTaskDefinition's arguments (a DescribeTaskDefinition `taskDefinition` works too; its
    read-only fields are not sent). The caller's tags are sent with `tdgc:content-hash` added. `who` goes to
    the store's audit trail (default: user@host). `backoff` paces the retries of ECS's "Too many concurrent
    attempts" answer; throttles are botocore's to retry (tdgc.aws.CLIENT_CONFIG's standard mode).
    """
    family = args.get("family")
    if not isinstance(family, str) or not family:
        raise ValueError("a task definition needs a family")
    digest = content_hash(args)
    who = who or default_who()

    def clock() -> datetime:
        return now or datetime.now(UTC)

    record = store.lookup(digest, family)
    joined = False
    stale: str | None = None
    for _ in range(_ROUNDS):
        if record is not None:
            if record.seen_active or _active(ecs_client, record.arn, digest):
                how = "joined" if joined else "found"
                used = store.record_use(record, now=clock(), who=who, how=how)
                return Reused(used.arn, family, used.revision, digest, True, how)
            stale = record.arn
        outcome = store.claim(digest, family, stale_arn=stale)
        if isinstance(outcome, Record):  # someone else registered it while this caller waited
            record, joined = outcome, True
            continue
        return _register_claimed(ecs_client, args, store, outcome, stale, clock(), who, backoff or Backoff())
    raise ReuseError(f"{family} {digest}: no stable revision after {_ROUNDS} rounds")


def _register_claimed(
    ecs: Any, args: Mapping[str, Any], store: Store, claim: Claim, stale: str | None, now: datetime, who: str,
    backoff: Backoff,
) -> Reused:  # fmt: skip
    try:
        arn, revision = register(ecs, args, claim.hash, backoff)
    except BaseException:
        store.release(claim)
        raise
    how = "replaced" if stale else "registered"
    record = store.fill(claim, arn, revision, now=now, who=who, how=how)
    if record.arn != arn:  # our lease was taken over and the other registration finished first: use theirs
        log.warning("reuse.duplicate", arn=arn, kept=record.arn, reason="claim taken over while registering")
        used = store.record_use(record, now=now, who=who, how="joined")
        return Reused(used.arn, claim.family, used.revision, claim.hash, True, "joined")
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


def _active(ecs: Any, arn: str, digest: str) -> bool:
    """Whether the revision can still be run with this content: ACTIVE, and not tagged with another hash."""
    try:
        answer = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ClientException":  # deleted: "Unable to describe ..."
            return False
        raise
    if answer["taskDefinition"].get("status") != "ACTIVE":
        return False
    tag = next((t.get("value") for t in answer.get("tags", []) if t.get("key") == HASH_TAG), None)
    return tag in (None, digest)


@functools.cache
def default_who() -> str:
    """user@host, for the audit trail."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container without a passwd entry
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
