"""Pacing: the one place that decides how fast tdgc calls AWS.

ECS throttles per account and Region with a token bucket per category, shared with every other caller in
the account, deploy pipelines included (DESIGN §2). tdgc keeps its own bucket per category, set to a share
of AWS's, and draws a token before every call it makes; botocore's standard retry mode backs off on the
ThrottlingException that can still come when others use the same buckets.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

# Operation -> ECS throttling category (DESIGN §2).
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
}
# Burst sizes: half of AWS's bucket, so that a run starting at full speed leaves room for others.
BURST = {"read": 25.0, "modify": 10.0, "delete": 2.0, "cluster_read": 25.0, "service_read": 50.0, "task_read": 50.0}


class Pacer:
    """Token buckets, one per category, refilled at the policy's rates (calls per second)."""

    def __init__(
        self,
        rates: Mapping[str, float],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rates = dict(rates)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        now = clock()
        self._tokens = {c: BURST.get(c, 1.0) for c in self._rates}
        self._stamp = dict.fromkeys(self._rates, now)
        self.waited = 0.0  # seconds spent waiting for tokens, for the report and the benchmark

    def take(self, category: str) -> None:
        """Wait until a call of `category` may go out, then spend a token on it."""
        rate = self._rates.get(category)
        if rate is None:
            return
        with self._lock:
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

    def attach(self, client: Any) -> None:
        """Draw a token before each call `client` makes (botocore's before-call event)."""
        service = client.meta.service_model.service_name

        def before_call(model: Any, **_: Any) -> None:
            category = CATEGORY.get(model.name) if service == "ecs" else None
            if category:
                self.take(category)

        client.meta.events.register(f"before-call.{service}", before_call)
