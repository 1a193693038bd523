"""Scale: how tdgc's plan grows with the account. A script that prints figures, not a test.

Each account is built in the simulator and served by a process of its own, and `tdgc plan` runs as another
(bench/harness.py), so its peak RSS is tdgc's alone. Reads are unpaced (the simulator does not throttle
here): this measures tdgc's own time and memory, and the calls it makes.

    python bench/scale.py                # the accounts of the README's table
    python bench/scale.py --quick        # smaller ones, for a try
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import Account, Measured, Served, measure

NOW = datetime.now(UTC)
KEEP_LAST = "[defaults]\nkeep_last = 5\ndelete_after = false\nprotect_tags = {}\n[references]\n" + "".join(
    f"{s} = false\n" for s in ("services", "tasks", "rules", "schedules", "state_machines", "stacks")
)
AGED = KEEP_LAST.replace("delete_after = false", 'deregister_after = "30 days"\ndelete_after = "180 days"')


def one_family(sim: Any, size: int) -> None:
    start = NOW - timedelta(days=365)
    step = timedelta(days=365) / size
    for n in range(size):  # an orchestrator's family: register, run, deregister; the last 1% ACTIVE
        at = start + step * n
        if n < size * 0.99:
            sim.seed("orchestrated", registered_at=at, status="INACTIVE", deregistered_at=at + timedelta(minutes=5))
        else:
            sim.seed("orchestrated", registered_at=at)


def many_families(sim: Any, families: int, each: int) -> None:
    for f in range(families):
        for n in range(each):
            at = NOW - timedelta(days=each - n)
            status = "INACTIVE" if n < each // 2 else "ACTIVE"
            sim.seed(f"svc-{f:04d}", registered_at=at, status=status, deregistered_at=at + timedelta(hours=1))


def plan(served: Served, policy: str) -> tuple[Measured, dict[str, int]]:
    """One `tdgc plan` subprocess, measured, and its summary."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.toml"
        path.write_text(policy)
        rates = [a for c, r in (("read", 50), ("modify", 20), ("delete", 5)) for a in ("--rate", f"{c}={r}")]
        ran = measure([sys.executable, "-m", "tdgc", "plan", str(path), "--output", "jsonl", *rates], served.env())
    if ran.status != 0:
        raise SystemExit(f"tdgc plan failed with status {ran.status}")
    return ran, json.loads(ran.last_line)["summary"]


def accounts(quick: bool) -> list[tuple[str, str, list[int], str]]:
    sizes = [10_000, 30_000] if quick else [100_000, 300_000, 1_000_000]
    found = [(f"1 family x {n:,}", "scale:one_family", [n], KEEP_LAST) for n in sizes]
    found.append((f"1 family x {sizes[0]:,}", "scale:one_family", [sizes[0]], AGED))
    found.append(
        ("100 families x 100", "scale:many_families", [100, 100], AGED)
        if quick
        else ("1,000 families x 100", "scale:many_families", [1000, 100], AGED)
    )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(
        f"{'account':<24}{'policy':<10}{'revisions':>11}{'list':>8}{'describe':>10}{'wall s':>9}"
        f"{'us/rev':>8}{'peak RSS MB':>13}"
    )
    for name, builder, build_args, policy in accounts(args.quick):
        with Account(builder, build_args) as served:
            ran, summary = plan(served, policy)
        assert summary["revisions"] == served.revisions, (summary, served.revisions)
        calls = served.calls
        lists = calls.get("ListTaskDefinitions", 0) + calls.get("ListTaskDefinitionFamilies", 0)
        describes = calls.get("DescribeTaskDefinition", 0)
        label = "keep-last" if policy == KEEP_LAST else "ages"
        print(
            f"{name:<24}{label:<10}{served.revisions:>11,}{lists:>8,}{describes:>10,}{ran.wall:>9.1f}"
            f"{ran.wall / served.revisions * 1e6:>8.0f}{ran.rss_mb:>13.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
