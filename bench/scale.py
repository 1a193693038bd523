"""Scale: how tdgc's plan grows with the account. A script that prints figures, not a test.

Each account is built in the simulator and served over HTTP on loopback by a server process of its own;
`tdgc plan` runs as another subprocess, started from this small process (which imports neither moto nor
tdgc), so its peak RSS (from wait4) is tdgc's alone. Reads are unpaced (the simulator does not throttle
here): this measures tdgc's own time and memory, and the calls it makes.

    python bench/scale.py                # the accounts of the README's table
    python bench/scale.py --quick        # smaller ones, for a try
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

NOW = datetime.now(UTC)
KEEP_LAST = "[defaults]\nkeep_last = 5\ndelete_after = false\nprotect_tags = {}\n[references]\n" + "".join(
    f"{s} = false\n" for s in ("services", "tasks", "rules", "schedules", "state_machines", "stacks")
)
AGED = KEEP_LAST.replace("delete_after = false", 'deregister_after = "30 days"\ndelete_after = "180 days"')


def one_family(size: int) -> Callable[[Any], None]:
    def build(sim: Any) -> None:
        start = NOW - timedelta(days=365)
        step = timedelta(days=365) / size
        for n in range(size):  # an orchestrator's family: register, run, deregister; the last 1% ACTIVE
            at = start + step * n
            if n < size * 0.99:
                sim.seed("orchestrated", registered_at=at, status="INACTIVE", deregistered_at=at + timedelta(minutes=5))
            else:
                sim.seed("orchestrated", registered_at=at)

    return build


def many_families(families: int, each: int) -> Callable[[Any], None]:
    def build(sim: Any) -> None:
        for f in range(families):
            for n in range(each):
                at = NOW - timedelta(days=each - n)
                status = "INACTIVE" if n < each // 2 else "ACTIVE"
                sim.seed(f"svc-{f:04d}", registered_at=at, status=status, deregistered_at=at + timedelta(hours=1))

    return build


def plan(url: str, policy: str) -> tuple[float, int, dict[str, int]]:
    """Wall seconds, peak RSS in KiB, and the summary of one `tdgc plan` subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.toml"
        path.write_text(policy)
        env = {**os.environ, "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
        rates = [a for c in ("read", "modify", "delete") for a in ("--rate", f"{c}=1000000")]
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "tdgc", "plan", str(path), "--output", "jsonl", *rates],
                                stdout=subprocess.PIPE, env=env)  # fmt: skip
        assert proc.stdout is not None
        last = b""
        for line in proc.stdout:  # streamed: keep only the summary line
            last = line
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        if status != 0:
            raise SystemExit(f"tdgc plan failed with status {status}")
        return wall, usage.ru_maxrss, json.loads(last)["summary"]


def accounts(quick: bool) -> list[tuple[str, Callable[[Any], None], str]]:
    sizes = [10_000, 30_000] if quick else [100_000, 300_000, 1_000_000]
    found: list[tuple[str, Callable[[Any], None], str]] = [
        (f"1 family x {n:,}", one_family(n), KEEP_LAST) for n in sizes
    ]
    found.append((f"1 family x {sizes[0]:,}", one_family(sizes[0]), AGED))
    found.append(("100 families x 100", many_families(100, 100), AGED) if quick
                 else ("1,000 families x 100", many_families(1000, 100), AGED))  # fmt: skip
    return found


def serve(index: int, quick: bool) -> None:
    """The server process: build one account, print its URL and size, serve until stdin closes, print calls."""
    from tdgc.simulator import Simulator

    _, build, _ = accounts(quick)[index]
    with Simulator() as sim:
        build(sim)
        revisions = sum(1 for _ in sim.revisions())
        sim.calls.clear()
        with sim.serve() as url:
            print(json.dumps({"url": url, "revisions": revisions}), flush=True)
            sys.stdin.read()
        print(json.dumps({op.split(":")[-1]: n for op, n in sim.calls.items()}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.quick)
        return
    print(f"{'account':<24}{'policy':<10}{'revisions':>11}{'list':>8}{'describe':>10}{'wall s':>9}"
          f"{'us/rev':>8}{'peak RSS MB':>13}")  # fmt: skip
    for index, (name, _, policy) in enumerate(accounts(args.quick)):
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(index), *(["--quick"] * args.quick)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert server.stdin is not None and server.stdout is not None
        ready = json.loads(server.stdout.readline())
        wall, rss_kib, summary = plan(ready["url"], policy)
        server.stdin.close()
        calls = json.loads(server.stdout.readline())
        server.wait()
        assert summary["revisions"] == ready["revisions"], (summary, ready)
        lists = calls.get("ListTaskDefinitions", 0) + calls.get("ListTaskDefinitionFamilies", 0)
        describes = calls.get("DescribeTaskDefinition", 0)
        label = "keep-last" if policy == KEEP_LAST else "ages"
        print(f"{name:<24}{label:<10}{ready['revisions']:>11,}{lists:>8,}{describes:>10,}{wall:>9.1f}"
              f"{wall / ready['revisions'] * 1e6:>8.0f}{rss_kib / 1024:>13.0f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
