"""A local ECS for tests, the demo and the benchmark: moto, plus the fidelity moto lacks (docs/design.md §6).

On top of moto's ECS it adds: paging (`maxResults` 1 to 100, `nextToken`) and `sort` on the list calls, the
family `status` filter, `registeredAt` / `registeredBy` / `deregisteredAt` stamped from the (freezable)
clock, revision numbers that are never reused, DELETE_IN_PROGRESS revisions that stay listable and
describable, DescribeTaskDefinition by family name resolving to the newest ACTIVE revision, Step Functions'
ListStateMachineVersions (which moto lacks), AWS's per-category throttling when asked, fault injection (a
throttle, a 5xx, a dropped connection, a per-item delete failure) and a count of every API call. S3 checks
ExpectedBucketOwner against the account that made the bucket (403 when another owns it), and resolves an
SSE-KMS key as S3 does (a key id or alias in the requester's account, stored as the key's ARN; a key that does
not exist is KMS.NotFoundException), all of which moto leaves out; each S3 request is recorded (`s3_requests`).

Where AWS leaves an answer undocumented (docs/design.md §8), the simulator gives each plausible one, chosen
by a `Behaviour`; the default is the combination hardest for tdgc, and `Behaviour.pairwise()` is a small set
that together gives every pair of answers, for tests that must hold under all of them.

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
import copy
import enum
import hashlib
import json
import logging
import os
import socket
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

import botocore
import botocore.exceptions
import botocore.session
import moto.backends
from botocore.stub import Stubber
from moto import mock_aws
from moto.codedeploy import responses as codedeploy_responses
from moto.codedeploy.models import CodeDeployBackend
from moto.codedeploy.responses import CodeDeployResponse
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, BaseResponse
from moto.core.routing import get_service_router
from moto.ecs.exceptions import EcsClientException, InvalidParameterException
from moto.ecs.models import EC2ContainerServiceBackend, TaskDefinition, ecs_backends
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.kms.models import kms_backends
from moto.s3.exceptions import S3ClientError
from moto.s3.models import s3_backends
from moto.s3.responses import S3Response
from moto.stepfunctions.responses import StepFunctionResponse
from moto.utilities.utils import get_partition
from werkzeug.datastructures import Headers

from tdgc.aws.pacing import AWS_BUCKETS, CATEGORY

DEFAULT_ACCOUNT = "123456789012"
READ_PREFIXES = ("List", "Describe", "Get", "Head", "Scan", "Query", "BatchGet")
SESSION_OPERATIONS = {"AssumeRole", "GetCallerIdentity"}
_ACTIVE: Simulator | None = None
_BUCKET_LOCK = threading.Lock()


@dataclass(frozen=True)
class S3Request:
    """One S3 request as the simulator received it: what tdgc's protection of its own objects is about."""

    method: str  # GET, PUT, HEAD, POST, DELETE
    bucket: str
    key: str  # "" for a request to the bucket itself (HeadBucket, ListObjectsV2)
    expected_owner: str | None  # the x-amz-expected-bucket-owner header
    encryption: str | None  # x-amz-server-side-encryption: AES256, aws:kms, or none asked for
    kms_key: str | None  # x-amz-server-side-encryption-aws-kms-key-id, as sent


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


class Tokens(enum.StrEnum):
    """What a list call's `nextToken` names (AWS: "opaque")."""

    KEY = "key"  # the last item returned: a mutation between pages skips nothing
    OFFSET = "offset"  # a position in the result list as it stands at each call: a removal before it skips


class Refusal(enum.StrEnum):
    """How ECS answers a mutation of a revision already past it (AWS does not say)."""

    ACCEPTED = "accepted"  # as if it had just happened
    FAILURE = "failure"  # DeleteTaskDefinitions: a `failures[]` entry for that revision, the rest go through
    ERROR = "error"  # a ClientException for the whole call


class Finish(enum.StrEnum):
    """When a deleted revision is gone (AWS: once nothing references it; no time given without references)."""

    SWEEP = "sweep"  # it stays DELETE_IN_PROGRESS until Simulator.finish_deletes()
    AT_ONCE = "at_once"  # gone as soon as the delete is accepted


@dataclass(frozen=True)
class Behaviour:
    """One answer to each question about ECS that AWS leaves open (docs/design.md §8).

    The defaults are the hardest combination for tdgc: pages that shift when it mutates, listings that mix
    deleted revisions in, refusals for anything repeated, and a family that vanishes from the families
    listing once its last revision is being deleted.
    """

    tokens: Tokens = Tokens.OFFSET
    # ListTaskDefinitions status=INACTIVE also returns the DELETE_IN_PROGRESS revisions
    inactive_lists_deleting: bool = True
    # DeleteTaskDefinitions of a revision already DELETE_IN_PROGRESS, or gone
    repeat_delete: Refusal = Refusal.FAILURE
    # DeregisterTaskDefinition of an INACTIVE revision (a FAILURE has no per-item form here: it is an error)
    deregister_inactive: Refusal = Refusal.ERROR
    # DeregisterTaskDefinition's answer carries `deregisteredAt` (one recorded real answer had none)
    deregistered_at_in_response: bool = False
    # ListTaskDefinitionFamilies still returns a family whose every revision is being deleted or gone
    deleting_families_listed: bool = False
    deletes_finish: Finish = Finish.SWEEP
    # ListServices without a resourceManagementType filter also returns the Express (ECS-managed) services
    express_services_listed: bool = False
    # BatchGetDeployments gives the AppSpec content of `revision` and `previousRevision`, not just its hash
    appspec_in_deployment: bool = False

    def label(self) -> str:
        """Short and stable, for test ids: one letter or word per answer, in field order."""
        return "-".join(
            (
                self.tokens.value,
                "inact+del" if self.inactive_lists_deleting else "inact",
                f"redel:{self.repeat_delete.value}",
                f"dereg:{self.deregister_inactive.value}",
                "at" if self.deregistered_at_in_response else "no-at",
                "fam-kept" if self.deleting_families_listed else "fam-dropped",
                self.deletes_finish.value,
                "express-listed" if self.express_services_listed else "express-apart",
                "appspec-inline" if self.appspec_in_deployment else "appspec-hash",
            )
        )

    @staticmethod
    def choices() -> dict[str, tuple[Any, ...]]:
        """Every plausible answer to each question, by field."""
        return {
            "tokens": tuple(Tokens),
            "inactive_lists_deleting": (True, False),
            "repeat_delete": tuple(Refusal),
            "deregister_inactive": (Refusal.ERROR, Refusal.ACCEPTED),
            "deregistered_at_in_response": (False, True),
            "deleting_families_listed": (False, True),
            "deletes_finish": tuple(Finish),
            "express_services_listed": (False, True),
            "appspec_in_deployment": (False, True),
        }

    @classmethod
    def pairwise(cls) -> list[Behaviour]:
        """Eight behaviours, the hardest first, that between them give every pair of answers to two questions
        (the whole product is 768): what breaks code is most often two answers together. A test checks the
        cover. Beside a three-answer question, eight two-answer ones need at least seven rows."""
        o, k, a, f, e = Tokens.OFFSET, Tokens.KEY, Refusal.ACCEPTED, Refusal.FAILURE, Refusal.ERROR
        sweep, now = Finish.SWEEP, Finish.AT_ONCE
        rows = [
            (o, True, f, e, False, False, sweep, False, False),
            (k, False, e, a, True, True, now, False, False),
            (o, False, a, a, False, True, sweep, False, False),
            (k, True, a, e, True, False, now, True, True),
            (o, False, f, a, True, False, now, False, True),
            (k, True, e, e, False, True, sweep, False, True),
            (k, True, f, a, False, True, now, True, False),
            (o, False, e, e, True, False, sweep, True, False),
        ]
        return [cls(*row) for row in rows]


def _now() -> datetime:
    return _as_sent(datetime.now(UTC))


def _as_sent(moment: datetime) -> datetime:
    """A timestamp as ECS keeps and sends it: to the millisecond. The simulator's own record then equals what
    a client reads, so that a test comparing the two sees no microsecond that never crossed the wire."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _sim() -> Simulator:
    if _ACTIVE is None:  # pragma: no cover - the patches only exist while a Simulator is active
        raise RuntimeError("no tdgc Simulator is active")
    return _ACTIVE


# What could lead a test or the demo to a real AWS account: credentials, profiles, endpoints, metadata.
REAL_AWS_ENVIRONMENT = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


def without_real_aws(empty_dir: str | os.PathLike[str]) -> dict[str, str | None]:
    """The environment changes that keep boto3 from finding real credentials, config or instance metadata
    (None: unset): for test suites to apply before the simulator starts."""
    changes: dict[str, str | None] = dict.fromkeys(REAL_AWS_ENVIRONMENT)
    changes.update(
        {
            "AWS_CONFIG_FILE": os.path.join(empty_dir, "config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(empty_dir, "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    return changes


@contextmanager
def serve(port: int = 0) -> Iterator[str]:
    """moto's backends over HTTP on loopback (for a subprocess, Terraform, `tdgc demo --serve`); yields the
    endpoint URL. `port` 0 is any free port; a port that cannot be had is an OSError."""
    from moto.server import ThreadedMotoServer  # needs moto[server] (Flask): the demo and test extras have it

    if port:
        _check_port(port)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    # moto lists its own package's folders on every request, under the lock all requests share: once will do.
    modules = tuple(moto.backends.list_of_moto_modules())
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    with mock.patch.object(moto.backends, "list_of_moto_modules", lambda: modules):
        server.start()
        _prepare(server, modules)
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()


# What tdgc, its deployments and its tests call over HTTP.
SERVED_SERVICES = (
    *("ecs", "sts", "events", "scheduler", "pipes", "stepfunctions", "cloudformation", "codedeploy", "s3"),
    *("dynamodb", "organizations", "ssm", "ec2", "iam", "lambda", "sqs", "logs", "cloudwatch", "kms"),
)


def _prepare(server: Any, modules: tuple[str, ...]) -> None:
    """Build what moto builds on a service's first request, before the server answers one: moto does it under
    one lock (its Flask app per service) or with no lock at all (its cached service models), so the first
    requests of many clients at once (tdgc's parallel targets) would queue on it or each parse the models
    again: seconds of the server's CPU that a benchmark would count as tdgc's."""
    dispatcher = server._server.app  # moto's DomainDispatcherApplication
    for service in SERVED_SERVICES:
        get_service_router(service)  # and its service model
        if service in modules:
            with dispatcher.lock:
                if service not in dispatcher.app_instances:
                    dispatcher.app_instances[service] = dispatcher.create_app(service)
        if service in CHECKED_SERVICES:
            _checker(service)


def _check_port(port: int) -> None:
    """OSError unless `port` can be bound on loopback: moto's server binds in its thread, and would wait
    forever for a port it cannot have."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server's own socket does
        probe.bind(("127.0.0.1", port))


class Simulator:
    """The simulated account. Enter it to start moto with tdgc's additions."""

    def __init__(
        self, region: str = "us-east-1", account_id: str = DEFAULT_ACCOUNT, behaviour: Behaviour | None = None
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.behaviour = behaviour or Behaviour()
        self.calls: Counter[str] = Counter()
        # Every mutating request (operation, parameters), in order, including those answered with an error.
        self.mutations: list[tuple[str, dict[str, Any]]] = []
        self.sessions: list[tuple[str, dict[str, Any]]] = []  # AssumeRole requests, with their parameters
        self.s3_requests: list[S3Request] = []  # every S3 request, in order, including those refused
        self._faults: dict[str, list[_Fault]] = defaultdict(list)
        self._delete_failures: dict[str, str] = {}
        self._after: dict[str, list[Callable[[], None]]] = defaultdict(list)
        self._high_water: dict[tuple[str, str, str], int] = {}  # (account, region, family) -> revision
        # (account, region, family, status) -> its revision numbers, ascending: paging in O(page), not O(family)
        self._index: dict[tuple[str, str, str, str], list[int]] = {}
        self.gone: set[str] = set()  # ARNs of deleted revisions ECS has finished with
        # Service revisions and deployments (ListServiceDeployments & co., which moto lacks): by ARN, in order.
        self.service_revisions: dict[str, dict[str, Any]] = {}
        self.service_deployments: dict[str, dict[str, Any]] = {}
        # False: a deployment started now stays IN_PROGRESS, its source revision still deployed beside it.
        self.deployments_complete = True
        self._stack: ExitStack | None = None
        self._buckets: dict[tuple[str, str, str], list[float]] | None = None  # throttling, when asked
        self._time_scale = 1.0
        self._bucket_clock: Callable[[], float] = time.monotonic
        self.throttled: Counter[str] = Counter()  # ThrottlingExceptions the buckets gave, by operation
        # Successful answers that do not fit botocore's output model (field names, types): should stay empty.
        self.shape_errors: list[str] = []

    # ---- lifecycle ----

    def __enter__(self) -> Simulator:
        global _ACTIVE
        if _ACTIVE is not None:
            raise RuntimeError("a tdgc Simulator is already active")
        stack = ExitStack()
        stack.enter_context(mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": self.region}))
        for name in [n for n in os.environ if n == "AWS_ENDPOINT_URL" or n.startswith("AWS_ENDPOINT_URL_")]:
            del os.environ[name]  # botocore would send the calls there, out of the simulated account
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

    def serve(self, port: int = 0) -> contextlib.AbstractContextManager[str]:
        """Serve this simulated account over HTTP on loopback (for a subprocess); yields the endpoint URL."""
        return serve(port)

    def reset(self) -> None:
        """Forget every task definition, call and fault, as a fresh account (for tests that loop)."""
        for account in ecs_backends.values():
            for backend in account.values():
                backend.task_definitions.clear()
        self._high_water.clear()
        self._index.clear()
        self.gone.clear()
        self.service_revisions.clear()
        self.service_deployments.clear()
        self.shape_errors.clear()
        self.deployments_complete = True
        self.calls.clear()
        self.mutations.clear()
        self.s3_requests.clear()
        self.clear_faults()

    def backend(self, region: str | None = None, account: str | None = None) -> EC2ContainerServiceBackend:
        return ecs_backends[account or self.account_id][region or self.region]

    def create_bucket(self, name: str, *, account: str | None = None, region: str | None = None) -> None:
        """A bucket owned by `account` (default: the simulated one), as that account's CreateBucket makes it:
        S3 bucket names are global, so the simulated account's calls reach it too (but for ExpectedBucketOwner)."""
        region = region or self.region
        s3_backends[account or self.account_id][get_partition(region)].create_bucket(name, region)

    def create_kms_key(self, alias: str | None = None, *, account: str | None = None, region: str | None = None) -> str:
        """A symmetric KMS key (with `alias/NAME`, if given) in `account`, straight into the backend (no call
        counted); its ARN."""
        kms = kms_backends[account or self.account_id][region or self.region]
        key = kms.create_key(None, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "tdgc archives", None)
        if alias:
            kms.create_alias(key.id, alias)
        return str(key.arn)

    # ---- calls and faults ----

    def mutating_calls(self) -> int:
        """API calls of any service that are not reads (READ_PREFIXES: List, Describe, Get, Scan, ...), S3's
        aside: its writes are tdgc's own objects (archives, reports, probes), counted in `calls` only."""
        return len(self.mutations)

    def count(self, operation: str) -> int:
        return sum(n for op, n in self.calls.items() if op.split(":")[-1] == operation)

    def inject(
        self,
        operation: str,
        code: str = "ThrottlingException",
        *,
        times: int = 1,
        message: str = "Rate exceeded",
        status: int = 400,
    ) -> None:
        """Make the next `times` calls of `operation` fail with `code` (times=-1: until `clear_faults`)."""
        self._faults[operation].append(_Fault(code, message, status, times))

    def throttle(self, time_scale: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        """Throttle as AWS does: a token bucket per category, account and Region (docs/design.md §2).

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
        """The family's revision numbers that ListTaskDefinitions gives for `status`, ascending."""
        key = (backend.account_id, backend.region_name, family, status)
        if key not in self._index:
            revisions = backend.task_definitions.get(family, {})
            shown = {status}
            if status == "INACTIVE" and self.behaviour.inactive_lists_deleting:
                shown.add("DELETE_IN_PROGRESS")
            self._index[key] = sorted(n for n, td in revisions.items() if td.status in shown)
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
        registered_at = _as_sent(registered_at) if registered_at is not None else None
        deregistered_at = _as_sent(deregistered_at) if deregistered_at is not None else None
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

    def express_service(self, name: str, task_definition: str, cluster: str = "default") -> str:
        """An Express service (ECS-managed, as CreateExpressGatewayService makes one) running `task_definition`;
        its ARN. The cluster is made if missing. UpdateService deploys it like any other."""
        backend = self.backend()
        if cluster not in backend.clusters:
            backend.create_cluster(cluster)
        service: Any = backend.create_service(cluster, name, 1, task_definition_str=task_definition)
        service.resource_management_type = "ECS"
        return str(service.arn)

    def finish_deletes(self) -> int:
        """Let every DELETE_IN_PROGRESS revision go, as ECS does once nothing references it."""
        gone = 0
        for account in ecs_backends.values():
            for backend in account.values():
                for revisions in backend.task_definitions.values():
                    for number in [n for n, td in revisions.items() if td.status == "DELETE_IN_PROGRESS"]:
                        self.gone.add(revisions.pop(number).arn)
                        gone += 1
        self._index.clear()
        return gone

    def statuses(self, region: str | None = None, account: str | None = None) -> dict[str, str]:
        """Every revision's status by ARN, "GONE" for a deleted one ECS has finished with: an end state that
        reads the same whether deletes finish at once or later (compare with `deleted()`)."""
        found = {td.arn: td.status for td in self.revisions(region=region, account=account)}
        prefix = f":{region or self.region}:{account or self.account_id}:"
        found.update({arn: "GONE" for arn in self.gone if prefix in arn})
        return found

    @staticmethod
    def deleted(status: str) -> bool:
        """Whether a status from `statuses()` means DeleteTaskDefinitions took the revision."""
        return status in ("DELETE_IN_PROGRESS", "GONE")

    def revisions(
        self, status: str | None = None, region: str | None = None, account: str | None = None
    ) -> Iterator[TaskDefinition]:
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
    sim.shape_errors += _shape_errors(self.boto3_service_name, operation, answer)
    for action in sim._after.pop(operation, []):
        action()
    return answer


def _without_nulls(value: Any) -> Any:
    """JSON nulls dropped: botocore's parser reads a null member as an absent one."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


_CHECKERS: dict[str, Any] = {}  # service -> a client whose model checks that service's answers
_CHECKERS_LOCK = threading.Lock()  # one checker a service, however many requests arrive at once
# The services whose answers the simulator writes or changes; the others are moto's own (which, e.g., adds
# `CreatedBy` to EventBridge rules, and whose DynamoDB answers trip a bound of botocore's model that AWS's
# own answers trip too).
CHECKED_SERVICES = frozenset({"ecs", "stepfunctions", "codedeploy"})


def _shape_errors(service: str, operation: str, answer: Any) -> list[str]:
    """What in a successful JSON answer does not fit botocore's output model: unknown field names and wrong
    types, found by the very validation botocore's Stubber applies to a stubbed response."""
    if service not in CHECKED_SERVICES or not (isinstance(answer, tuple) and answer[0] == 200 and answer[2]):
        return []
    client = _checker(service)
    if client is None:
        return []  # XML and REST protocols: the body is not the whole answer
    try:
        Stubber(client).add_response(botocore.xform_name(operation), _without_nulls(json.loads(answer[2])))
    except botocore.exceptions.ParamValidationError as exc:
        return [f"{service}:{operation}: {exc}"]
    return []


def _checker(service: str) -> Any:
    """A client whose model checks `service`'s answers; None for protocols whose body is not the whole answer."""
    with _CHECKERS_LOCK:
        if service not in _CHECKERS:
            client = botocore.session.get_session().create_client(
                service, region_name="us-east-1", aws_access_key_id="checker", aws_secret_access_key="checker"
            )
            _CHECKERS[service] = client if client.meta.service_model.protocol == "json" else None
        return _CHECKERS[service]


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
    if existing is not None and existing.status == "DELETE_IN_PROGRESS":  # documented (docs/design.md §8)
        raise EcsClientException("The specified task definition is in the process of being deleted.")
    if existing is not None and existing.status == "INACTIVE" and _sim().behaviour.deregister_inactive != "accepted":
        raise EcsClientException("The specified task definition is already INACTIVE.")
    td: Any = _orig_deregister(self, task_definition_str)
    _sim()._changed(self, td.family)
    if getattr(td, "deregistered_at", None) is None:
        td.deregistered_at = _now()
    return td  # type: ignore[no-any-return]


def _deregister_answer(self: EC2ContainerServiceResponse) -> ActionResult:
    td: Any = self.ecs_backend.deregister_task_definition(self._get_param("taskDefinition"))
    if not _sim().behaviour.deregistered_at_in_response:
        td = copy.copy(td)  # the answer only: describing it still gives the time
        td.deregistered_at = None
    return ActionResult({"taskDefinition": td})


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
    deleted: list[Any] = []
    failures: list[Any] = []
    prefix = f"arn:{get_partition(self.region_name)}:ecs:{self.region_name}:{self.account_id}:task-definition/"

    def fail(ref: str, reason: str) -> None:
        failures.append(DeleteTaskDefinitionFailure(reason, ref, self.account_id, self.region_name))

    found = []
    for ref in task_definitions:
        family, _, rev = ref.split("/")[-1].partition(":")
        td = self.task_definitions.get(family, {}).get(int(rev)) if rev.isdigit() else None
        repeated = td is None or td.status == "DELETE_IN_PROGRESS"
        if repeated and sim.behaviour.repeat_delete == "error":  # the whole call refused, nothing done
            raise EcsClientException(f"The specified task definition {ref} is not in INACTIVE status.")
        found.append((ref, family, td))
    for ref, family, td in found:
        if td is None and sim.behaviour.repeat_delete == "accepted":
            deleted.append({"taskDefinitionArn": prefix + ref.split("/")[-1], "status": "DELETE_IN_PROGRESS"})
        elif td is None:
            fail(
                ref,
                "The specified task definition does not exist. Specify a valid account, family, "
                "revision and try again.",
            )
        elif td.status == "ACTIVE":
            fail(
                ref,
                "The specified task definition is still in ACTIVE status. Please deregister the target and try again.",
            )
        elif td.arn in sim._delete_failures:
            fail(ref, sim._delete_failures[td.arn])
        elif td.status == "DELETE_IN_PROGRESS" and sim.behaviour.repeat_delete == "failure":
            fail(ref, "The specified task definition is already being deleted.")
        else:
            td.status = "DELETE_IN_PROGRESS"
            deleted.append(td)
            if sim.behaviour.deletes_finish == "at_once":
                del self.task_definitions[family][td.revision]
                sim.gone.add(td.arn)
            sim._changed(self, family)
    return deleted, failures


# ---- paging for the two list calls ----
#
# A token is base64 JSON: the query it belongs to, and either the key of the last item returned (Tokens.KEY)
# or the offset of the next page in the result list as it will stand then (Tokens.OFFSET). A token from
# another query or of the other kind is refused, as ECS refuses one it did not give.


def _max_results(params: dict[str, Any]) -> int:
    max_results = params.get("maxResults")
    if max_results is None:
        return 100
    if not isinstance(max_results, int) or not 1 <= max_results <= 100:
        raise InvalidParameterException("maxResults must be between 1 and 100.")
    return max_results


def _token_value(params: dict[str, Any], query: str) -> Any:
    """What a nextToken says (a key, or an offset), None without one; a token from elsewhere is refused."""
    token = params.get("nextToken")
    if not token:
        return None
    kind = _sim().behaviour.tokens
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        if decoded["q"] != query:
            raise ValueError("token from another query")
        value = decoded[kind]
        if kind == "offset" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ValueError("not an offset")
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidParameterException("The nextToken is invalid.") from None
    return tuple(value) if isinstance(value, list) else value


def _token(query: str, last: Any, offset: int) -> str:
    """The token for the page after one that ended with `last`, at `offset` in the result list."""
    if _sim().behaviour.tokens == "offset":
        payload: dict[str, Any] = {"q": query, "offset": offset}
    else:
        payload = {"q": query, "key": list(last) if isinstance(last, tuple) else last}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def _revision_key(params: dict[str, Any], query: str, family: str | None = None) -> tuple[str, int] | int | None:
    """A list_task_definitions token: the (family, revision) the last page ended at, or an offset."""
    value = _token_value(params, query)
    if value is None or isinstance(value, int):
        return value
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not isinstance(value[0], str)
        or not isinstance(value[1], int)
        or (family is not None and value[0] != family)
    ):
        raise InvalidParameterException("The nextToken is invalid.")
    return value


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
    key = _revision_key(params, query)
    descending = sort == "DESC"
    families = sorted(backend.task_definitions)
    passed = key if isinstance(key, int) else 0  # an offset: how many were given already
    skip = passed  # whole families are passed over by their counts, the rest within the next one
    if not isinstance(key, tuple):
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
        if isinstance(key, tuple) and fam == key[0]:
            if descending:
                end = bisect.bisect_left(numbers, key[1])
            else:
                start = bisect.bisect_right(numbers, key[1])
        if skip:
            moved = min(skip, end - start)
            skip -= moved
            if descending:
                end -= moved
            else:
                start += moved
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
        result["nextToken"] = _token(query, page[-1], passed + len(page))
    return ActionResult(result)


def _list_one_family(backend: Any, family: str, status: str, sort: str, params: dict[str, Any]) -> ActionResult:
    """One family's page by bisecting its index (a key) or slicing it (an offset), in O(page)."""
    numbers = _sim().numbers(backend, family, status)
    max_results = _max_results(params)
    query = f"{family}|{status}|{sort}"
    key = _revision_key(params, query, family)
    passed = key if isinstance(key, int) else 0  # an offset: how many were given already
    if sort == "DESC":
        end = bisect.bisect_left(numbers, key[1]) if isinstance(key, tuple) else len(numbers) - passed
        page = numbers[max(0, end - max_results) : max(0, end)][::-1]
        more = end - max_results > 0
    else:
        start = bisect.bisect_right(numbers, key[1]) if isinstance(key, tuple) else passed
        page = numbers[start : start + max_results]
        more = start + max_results < len(numbers)
    region, account = backend.region_name, backend.account_id
    prefix = f"arn:{get_partition(region)}:ecs:{region}:{account}:task-definition/{family}:"
    result: dict[str, Any] = {"taskDefinitionArns": [f"{prefix}{n}" for n in page]}
    if more:
        result["nextToken"] = _token(query, (family, page[-1]), passed + len(page))
    return ActionResult(result)


def _list_families(self: EC2ContainerServiceResponse) -> ActionResult:
    params = self._get_params()
    backend = self.ecs_backend
    prefix = params.get("familyPrefix") or ""
    status = params.get("status", "ALL")
    if status not in ("ACTIVE", "INACTIVE", "ALL"):
        raise InvalidParameterException(f"Invalid status: {status}")
    listed = _sim().behaviour.deleting_families_listed
    names = []
    for name in sorted(backend.task_definitions):
        statuses = {td.status for td in backend.task_definitions[name].values()} - {"DELETE_IN_PROGRESS"}
        if not name.startswith(prefix) or not (statuses or listed):
            continue
        has_active = "ACTIVE" in statuses
        if status == "ALL" or (status == "ACTIVE") == has_active:
            names.append(name)
    window, token = _page_of(names, params, f"{prefix}|{status}", _max_results(params))
    return ActionResult({"families": names[window], **({"nextToken": token} if token else {})})


def _page_of(keys: list[str], params: dict[str, Any], query: str, max_results: int) -> tuple[slice, str | None]:
    """A page of a listing whose items have string keys, in its order as it stands now: from an offset, or
    from just after the key a token names (or where that key would sort, if it is gone); and the next token."""
    after = _token_value(params, query)
    if isinstance(after, int):
        start = after
    elif after is None:
        start = 0
    elif isinstance(after, str):
        start = keys.index(after) + 1 if after in keys else bisect.bisect_right(keys, after)
    else:
        raise InvalidParameterException("The nextToken is invalid.")
    end = start + max_results
    return slice(start, end), _token(query, keys[end - 1], end) if end < len(keys) else None


def _list_state_machine_versions(self: StepFunctionResponse) -> ActionResult:
    machine = self.stepfunction_backend.describe_state_machine(self._get_param("stateMachineArn"))
    versions = sorted(machine.versions.values(), key=lambda v: -v.version)
    return ActionResult(
        {"stateMachineVersions": [{"stateMachineVersionArn": v.arn, "creationDate": v.creation_date} for v in versions]}
    )


_PATCHES: list[tuple[Any, str, Any]] = [
    (BaseResponse, "call_action", _call_action),
    (EC2ContainerServiceBackend, "register_task_definition", _register),
    (EC2ContainerServiceBackend, "_get_last_task_definition_revision_id", _last_revision),
    (EC2ContainerServiceBackend, "deregister_task_definition", _deregister),
    (EC2ContainerServiceResponse, "deregister_task_definition", _deregister_answer),
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


# ---- service revisions and deployments (moto keeps neither) ----

_orig_create_service = EC2ContainerServiceBackend.create_service
_orig_update_service = EC2ContainerServiceBackend.update_service


def _deployed(self: EC2ContainerServiceBackend, service: Any, source: list[str]) -> None:
    """Record a new service revision for the service's task definition, and the deployment to it from
    `source` (service revision ARNs); a completed one leaves only its own deployment in `deployments`."""
    sim, now = _sim(), _now()
    base = service.arn.replace(":service/", ":service-revision/", 1)
    number = sum(1 for r in sim.service_revisions.values() if r["serviceArn"] == service.arn) + 1
    revision = {
        "serviceRevisionArn": f"{base}/{number}",
        "serviceArn": service.arn,
        "createdAt": now,
        "clusterArn": service.cluster_arn,
        "taskDefinition": service.task_definition,
    }
    sim.service_revisions[revision["serviceRevisionArn"]] = revision
    complete = sim.deployments_complete
    arn = service.arn.replace(":service/", ":service-deployment/", 1) + f"/{len(sim.service_deployments) + 1}"
    sim.service_deployments[arn] = {
        "serviceDeploymentArn": arn,
        "serviceArn": service.arn,
        "clusterArn": service.cluster_arn,
        "createdAt": now,
        "startedAt": now,
        **({"finishedAt": now} if complete else {}),
        "sourceServiceRevisions": [{"arn": a} for a in source],
        "targetServiceRevision": {"arn": revision["serviceRevisionArn"]},
        "status": "SUCCESSFUL" if complete else "IN_PROGRESS",
    }
    if service.deployments:
        primary = {
            **service.deployments[0],
            "taskDefinition": service.task_definition,
            "createdAt": now,
            "updatedAt": now,
            "id": f"ecs-svc/{len(sim.service_deployments)}",
            "status": "PRIMARY",
        }
        older = [] if complete else [{**d, "status": "ACTIVE"} for d in service.deployments]
        service.deployments = [primary, *older]


def _current_revision(service_arn: str) -> list[str]:
    found = [a for a, r in _sim().service_revisions.items() if r["serviceArn"] == service_arn]
    return found[-1:]


def _create_service(self: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> Any:
    service = _orig_create_service(self, *args, **kwargs)
    if service.task_definition:
        _deployed(self, service, [])
    return service


def _update_service(self: EC2ContainerServiceBackend, service_properties: dict[str, Any]) -> Any:
    before = self._get_service(service_properties.get("cluster", "default"), service_properties["service"])
    old = before.task_definition
    service = _orig_update_service(self, service_properties)
    if service.task_definition and service.task_definition != old:
        service.task_definition = self.describe_task_definition(service.task_definition).arn  # ECS says the ARN
        _deployed(self, service, _current_revision(service.arn))
    return service


def _service_arn(self: EC2ContainerServiceResponse) -> str:
    service = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("service"))
    return str(service.arn)


def _list_service_deployments(self: EC2ContainerServiceResponse) -> ActionResult:
    arn = _service_arn(self)
    wanted = self._get_param("status") or []
    brief = ("serviceDeploymentArn", "serviceArn", "clusterArn", "startedAt", "createdAt", "finishedAt", "status")
    found = [
        {**{k: d[k] for k in brief if k in d}, "targetServiceRevisionArn": d["targetServiceRevision"]["arn"]}
        for d in reversed(_sim().service_deployments.values())  # newest first
        if d["serviceArn"] == arn and (not wanted or d["status"] in wanted)
    ]
    keys = [d["serviceDeploymentArn"] for d in found]
    window, token = _page_of(keys, self._get_params(), f"deployments|{arn}", self._get_param("maxResults") or 20)
    return ActionResult({"serviceDeployments": found[window], **({"nextToken": token} if token else {})})


def _described_by_arn(
    self: EC2ContainerServiceResponse, table: dict[str, dict[str, Any]], param: str, key: str
) -> ActionResult:
    arns = self._get_param(param) or []
    if not 1 <= len(arns) <= 20:
        raise InvalidParameterException(f"{param} must hold 1 to 20 ARNs.")
    found = [table[a] for a in arns if a in table]
    failures = [{"arn": a, "reason": "MISSING"} for a in arns if a not in table]
    return ActionResult({key: found, "failures": failures})


def _describe_service_deployments(self: EC2ContainerServiceResponse) -> ActionResult:
    return _described_by_arn(self, _sim().service_deployments, "serviceDeploymentArns", "serviceDeployments")


def _describe_service_revisions(self: EC2ContainerServiceResponse) -> ActionResult:
    return _described_by_arn(self, _sim().service_revisions, "serviceRevisionArns", "serviceRevisions")


_PATCHES += [
    (EC2ContainerServiceBackend, "create_service", _create_service),
    (EC2ContainerServiceBackend, "update_service", _update_service),
    (EC2ContainerServiceResponse, "list_service_deployments", _list_service_deployments),
    (EC2ContainerServiceResponse, "describe_service_deployments", _describe_service_deployments),
    (EC2ContainerServiceResponse, "describe_service_revisions", _describe_service_revisions),
]


# ---- ECS Express services (moto lacks them) ----

_orig_list_services = EC2ContainerServiceBackend.list_services


def _list_services(
    self: EC2ContainerServiceBackend,
    cluster_str: str,
    scheduling_strategy: str | None = None,
    launch_type: str | None = None,
) -> list[str]:
    """ListServices with its `resourceManagementType` filter; unfiltered, Express services are listed or not
    as the behaviour says (AWS does not say)."""
    wanted = _current_params().get("resourceManagementType")
    listed = _orig_list_services(self, cluster_str, scheduling_strategy, launch_type)
    kinds = {s.arn: getattr(s, "resource_management_type", "CUSTOMER") for s in self.services.values()}
    if wanted:
        return [a for a in listed if kinds.get(a) == wanted]
    return [a for a in listed if kinds.get(a) != "ECS" or _sim().behaviour.express_services_listed]


_PARAMS = threading.local()  # the request being answered, for backend methods that moto calls without it
_orig_list_services_answer = EC2ContainerServiceResponse.list_services


def _list_services_answer(self: EC2ContainerServiceResponse) -> ActionResult:
    _PARAMS.value = self._get_params()
    try:
        return _orig_list_services_answer(self)
    finally:
        _PARAMS.value = {}


def _current_params() -> dict[str, Any]:
    return getattr(_PARAMS, "value", {}) or {}


def _describe_express_gateway_service(self: EC2ContainerServiceResponse) -> ActionResult:
    arn = self._get_param("serviceArn")
    service = next((s for s in self.ecs_backend.services.values() if s.arn == arn), None)
    if service is None or getattr(service, "resource_management_type", "CUSTOMER") != "ECS":
        raise EcsClientException("The specified Express service does not exist.")
    revisions = {r["taskDefinition"]: a for a, r in _sim().service_revisions.items() if r["serviceArn"] == arn}
    configurations = [
        {
            "serviceRevisionArn": revisions.get(d["taskDefinition"], ""),
            "taskDefinitionArn": d["taskDefinition"],
            "createdAt": d.get("createdAt"),
        }
        for d in service.deployments
    ]
    deployments: list[dict[str, Any]] = service.deployments
    started: list[datetime] = sorted(d["createdAt"] for d in deployments if d.get("createdAt"))
    return ActionResult(
        {
            "service": {
                "cluster": service.cluster_arn,
                "serviceName": service.name,
                "serviceArn": arn,
                "status": {"statusCode": "ACTIVE"},
                "activeConfigurations": configurations,
                "createdAt": started[0] if started else _now(),
            }
        }
    )


# ---- CodeDeploy deployments of ECS applications (moto has no history: no previous revision, no last
# successful deployment, no BatchGetDeploymentGroups, no GetApplicationRevision) ----

_orig_create_deployment = CodeDeployBackend.create_deployment
_orig_deployment_info = codedeploy_responses._deployment_info
_orig_deployment_group_info = codedeploy_responses._deployment_group_info


def _create_deployment(
    self: CodeDeployBackend,
    application_name: str,
    deployment_group_name: str,
    revision: dict[str, Any],
    *args: Any,
    **kwargs: Any,
) -> str:
    """A deployment remembers what its group last deployed successfully (its `previousRevision`); with
    `deployments_complete` it succeeds at once and becomes that for the next one."""
    content = (revision.get("appSpecContent") or {}).get("content")
    if content is not None:
        revision = {
            **revision,
            "appSpecContent": {"content": content, "sha256": hashlib.sha256(content.encode()).hexdigest()},
        }
    deployment_id = _orig_create_deployment(self, application_name, deployment_group_name, revision, *args, **kwargs)
    deployment: Any = self.deployments[deployment_id]
    group: Any = deployment.deployment_group
    last = getattr(group, "last_successful", None)
    deployment.previous_revision = last.revision if last is not None else None
    if _sim().deployments_complete:
        deployment.status, deployment.start_time, deployment.complete_time = "Succeeded", _now(), _now()
        group.last_successful = deployment
    else:
        deployment.status, deployment.start_time = "InProgress", _now()
    return deployment_id


def _revision_as_answered(revision: dict[str, Any] | None) -> dict[str, Any] | None:
    if not revision or _sim().behaviour.appspec_in_deployment:
        return revision
    inline = revision.get("appSpecContent")
    return {**revision, "appSpecContent": {"sha256": inline["sha256"]}} if inline else revision


def _deployment_info(deployment: Any) -> dict[str, Any]:
    info = _orig_deployment_info(deployment)
    previous = getattr(deployment, "previous_revision", None)
    info["revision"] = _revision_as_answered(info.get("revision"))
    info["previousRevision"] = _revision_as_answered(previous) if previous else None
    for empty in ("errorInformation", "rollbackInfo", "relatedDeployments"):
        if not info.get(empty):
            info[empty] = None
    return info


def _deployment_group_info(group: Any) -> dict[str, Any]:
    info = _orig_deployment_group_info(group)
    last = getattr(group, "last_successful", None)
    info["lastSuccessfulDeployment"] = (
        {
            "deploymentId": last.deployment_id,
            "status": last.status,
            "endTime": last.complete_time,
            "createTime": last.create_time,
        }
        if last is not None
        else None
    )
    for empty in ("targetRevision", "alarmConfiguration", "lastAttemptedDeployment"):
        if not info.get(empty):
            info[empty] = None
    return info


def _batch_get_deployment_groups(self: CodeDeployResponse) -> ActionResult:
    app, names = self._get_param("applicationName"), self._get_param("deploymentGroupNames") or []
    if len(names) > 100:
        raise _Error("BatchLimitExceededException", "The maximum number of names was exceeded.", 400)
    groups = self.codedeploy_backend.deployment_groups.get(app, {})
    found = [codedeploy_responses._deployment_group_info(groups[n]) for n in names if n in groups]
    missing = [n for n in names if n not in groups]
    error = {"errorMessage": f"Deployment groups not found: {missing}"} if missing else {}
    return ActionResult({"deploymentGroupsInfo": found, **error})


def _get_application_revision(self: CodeDeployResponse) -> ActionResult:
    app, wanted = self._get_param("applicationName"), self._get_param("revision") or {}
    sha = (wanted.get("appSpecContent") or {}).get("sha256")
    for deployment in self.codedeploy_backend.deployments.values():
        revision = deployment.revision
        same = sha is not None and (revision.get("appSpecContent") or {}).get("sha256") == sha
        if deployment.application_name == app and (same or revision == wanted):
            return ActionResult(
                {"applicationName": app, "revision": revision, "revisionInfo": {"registerTime": deployment.create_time}}
            )
    raise _Error(
        "RevisionDoesNotExistException", "The named revision does not exist with the IAM user or AWS account.", 400
    )


_PATCHES += [
    (EC2ContainerServiceBackend, "list_services", _list_services),
    (EC2ContainerServiceResponse, "list_services", _list_services_answer),
    (EC2ContainerServiceResponse, "describe_express_gateway_service", _describe_express_gateway_service),
    (CodeDeployBackend, "create_deployment", _create_deployment),
    (codedeploy_responses, "_deployment_info", _deployment_info),
    (codedeploy_responses, "_deployment_group_info", _deployment_group_info),
    (CodeDeployResponse, "batch_get_deployment_groups", _batch_get_deployment_groups),
    (CodeDeployResponse, "get_application_revision", _get_application_revision),
]


# ---- S3: counted, and faults injected as for the JSON services (moto answers S3 by another path) ----
# Not among `mutations`: an S3 write is tdgc's own object (an archive, a report, a probe), not a change to
# what tdgc manages, and exit 2's "nothing was changed" speaks of the latter.


class _S3Error(S3ClientError):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(code, message)
        self.status = status  # S3 refuses with a 403, not the JSON services' 400


def _s3_call(operation: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def answer(self: S3Response, *args: Any, **kwargs: Any) -> Any:  # head_object takes arguments, the rest none
        sim = _sim()
        sim.calls[f"s3:{operation}"] += 1
        fault = sim._take_fault(operation)
        if fault is not None:
            raise _S3Error(fault.code, fault.message, 403 if fault.status == 400 else fault.status)
        return original(self, *args, **kwargs)

    return answer


_KMS_NOT_FOUND = "KMS.NotFoundException"
_SSE, _SSE_KEY = "x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id"
_EXPECTED_OWNER = "x-amz-expected-bucket-owner"
_S3_MANAGED_KEY = "alias/aws/s3"  # SSE-KMS without a key: the account's AWS managed key for S3


def _s3_request(original: Callable[..., Any]) -> Callable[..., Any]:
    """S3's own checks before an operation, for a bucket or an object alike (moto makes neither):
    ExpectedBucketOwner, and the SSE-KMS key of a write. And each request recorded."""

    def answer(self: S3Response, request: Any, full_url: str) -> Any:
        sim = _sim()
        bucket = self.parse_bucket_name_from_url(request, full_url) or ""
        key = self.parse_key_name() if original is _orig_key_response else ""
        headers = request.headers
        sim.s3_requests.append(
            S3Request(
                request.method,
                bucket,
                key or "",
                headers.get(_EXPECTED_OWNER),
                headers.get(_SSE),
                headers.get(_SSE_KEY),
            )
        )
        expected, owner = headers.get(_EXPECTED_OWNER), s3_backends.bucket_accounts.get(bucket)
        if expected is not None and owner is not None and owner[1] != expected:
            # What S3 says when the bucket is another account's: no more than for any refusal. A HEAD's answer
            # has no body, so the client sees the status alone ("403", "Forbidden").
            if request.method == "HEAD":
                return 403, {}, ""
            raise _S3Error("AccessDenied", "Access Denied", 403)
        creates = request.method == "PUT" or (request.method == "POST" and "uploads" in full_url.partition("?")[2])
        if creates and headers.get(_SSE) == "aws:kms" and owner is not None:
            region = s3_backends[owner[1]][owner[0]].buckets[bucket].region_name
            resolved = Headers(headers)  # the request's own are immutable; moto reads both places
            resolved[_SSE_KEY] = _kms_key_arn(headers.get(_SSE_KEY) or _S3_MANAGED_KEY, self.current_account, region)
            request.headers = self.headers = resolved
        return original(self, request, full_url)

    return answer


def _kms_key_arn(given: str, requester: str, region: str) -> str:
    """The ARN of the key S3 would encrypt with: an ARN names its own account and Region; a key id or alias is
    looked up in the requester's account (AWS: "Amazon S3 resolves the key within the requester's account"),
    in the bucket's Region. S3 stores, and HeadObject gives, the key's ARN whichever form was sent."""
    parts = given.split(":")
    account, region = (parts[4], parts[3]) if given.startswith("arn:") and len(parts) > 5 else (requester, region)
    try:
        found: Any = kms_backends[account][region].describe_key(given)
    except (KeyError, TypeError, AttributeError):  # moto's lookups of an unknown id, alias or ARN
        raise _S3Error(_KMS_NOT_FOUND, f"Invalid keyId '{given}'", 400) from None
    return str(found.arn)


_orig_key_response = S3Response._key_response
_orig_bucket_response = S3Response._bucket_response
_PATCHES += [
    (S3Response, "_key_response", _s3_request(_orig_key_response)),
    (S3Response, "_bucket_response", _s3_request(_orig_bucket_response)),
    (S3Response, "head_bucket", _s3_call("HeadBucket", S3Response.head_bucket)),
    (S3Response, "get_object", _s3_call("GetObject", S3Response.get_object)),
    (S3Response, "list_objects_v2", _s3_call("ListObjectsV2", S3Response.list_objects_v2)),
    (S3Response, "put_object", _s3_call("PutObject", S3Response.put_object)),
    (S3Response, "head_object", _s3_call("HeadObject", S3Response.head_object)),
    (S3Response, "delete_object", _s3_call("DeleteObject", S3Response.delete_object)),
]

_PATCHES += _dynamodb_atomic()


def _ecs_atomic() -> list[tuple[type, str, Any]]:
    """ECS applies each request atomically. moto's ECS keeps task definitions in plain dicts, which a register
    in one thread can change while a listing or describe in another iterates them ("dictionary changed size
    during iteration", seen once in a few hundred runs of twenty concurrent registrations). One lock around
    each ECS request, on moto's side of the wire, as for DynamoDB above."""
    from moto.core.responses import BaseResponse

    lock = threading.RLock()

    def serialised(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return BaseResponse.call_action(self, *args, **kwargs)

    return [(EC2ContainerServiceResponse, "call_action", serialised)]


_PATCHES += _ecs_atomic()
