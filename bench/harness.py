"""What the benchmarks share: an account served by a process of its own, and a tool run as a measured subprocess.

The account is built in tdgc's simulator and served over HTTP on loopback by a server process; each tool runs
as another subprocess pointed at it with AWS_ENDPOINT_URL, so its peak RSS (from wait4) is its own. This
module imports neither moto nor tdgc unless it is the server.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class Served:
    url: str
    revisions: int
    calls: dict[str, int] = field(default_factory=dict)  # by operation, filled in when the server stops
    throttled: dict[str, int] = field(default_factory=dict)  # ThrottlingExceptions AWS's buckets gave
    cpu: float = 0.0  # seconds of CPU the server spent answering, filled in when it stops

    def env(self) -> dict[str, str]:
        return {**os.environ, **CREDENTIALS, "AWS_ENDPOINT_URL": self.url}

    def ecs(self, **config: Any) -> Any:
        """An ECS client of this account (for the benchmark itself; the tools make their own)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "ecs",
            endpoint_url=self.url,
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=Config(**config),
        )


class Account:
    """`with Account("module:builder", args) as served:` — the account built and served until the block ends.

    `builder` names a function in a module of bench/ that seeds a Simulator; `time_scale` switches AWS's
    throttling on, its refill that many times faster (Simulator.throttle).
    """

    def __init__(self, builder: str, args: Sequence[Any] = (), time_scale: float | None = None) -> None:
        self._argv = [sys.executable, __file__, builder, json.dumps(list(args)), json.dumps(time_scale)]

    def __enter__(self) -> Served:
        self._proc = subprocess.Popen(self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        ready = json.loads(self._proc.stdout.readline())
        self.served = Served(ready["url"], ready["revisions"])
        return self.served

    def __exit__(self, *exc: object) -> None:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.close()
        tail = self._proc.stdout.readline()
        self._proc.wait()
        if tail:
            counts = json.loads(tail)
            self.served.calls, self.served.throttled = counts["calls"], counts["throttled"]
            self.served.cpu = counts["cpu"]


@dataclass
class Measured:
    wall: float  # seconds
    rss_mb: float  # peak resident set size
    status: int  # exit status
    last_line: str  # of its stdout (tdgc's jsonl summary)
    cpu: float = 0.0  # seconds of CPU, user and system


def measure(argv: Sequence[str], env: Mapping[str, str]) -> Measured:
    """Run one tool to its end; its stdout is read as it streams, keeping only the last line."""
    started = time.perf_counter()
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=dict(env), text=True)
    assert proc.stdout is not None
    last = ""
    for line in proc.stdout:
        last = line or last
    _, status, usage = os.wait4(proc.pid, 0)
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(time.perf_counter() - started, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), last, cpu)


def _serve(builder: str, args: list[Any], time_scale: float | None) -> None:
    sys.path.insert(0, HERE)
    from tdgc.local.simulator import Simulator

    module, name = builder.split(":")
    with Simulator() as sim:
        getattr(importlib.import_module(module), name)(sim, *args)
        revisions = sum(1 for _ in sim.revisions())
        sim.calls.clear()
        if time_scale is not None:
            sim.throttle(time_scale=time_scale)
        with sim.serve() as url:
            print(json.dumps({"url": url, "revisions": revisions}), flush=True)
            started = time.process_time()
            sys.stdin.read()
            cpu = time.process_time() - started
        calls = {op.split(":")[-1]: n for op, n in sim.calls.items()}
        print(json.dumps({"calls": calls, "throttled": dict(sim.throttled), "cpu": cpu}), flush=True)


if __name__ == "__main__":
    _serve(sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]))
