"""An organisation at once: N member accounts with AWS's throttling on, applied one after another and in parallel.

Every account is alike (one family of EACH old revisions, all but 2 to deregister) and lives in one simulator
served by a process of its own (bench/harness.py), with AWS's buckets per account and Region refilled a time
scale's times faster (5, as bench/peers.py does, then 1); tdgc runs as a subprocess (`tdgc.job.run_job`, a role
per account) with its default rates scaled by the same factor, so its own pacing is what bounds each account.

    python bench/org.py                 # scale 5: 1 account, 8 one after another, 8 and 32 in parallel;
                                        # scale 1 (AWS's own rates): 8 and 32 in parallel (7 minutes in all)
    python bench/org.py --sequential-all  # N = 32 one after another too (about 10 minutes more)
    python bench/org.py --each 200 --parallel-only --time-scale 5  # larger backlogs, in parallel only

The time scale compresses AWS's time, not the work: at 5, the simulator answers 32 accounts' calls five times
as fast as AWS would let them come, and tdgc makes them five times as fast, both on this machine's cores.

Columns: wall = the run's wall time (the subprocess's, start-up included); bound = the slowest target's token
bucket bound (its deregistrations beyond tdgc's burst, at tdgc's modify rate), which no schedule can beat;
ratio = wall / bound (the goal for parallel: at most 1.2); calls = the API calls the simulator answered;
tdgc CPU and sim CPU = seconds of CPU tdgc's process and the simulator's spent (on a machine of C cores, the wall
time is at least their sum / C: the simulator's share is what AWS would spend on its side); RSS = the run's peak
resident set size.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from harness import Account, measure

from tdgc.aws.pacing import AWS_BUCKETS, BURST
from tdgc.policy import DEFAULT_RATES

TIME_SCALE = 5.0  # as bench/peers.py
SCALES = [TIME_SCALE, 1.0]  # compressed, and AWS's own rates (the machine's CPU then no longer bounds N = 32)
EACH = 60  # revisions in each account's family; all but KEEP are deregistered
KEEP = 2
FIRST_ACCOUNT = 100_000_000_000
NOW = datetime.now(UTC)


def accounts(sim: Any, n: int, each: int) -> None:
    """Run in the server process: n accounts, each with one family of `each` revisions, 200 to 100 days old."""
    for a in range(n):
        for i in range(each):
            sim.seed("etl", registered_at=NOW - timedelta(days=200) + timedelta(hours=i), account=account(a))


def account(n: int) -> str:
    return str(FIRST_ACCOUNT + n)


def policy(scale: float) -> str:
    """tdgc's default rates scaled by `scale` (within what a policy may set: AWS's bursts)."""
    rates = "\n".join(f"{c} = {min(DEFAULT_RATES[c] * scale, AWS_BUCKETS[c][0]):g}" for c in DEFAULT_RATES)
    return f'[defaults]\nkeep_last = {KEEP}\nderegister_after = "30 days"\ndelete_after = false\n[rate]\n{rates}\n'


def child(n: int, parallel: int, each: int, scale: float) -> None:
    """Run in the measured subprocess: the job, then its targets' deregistrations as the last line."""
    from tdgc.job import Job, run_job

    roles = tuple(f"arn:aws:iam::{account(a)}:role/tdgc" for a in range(n))
    job = Job(policy_text=policy(scale), apply=True, role_arns=roles, parallel=parallel, regions=("us-east-1",))
    summary = run_job(job)
    done = [t["summary"]["results"]["done"] for t in summary["targets"]]
    print(json.dumps({"exit_code": summary["exit_code"], "done": done, "each": each}))


def bound(done: list[int], scale: float) -> float:
    """The slowest target's token-bucket bound: its deregistrations beyond tdgc's burst at tdgc's modify rate."""
    rate = DEFAULT_RATES["modify"] * scale
    return max((max(0.0, d - BURST["modify"]) / rate for d in done), default=0.0)


def one(n: int, parallel: int, each: int, scale: float) -> str:
    argv = [sys.executable, __file__, "--child", str(n), str(parallel), str(each), "--time-scale", str(scale)]
    with Account("org:accounts", [n, each], time_scale=scale) as served:
        ran = measure(argv, served.env())
    result: dict[str, Any] = {"exit_code": ran.status, "done": []}
    if ran.last_line.startswith("{"):
        result = json.loads(ran.last_line)
    need = bound(result["done"], scale)
    ratio = f"{ran.wall / need:.2f}" if need else "-"
    done = sum(result["done"])
    throttled = sum(served.throttled.values())
    calls = sum(served.calls.values())
    return (
        f"{n:>4}{parallel:>10}{done:>7}{ran.wall:>9.1f}{need:>9.1f}{ratio:>7}{calls:>7}{throttled:>10}"
        f"{ran.cpu:>10.1f}{served.cpu:>9.1f}{ran.rss_mb:>8.0f}{result['exit_code']:>6}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential-all", action="store_true", help="N = 32 one after another too")
    parser.add_argument("--each", type=int, default=EACH, help="revisions in each account's family")
    parser.add_argument("--parallel-only", action="store_true", help="skip the runs one after another")
    parser.add_argument(
        "--time-scale", type=float, action="append", help=f"AWS's refill this many times faster (default: {SCALES})"
    )
    parser.add_argument("--child", nargs=3, type=int, metavar=("N", "PARALLEL", "EACH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    scales = args.time_scale or SCALES
    if args.child:
        n, parallel, each = args.child
        child(n, parallel, each, scales[0])
        return
    print(
        f"time scale: AWS's buckets per account and Region refill that many times faster, tdgc's rates scaled "
        f"alike; {args.each} revisions an account, {args.each - KEEP} to deregister"
    )
    print(f"{os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.1f}")
    print(
        f"{'scale':>5}{'N':>4}{'parallel':>10}{'done':>7}{'wall s':>9}{'bound s':>9}{'ratio':>7}{'calls':>7}"
        f"{'throttled':>10}{'tdgc CPU':>10}{'sim CPU':>9}{'RSS MB':>8}{'exit':>6}"
    )
    for scale in scales:
        # One after another at AWS's own rates takes N times the bound: only where time is compressed.
        sequential = not args.parallel_only and scale > 1
        runs = [(1, 1), (8, 1)] * sequential + [(8, 8), (32, 32)] + [(32, 1)] * (sequential and args.sequential_all)
        for n, parallel in runs:
            print(f"{scale:>5g}{one(n, parallel, args.each, scale)}", flush=True)


if __name__ == "__main__":
    main()
