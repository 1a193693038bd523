"""The canonical form of a task definition and its content hash (see tdgc.reuse.register for why)."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

import botocore.session

# The tag keys whose values a reused revision must carry as the request does: the key the collector's default
# policy protects by (tdgc.policy.Rule.protect_tags), so that content asked to be kept is kept.


class Verdict(Enum):
    """What a store's revision turned out to be, once described, for the request at hand."""

    USABLE = "ACTIVE, with this content and these protect tags"
    GONE = "deregistered or deleted"
    OTHER_CONTENT = "holds other content"
    OTHER_PROTECTION = "carries other protect tags"


# What ECS is known to answer for a field the request left out, per level of the document: botocore's own
# examples of ECS (examples-1.json: DescribeTaskDefinition "hello_world:8", RegisterTaskDefinition "sleep360")
# answer [] for a container's environment, mountPoints, portMappings and volumesFrom and for the task's volumes,
# and drop the taskRoleArn "" they were sent; real answers (tests/sim/test_reuse.py WEB_DESCRIBED) add
# placementConstraints, a container's systemControls and a log configuration's secretOptions as []. So these
# values, at these levels only, are the same content as no value at all; every other empty value is content.
_AS_ABSENT: Mapping[str, Mapping[str, Any]] = {
    "task": {"volumes": [], "placementConstraints": [], "taskRoleArn": ""},
    "container": {"environment": [], "mountPoints": [], "portMappings": [], "volumesFrom": [], "systemControls": []},
    "logConfiguration": {"secretOptions": []},
}


PROTECT_TAGS = ("tdgc:keep",)


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
    for key, name in (
        ("environment", "name"),
        ("secrets", "name"),
        ("ulimits", "name"),
        ("systemControls", "namespace"),
        ("dependsOn", "containerName"),
        ("resourceRequirements", "type"),
    ):
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
