"""Pacing: the one place that decides how fast tdgc calls AWS.

ECS throttles per account and Region with a token bucket per category, shared with every other caller in
the account, deploy pipelines included (docs/design.md §2). tdgc keeps its own bucket per category, set to a share
of AWS's, and draws a token before every call it makes. A ThrottlingException means others are using the
same bucket: that category's rate halves, then recovers by a twentieth of its setting per successful call
(AIMD), the other categories untouched. botocore's standard retry mode backs off and retries the call.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

# Operation -> ECS throttling category (docs/design.md §2).
CATEGORY = {
    "DescribeTaskDefinition": "read",
    "ListTaskDefinitions": "read",
    "ListTaskDefinitionFamilies": "read",
    "DeregisterTaskDefinition": "modify",
    "RegisterTaskDefinition": "modify",
    "DeleteTaskDefinitions": "delete",
    "ListClusters": "cluster_read",
    "DescribeClusters": "cluster_read",
    "ListServices": "service_read",
    "DescribeServices": "service_read",
    "ListTasks": "task_read",
    "DescribeTasks": "task_read",
    "ListServiceDeployments": "service_deployment_read",
    "DescribeServiceDeployments": "service_deployment_read",
    "DescribeServiceRevisions": "service_deployment_read",
    # Not in AWS's table: paced as the service reads it sits beside, the cautious guess.
    "DescribeExpressGatewayService": "service_read",
}
THROTTLE_CODES = frozenset({"ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequestsException"})
RECOVERY_STEPS = 20  # successful calls to climb back from a halving to the configured rate, at most
FLOOR = 1 / 64  # of the configured rate: a rate never falls below this
# AWS's buckets per account and Region (docs/design.md §2): category -> (burst, sustained calls per second).
AWS_BUCKETS: dict[str, tuple[float, float]] = {
    "read": (50, 20),
    "modify": (20, 1),
    "delete": (5, 1),
    "cluster_read": (50, 20),
    "service_read": (100, 20),
    "task_read": (100, 20),
    "service_deployment_read": (50, 20),
}
# tdgc's bursts: half of AWS's, so that a run starting at full speed leaves room for others.
BURST = {category: float(max(1, int(burst) // 2)) for category, (burst, _) in AWS_BUCKETS.items()}


class Pacer:
    """Token buckets, one per category, refilled at the policy's rates (calls per second)."""

    def __init__(
        self,
        rates: Mapping[str, float],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._ceiling = dict(rates)  # the configured rates
        self._rates = dict(rates)  # the current ones, lowered by throttles
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        now = clock()
        self._tokens = {c: BURST.get(c, 1.0) for c in self._rates}
        self._stamp = dict.fromkeys(self._rates, now)
        self.waited = 0.0  # seconds spent waiting for tokens, for the report and the benchmark
        self.throttles: Counter[str] = Counter()  # ThrottlingExceptions received, by category

    def take(self, category: str) -> None:
        """Wait until a call of `category` may go out, then spend a token on it."""
        if category not in self._rates:
            return
        with self._lock:
            rate = self._rates[category]
            now = self._clock()
            burst = BURST.get(category, 1.0)
            elapsed = max(0.0, now - self._stamp[category])  # a clock that stands still (tests) refills nothing
            tokens = min(burst, self._tokens[category] + elapsed * rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
            self._tokens[category] = tokens - 1 + wait * rate
            self._stamp[category] = now + wait
        if wait > 0:
            self.waited += wait
            self._sleep(wait)

    def rate(self, category: str) -> float | None:
        return self._rates.get(category)

    def throttled(self, category: str) -> None:
        """Multiplicative decrease: halve the category's rate."""
        with self._lock:
            self.throttles[category] += 1
            if category in self._rates:
                self._rates[category] = max(self._ceiling[category] * FLOOR, self._rates[category] / 2)
                self._tokens[category] = min(self._tokens[category], 0.0)  # no burst right after a throttle

    def succeeded(self, category: str) -> None:
        """Additive increase, back towards the configured rate."""
        with self._lock:
            if category in self._rates and self._rates[category] < self._ceiling[category]:
                step = self._ceiling[category] / RECOVERY_STEPS
                self._rates[category] = min(self._ceiling[category], self._rates[category] + step)

    def attach(self, client: Any) -> None:
        """Draw a token before each call `client` makes, and adapt to the answers (botocore events)."""
        service = client.meta.service_model.service_name
        if service != "ecs":
            return

        def before_call(model: Any, **_: Any) -> None:
            category = CATEGORY.get(model.name)
            if category:
                self.take(category)

        def needs_retry(operation: Any, response: Any = None, **_: Any) -> None:
            # Seen after every attempt, retried or not; returning None leaves the retry decision to botocore.
            category = CATEGORY.get(operation.name)
            if category is None or not response:
                return
            code = response[1].get("Error", {}).get("Code") if isinstance(response[1], dict) else None
            if code in THROTTLE_CODES:
                self.throttled(category)
            elif code is None:
                self.succeeded(category)

        client.meta.events.register(f"before-call.{service}", before_call)
        client.meta.events.register(f"needs-retry.{service}", needs_retry)


def unpaced() -> Pacer:
    """A pacer that never waits: for calls outside ECS's buckets (S3, STS, SSM, DynamoDB, the other services
    the references read) and for the simulator."""
    return Pacer({})
