"""A local ECS for tests, the demo and the benchmark: moto, plus the fidelity moto lacks (DESIGN §6).

On top of moto's ECS it adds: paging (`maxResults` 1 to 100, `nextToken`) and `sort` on the list calls, the
family `status` filter, `registeredAt` / `registeredBy` / `deregisteredAt` stamped from the (freezable)
clock, revision numbers that are never reused, DELETE_IN_PROGRESS revisions that stay listable and
describable, DescribeTaskDefinition by family name resolving to the newest ACTIVE revision, Step Functions'
ListStateMachineVersions (which moto lacks), AWS's per-category throttling when asked, fault injection (a
throttle, a 5xx, a dropped connection, a per-item delete failure) and a count of every API call.

    with Simulator() as sim:
        sim.seed("web", registered_at=...)
        boto3.client("ecs", region_name=sim.region).list_task_definitions()
        assert sim.mutating_calls() == 0

Only one Simulator may be active at a time; it patches moto's classes for as long as it is entered.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import json
import logging
import os
import threading
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import botocore.exceptions
from moto import mock_aws
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, BaseResponse
from moto.ecs.exceptions import EcsClientException, InvalidParameterException
from moto.ecs.models import EC2ContainerServiceBackend, TaskDefinition, ecs_backends
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.stepfunctions.responses import StepFunctionResponse
from moto.utilities.utils import get_partition

from tdgc.pacing import AWS_BUCKETS, CATEGORY

DEFAULT_ACCOUNT = "123456789012"
READ_PREFIXES = ("List", "Describe", "Get", "Head", "Scan", "Query", "BatchGet")
SESSION_OPERATIONS = {"AssumeRole", "GetCallerIdentity"}
_ACTIVE: Simulator | None = None
_BUCKET_LOCK = threading.Lock()


@dataclass
class _Fault:
    code: str
    message: str
    status: int
    times: int  # how many more calls it hits; -1: until cleared


class _Error(ServiceException):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(code, message)
        self.status = status


def _now() -> datetime:
    return datetime.now(UTC)


def _sim() -> Simulator:
    if _ACTIVE is None:  # pragma: no cover - the patches only exist while a Simulator is active
        raise RuntimeError("no tdgc Simulator is active")
    return _ACTIVE


# What could lead a test or the demo to a real AWS account: credentials, profiles, endpoints, metadata.
REAL_AWS_ENVIRONMENT = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
)  # fmt: skip


def without_real_aws(empty_dir: str | os.PathLike[str]) -> dict[str, str | None]:
    """The environment changes that keep boto3 from finding real credentials, config or instance metadata
    (None: unset): for test suites to apply before the simulator starts."""
    changes: dict[str, str | None] = dict.fromkeys(REAL_AWS_ENVIRONMENT)
    changes.update({
        "AWS_CONFIG_FILE": os.path.join(empty_dir, "config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(empty_dir, "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    })  # fmt: skip
    return changes


@contextmanager
def serve() -> Iterator[str]:
    """moto's backends over HTTP on loopback (for a subprocess, Terraform); yields the endpoint URL."""
    from moto.server import ThreadedMotoServer  # needs moto[server]

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class Simulator:
    """The simulated account. Enter it to start moto with tdgc's additions."""

    def __init__(self, region: str = "us-east-1", account_id: str = DEFAULT_ACCOUNT) -> None:
        self.region = region
        self.account_id = account_id
        self.calls: Counter[str] = Counter()
        # Every mutating request (operation, parameters), in order, including those answered with an error.
        self.mutations: list[tuple[str, dict[str, Any]]] = []
        self.sessions: list[tuple[str, dict[str, Any]]] = []  # AssumeRole requests, with their parameters
        self._faults: dict[str, list[_Fault]] = defaultdict(list)
        self._delete_failures: dict[str, str] = {}
        self._after: dict[str, list[Callable[[], None]]] = defaultdict(list)
        self._high_water: dict[tuple[str, str, str], int] = {}  # (account, region, family) -> revision
        # (account, region, family, status) -> its revision numbers, ascending: paging in O(page), not O(family)
        self._index: dict[tuple[str, str, str, str], list[int]] = {}
        self._stack: ExitStack | None = None
        self._buckets: dict[tuple[str, str, str], list[float]] | None = None  # throttling, when asked
        self._time_scale = 1.0
        self._bucket_clock: Callable[[], float] = time.monotonic
        self.throttled: Counter[str] = Counter()  # ThrottlingExceptions the buckets gave, by operation

    # ---- lifecycle ----

    def __enter__(self) -> Simulator:
        global _ACTIVE
        if _ACTIVE is not None:
            raise RuntimeError("a tdgc Simulator is already active")
        stack = ExitStack()
        stack.enter_context(mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": self.region}))
        stack.enter_context(mock_aws())
        for cls, name, new in _PATCHES:
            stack.enter_context(mock.patch.object(cls, name, new, create=True))
        self._stack = stack
        _ACTIVE = self
        return self

    def __exit__(self, *exc: object) -> None:
        global _ACTIVE
        _ACTIVE = None
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def serve(self) -> contextlib.AbstractContextManager[str]:
        """Serve this simulated account over HTTP on loopback (for a subprocess); yields the endpoint URL."""
        return serve()

    def reset(self) -> None:
        """Forget every task definition, call and fault, as a fresh account (for tests that loop)."""
        for account in ecs_backends.values():
            for backend in account.values():
                backend.task_definitions.clear()
        self._high_water.clear()
        self._index.clear()
        self.calls.clear()
        self.mutations.clear()
        self.clear_faults()

    def backend(self, region: str | None = None, account: str | None = None) -> EC2ContainerServiceBackend:
        return ecs_backends[account or self.account_id][region or self.region]

    # ---- calls and faults ----

    def mutating_calls(self) -> int:
        """API calls of any service that are not reads (READ_PREFIXES: List, Describe, Get, Scan, ...)."""
        return len(self.mutations)

    def count(self, operation: str) -> int:
        return sum(n for op, n in self.calls.items() if op.split(":")[-1] == operation)

    def inject(self, operation: str, code: str = "ThrottlingException", *, times: int = 1,
               message: str = "Rate exceeded", status: int = 400) -> None:  # fmt: skip
        """Make the next `times` calls of `operation` fail with `code` (times=-1: until `clear_faults`)."""
        self._faults[operation].append(_Fault(code, message, status, times))

    def throttle(self, time_scale: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        """Throttle as AWS does: a token bucket per category, account and Region (DESIGN §2).

        `time_scale` speeds the buckets' refill up, so that a benchmark takes seconds rather than hours
        (10: ten times AWS's sustained rates, the same bursts).
        """
        self._buckets = {}
        self._time_scale = time_scale
        self._bucket_clock = clock

    def _throttles(self, service: str, operation: str, account: str, region: str) -> bool:
        """Whether this call finds its bucket empty (and so gets a ThrottlingException)."""
        category = CATEGORY.get(operation) if service == "ecs" else None
        if self._buckets is None or category is None:
            return False
        burst, rate = AWS_BUCKETS[category]
        now = self._bucket_clock()
        with _BUCKET_LOCK:
            tokens, stamp = self._buckets.setdefault((account, region, category), [burst, now])
            tokens = min(burst, tokens + (now - stamp) * rate * self._time_scale)
            empty = tokens < 1
            self._buckets[(account, region, category)] = [tokens if empty else tokens - 1, now]
        if empty:
            self.throttled[operation] += 1
        return empty

    def drop_connection(self, operation: str, *, times: int = 1) -> None:
        """The next `times` calls of `operation` take effect, but the client sees the connection drop."""
        self._faults[operation].append(_Fault("ConnectionDropped", "", 0, times))

    def fail_delete(self, arn: str, reason: str = "The specified task definition is in use.") -> None:
        """Make DeleteTaskDefinitions report `arn` in `failures` (the rest of the batch goes through)."""
        self._delete_failures[arn] = reason

    def after(self, operation: str, action: Callable[[], None]) -> None:
        """Run `action` once, right after the next call of `operation` took effect: someone else's change."""
        self._after[operation].append(action)

    def clear_faults(self) -> None:
        self._faults.clear()
        self._delete_failures.clear()
        self._after.clear()

    def numbers(self, backend: EC2ContainerServiceBackend, family: str, status: str) -> list[int]:
        key = (backend.account_id, backend.region_name, family, status)
        if key not in self._index:
            revisions = backend.task_definitions.get(family, {})
            self._index[key] = sorted(n for n, td in revisions.items() if td.status == status)
        return self._index[key]

    def _changed(self, backend: EC2ContainerServiceBackend, family: str) -> None:
        for status in ("ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS"):
            self._index.pop((backend.account_id, backend.region_name, family, status), None)

    def _take_fault(self, operation: str) -> _Fault | None:
        queue = self._faults.get(operation)
        while queue:
            fault = queue[0]
            if fault.times == 0:
                queue.pop(0)
                continue
            if fault.times > 0:
                fault.times -= 1
            return fault
        return None

    # ---- seeding ----

    def seed(
        self,
        family: str,
        *,
        registered_at: datetime | None,
        deregistered_at: datetime | None = None,
        status: str = "ACTIVE",
        tags: Mapping[str, str] | None = None,
        image: str = "public.ecr.aws/docker/library/busybox:latest",
        region: str | None = None,
        account: str | None = None,
    ) -> str:
        """Add one revision straight into the backend (fast: no HTTP), backdated as given.

        `registered_at=None` makes an old revision without timestamps, as ECS reports some. Within a family
        `registeredAt` must not decrease as revisions are added, as in ECS.
        """
        backend = self.backend(region, account)
        td: Any = backend.register_task_definition(  # moto's model plus the attributes ECS has and moto lacks
            family=family,
            container_definitions=[{"name": "main", "image": image, "memory": 512, "essential": True}],
            tags=[{"key": k, "value": v} for k, v in (tags or {}).items()],
        )
        previous = backend.task_definitions[family].get(td.revision - 1)
        prev_at = getattr(previous, "registered_at", None) if previous else None
        if registered_at and prev_at and registered_at < prev_at:
            raise ValueError(f"{family}: registeredAt must not decrease with the revision number")
        td.registered_at = registered_at
        if registered_at is None:
            td.registered_by = None
        if status != "ACTIVE":
            td.status = status
            td.deregistered_at = deregistered_at if registered_at is not None else None
            self._changed(backend, family)
        return str(td.arn)

    def finish_deletes(self) -> int:
        """Let every DELETE_IN_PROGRESS revision go, as ECS does once nothing references it."""
        gone = 0
        for account in ecs_backends.values():
            for backend in account.values():
                for revisions in backend.task_definitions.values():
                    for number in [n for n, td in revisions.items() if td.status == "DELETE_IN_PROGRESS"]:
                        del revisions[number]
                        gone += 1
        self._index.clear()
        return gone

    def revisions(self, status: str | None = None, region: str | None = None,
                  account: str | None = None) -> Iterator[TaskDefinition]:  # fmt: skip
        for revisions in self.backend(region, account).task_definitions.values():
            for td in revisions.values():
                if status is None or td.status == status:
                    yield td


# ---- the patches -----------------------------------------------------------------------------------------

_orig_call_action = BaseResponse.call_action
_orig_register = EC2ContainerServiceBackend.register_task_definition
_orig_deregister = EC2ContainerServiceBackend.deregister_task_definition


def _call_action(self: BaseResponse) -> Any:
    sim = _sim()
    operation = self._get_action()
    sim.calls[f"{self.service_name}:{operation}"] += 1
    if operation in SESSION_OPERATIONS:  # credentials, not a change to the account
        sim.sessions.append((operation, dict(self._get_params())))
    elif not operation.startswith(READ_PREFIXES):
        sim.mutations.append((operation, dict(self._get_params())))
    fault = sim._take_fault(operation)
    if fault is None and sim._throttles(self.service_name or "", operation, self.current_account, self.region):
        fault = _Fault("ThrottlingException", "Rate exceeded", 400, 1)
    if fault is not None and fault.code == "ConnectionDropped":
        _orig_call_action(self)  # the server acts; the answer never arrives
        raise botocore.exceptions.ConnectionClosedError(endpoint_url=f"https://{self.service_name}.simulated")
    if fault is not None:
        with warnings.catch_warnings():  # moto warns that ECS's model has no ThrottlingException shape
            warnings.simplefilter("ignore")
            _, headers, body = self.serialized(ActionResult(_Error(fault.code, fault.message, fault.status)))
        return fault.status, headers, body
    answer = _orig_call_action(self)
    for action in sim._after.pop(operation, []):
        action()
    return answer


def _last_revision(self: EC2ContainerServiceBackend, family: str) -> int | None:
    """The family's highest revision number ever, in O(1): moto takes max() of them all, per register."""
    known = _sim()._high_water.get((self.account_id, self.region_name, family))
    if known is not None:
        return known
    revisions = self.task_definitions.get(family)
    return max(revisions) if revisions else None


def _register(self: EC2ContainerServiceBackend, family: str, *args: Any, **kwargs: Any) -> TaskDefinition:
    sim = _sim()
    td: Any = _orig_register(self, family, *args, **kwargs)
    key = (self.account_id, self.region_name, family)
    floor = sim._high_water.get(key, 0)
    if td.revision <= floor:  # moto reuses the number of a deleted newest revision; ECS never does
        del self.task_definitions[family][td.revision]
        td.revision = floor + 1
        td.arn = td.arn.rsplit(":", 1)[0] + f":{td.revision}"
        self.task_definitions[family][td.revision] = td
    sim._high_water[key] = td.revision
    sim._changed(self, family)
    td.registered_at = _now()
    td.registered_by = f"arn:aws:iam::{self.account_id}:root"
    td.deregistered_at = None
    return td  # type: ignore[no-any-return]


def _deregister(self: EC2ContainerServiceBackend, task_definition_str: str) -> TaskDefinition:
    family_rev = task_definition_str.split("/")[-1]
    family, _, rev = family_rev.partition(":")
    existing = self.task_definitions.get(family, {}).get(int(rev)) if rev.isdigit() else None
    if existing is not None and existing.status == "DELETE_IN_PROGRESS":
        raise EcsClientException("The specified task definition is already being deleted.")
    td: Any = _orig_deregister(self, task_definition_str)
    _sim()._changed(self, td.family)
    if getattr(td, "deregistered_at", None) is None:
        td.deregistered_at = _now()
    return td  # type: ignore[no-any-return]


def _describe(self: EC2ContainerServiceBackend, task_definition_str: str) -> TaskDefinition:
    name = task_definition_str.split("/")[-1]
    family, _, rev = name.partition(":")
    revisions = self.task_definitions.get(family, {})
    if rev:
        td = revisions.get(int(rev)) if rev.isdigit() else None
    else:  # a family name alone means its newest ACTIVE revision
        active = [n for n, t in revisions.items() if t.status == "ACTIVE"]
        td = revisions[max(active)] if active else None
    if td is None:
        raise EcsClientException("Unable to describe task definition.")
    return td


def _delete(self: EC2ContainerServiceBackend, task_definitions: list[str]) -> tuple[list[Any], list[Any]]:
    from moto.ecs.models import DeleteTaskDefinitionFailure

    sim = _sim()
    if not task_definitions:
        raise InvalidParameterException("size of TaskDefinition references list must be greater than 0")
    if len(task_definitions) > 10:
        raise InvalidParameterException("Size of TaskDefinition references list cannot exceed 10")
    deleted, failures = [], []

    def fail(ref: str, reason: str) -> None:
        failures.append(DeleteTaskDefinitionFailure(reason, ref, self.account_id, self.region_name))

    for ref in task_definitions:
        family, _, rev = ref.split("/")[-1].partition(":")
        td = self.task_definitions.get(family, {}).get(int(rev)) if rev.isdigit() else None
        if td is None:
            fail(ref, "The specified task definition does not exist. Specify a valid account, family, "
                      "revision and try again.")  # fmt: skip
        elif td.status == "ACTIVE":
            fail(ref, "The specified task definition is still in ACTIVE status. Please deregister the "
                      "target and try again.")  # fmt: skip
        elif td.arn in sim._delete_failures:
            fail(ref, sim._delete_failures[td.arn])
        else:
            td.status = "DELETE_IN_PROGRESS"
            sim._changed(self, family)
            deleted.append(td)
    return deleted, failures


# ---- paging for the two list calls ----


def _max_results(params: dict[str, Any]) -> int:
    max_results = params.get("maxResults")
    if max_results is None:
        return 100
    if not isinstance(max_results, int) or not 1 <= max_results <= 100:
        raise InvalidParameterException("maxResults must be between 1 and 100.")
    return max_results


def _token_after(params: dict[str, Any], query: str) -> Any:
    """The key a nextToken says the last page ended at (None without one); a token from elsewhere is refused."""
    token = params.get("nextToken")
    if not token:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        if decoded["q"] != query:
            raise ValueError("token from another query")
        after = decoded["after"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidParameterException("The nextToken is invalid.") from None
    return tuple(after) if isinstance(after, list) else after


def _revision_after(params: dict[str, Any], query: str, family: str | None = None) -> tuple[str, int] | None:
    """The (family, revision) a list_task_definitions token says the last page ended at; None without one."""
    key = _token_after(params, query)
    if key is None:
        return None
    if (not isinstance(key, tuple) or len(key) != 2 or not isinstance(key[0], str) or not isinstance(key[1], int)
            or (family is not None and key[0] != family)):  # fmt: skip
        raise InvalidParameterException("The nextToken is invalid.")
    return key


def _token(query: str, after: Any) -> str:
    payload = {"q": query, "after": list(after) if isinstance(after, tuple) else after}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def _page(items: list[Any], key_of: Any, params: dict[str, Any], query: str) -> tuple[list[Any], str | None]:
    """Key-based pages: a token names the last item returned, so mutations between pages skip nothing."""
    max_results = _max_results(params)
    after = _token_after(params, query)
    start = 0
    if after is not None:
        descending = params.get("sort") == "DESC"
        try:
            start = next((n for n, i in enumerate(items) if _after(key_of(i), after, descending)), len(items))
        except TypeError:
            raise InvalidParameterException("The nextToken is invalid.") from None
    page = items[start : start + max_results]
    more = start + max_results < len(items)
    return page, _token(query, key_of(page[-1])) if more else None


def _after(key: Any, after: Any, descending: bool) -> bool:
    return bool(key < after) if descending else bool(key > after)


def _list_task_definitions(self: EC2ContainerServiceResponse) -> ActionResult:
    params = self._get_params()
    backend = self.ecs_backend
    status = params.get("status", "ACTIVE")
    if status not in ("ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS"):
        raise InvalidParameterException(f"Invalid status: {status}")
    sort = params.get("sort", "ASC")
    if sort not in ("ASC", "DESC"):
        raise InvalidParameterException(f"Invalid sort: {sort}")
    family = params.get("familyPrefix")
    if family:
        return _list_one_family(backend, family, status, sort, params)
    return _list_account(backend, status, sort, params)


def _list_account(backend: Any, status: str, sort: str, params: dict[str, Any]) -> ActionResult:
    """A page of the whole account (families lexicographically, then revisions), from the families' indexes."""
    max_results = _max_results(params)
    query = f"None|{status}|{sort}"
    key = _revision_after(params, query)
    descending = sort == "DESC"
    families = sorted(backend.task_definitions)
    if key is None:
        order = families[::-1] if descending else families
    elif descending:
        order = families[: bisect.bisect_right(families, key[0])][::-1]
    else:
        order = families[bisect.bisect_left(families, key[0]) :]
    page: list[tuple[str, int]] = []
    more = False
    for fam in order:
        numbers = _sim().numbers(backend, fam, status)
        start, end = 0, len(numbers)  # what is left of this family: indexes, no copy (a family may be huge)
        if key is not None and fam == key[0]:
            if descending:
                end = bisect.bisect_left(numbers, key[1])
            else:
                start = bisect.bisect_right(numbers, key[1])
        if len(page) == max_results:
            more = start < end
            if more:
                break
            continue
        room = max_results - len(page)
        taken = numbers[max(start, end - room) : end][::-1] if descending else numbers[start : start + room]
        page += [(fam, n) for n in taken]
        more = len(taken) < end - start
        if more:
            break
    region, account = backend.region_name, backend.account_id
    arn = f"arn:{get_partition(region)}:ecs:{region}:{account}:task-definition/"
    result: dict[str, Any] = {"taskDefinitionArns": [f"{arn}{fam}:{n}" for fam, n in page]}
    if more:
        result["nextToken"] = _token(query, page[-1])
    return ActionResult(result)


def _list_one_family(backend: Any, family: str, status: str, sort: str, params: dict[str, Any]) -> ActionResult:
    """One family's page by bisecting its index: the same answers and tokens as _page, in O(page)."""
    numbers = _sim().numbers(backend, family, status)
    max_results = _max_results(params)
    query = f"{family}|{status}|{sort}"
    key = _revision_after(params, query, family)
    after = key[1] if key is not None else None
    if sort == "DESC":
        end = len(numbers) if after is None else bisect.bisect_left(numbers, after)
        page = numbers[max(0, end - max_results) : end][::-1]
        more = end - max_results > 0
    else:
        start = 0 if after is None else bisect.bisect_right(numbers, after)
        page = numbers[start : start + max_results]
        more = start + max_results < len(numbers)
    region, account = backend.region_name, backend.account_id
    prefix = f"arn:{get_partition(region)}:ecs:{region}:{account}:task-definition/{family}:"
    result: dict[str, Any] = {"taskDefinitionArns": [f"{prefix}{n}" for n in page]}
    if more:
        result["nextToken"] = _token(query, (family, page[-1]))
    return ActionResult(result)


def _list_families(self: EC2ContainerServiceResponse) -> ActionResult:
    params = self._get_params()
    backend = self.ecs_backend
    prefix = params.get("familyPrefix") or ""
    status = params.get("status", "ALL")
    if status not in ("ACTIVE", "INACTIVE", "ALL"):
        raise InvalidParameterException(f"Invalid status: {status}")
    names = []
    for name in sorted(backend.task_definitions):
        statuses = {td.status for td in backend.task_definitions[name].values()} - {"DELETE_IN_PROGRESS"}
        if not name.startswith(prefix) or not statuses:
            continue
        has_active = "ACTIVE" in statuses
        if status == "ALL" or (status == "ACTIVE") == has_active:
            names.append(name)
    page, token = _page(names, lambda n: n, params, f"{prefix}|{status}")
    result: dict[str, Any] = {"families": page}
    if token:
        result["nextToken"] = token
    return ActionResult(result)


def _list_state_machine_versions(self: StepFunctionResponse) -> ActionResult:
    machine = self.stepfunction_backend.describe_state_machine(self._get_param("stateMachineArn"))
    versions = sorted(machine.versions.values(), key=lambda v: -v.version)
    return ActionResult({
        "stateMachineVersions": [{"stateMachineVersionArn": v.arn, "creationDate": v.creation_date} for v in versions]
    })  # fmt: skip


_PATCHES: list[tuple[type, str, Any]] = [
    (BaseResponse, "call_action", _call_action),
    (EC2ContainerServiceBackend, "register_task_definition", _register),
    (EC2ContainerServiceBackend, "_get_last_task_definition_revision_id", _last_revision),
    (EC2ContainerServiceBackend, "deregister_task_definition", _deregister),
    (EC2ContainerServiceBackend, "describe_task_definition", _describe),
    (EC2ContainerServiceBackend, "delete_task_definitions", _delete),
    (EC2ContainerServiceResponse, "list_task_definitions", _list_task_definitions),
    (EC2ContainerServiceResponse, "list_task_definition_families", _list_families),
    (StepFunctionResponse, "list_state_machine_versions", _list_state_machine_versions),
]


def _dynamodb_atomic() -> list[tuple[type, str, Any]]:
    """DynamoDB applies each request to an item atomically; moto checks a condition and then writes with no
    lock, so two threads could both pass `attribute_not_exists` (seen: 18 races of 200). One lock around
    moto's table operations restores what register-or-reuse relies on, on moto's side of the wire."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    patches: list[tuple[type, str, Any]] = []
    for name in ("create_table", "put_item", "update_item", "delete_item", "get_item", "query", "scan"):
        original = getattr(DynamoDBBackend, name)

        def serialised(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        patches.append((DynamoDBBackend, name, serialised))
    return patches


_PATCHES += _dynamodb_atomic()
