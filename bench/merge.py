"""Organisation mode's merge: N targets' reports in S3 merged into one, as `tdgc.job.merge_from_s3` does it, beside
the same merge with a new S3 client for every object (what it did before `S3Access` kept one client).

Each report is a small one (one family, five decisions) in the simulator's S3, in process; the merge writes the
organisation's JSON and Markdown reports back there. What this measures is tdgc's own CPU per target, which a
real merge pays on top of S3's latency (that latency, hidden 16 reads at a time, is not simulated here).

    python bench/merge.py              # 100, 400 and 1,600 targets
    python bench/merge.py --targets 5000

Columns: CPU s and wall s for the merge alone (the reports are written beforehand); GETs = the reports read
(each once); clients = S3 clients made during the merge; ratio = the per-object client's CPU / the kept
client's.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import boto3

from tdgc.aws.connection import caller
from tdgc.aws.connection import session as aws_session
from tdgc.aws.pacing import unpaced
from tdgc.aws.s3 import S3Access, s3_access
from tdgc.job import merge_from_s3, target_report, targets_of
from tdgc.local.simulator import Simulator

REPORT = "s3://tdgc-bench/reports/"


@dataclass(frozen=True)
class ClientPerObject(S3Access):
    """The merge as it was: a new client for every S3 call."""

    def client(self) -> Any:
        return self.connection.client("s3", unpaced())


def report(account: str, region: str) -> dict[str, Any]:
    decisions = [
        {"arn": f"arn:aws:ecs:{region}:{account}:task-definition/web:{n}", "family": "web", "revision": n,
         "status": "ACTIVE", "action": "keep" if n > 3 else "deregister", "reason": "bench", "registered_at": None,
         "deregistered_at": None, "in_use_by": [], "why": "newest" if n > 3 else "not_newest"}
        for n in range(1, 6)
    ]  # fmt: skip
    results = {"done": 3, "pending": 0, "failed": 0, "skipped": 0}
    summary = {"families": 1, "revisions": 5, "keep": 2, "deregister": 3, "delete": 0, "protected": 0,
               "results": results}  # fmt: skip
    section = {"target": f"{account} {region}", "account": account, "region": region, "status": "ok",
               "error": None, "summary": summary}  # fmt: skip
    return {"version": 1, "tool": "tdgc", "mode": "apply", "regions": [region], "policy": {}, "decisions": decisions,
            "outcomes": [], "notes": [], "incomplete": [], "interrupted": None, "targets": [section],
            "summary": summary}  # fmt: skip


def measure(count: int, per_object: bool) -> tuple[float, float, int, int]:
    with Simulator() as sim:
        sim.create_bucket("tdgc-bench")
        targets = targets_of([f"{n:012d}" for n in range(1, count + 1)], ["us-east-1"])
        s3 = boto3.client("s3", region_name="us-east-1")
        for t in targets:
            key = target_report(REPORT, "exec-1", t["account"], t["region"]).removeprefix("s3://tdgc-bench/")
            s3.put_object(Bucket="tdgc-bench", Key=key, Body=json.dumps(report(t["account"], t["region"])).encode())
        access = s3_access(caller(aws_session(None), None, "us-east-1"), "123456789012", None)
        if per_object:
            access = ClientPerObject(access.connection, access.protection)
        made: list[str] = []
        real = access.connection.session.client
        access.connection.session.client = lambda *a, **k: made.append(a[0]) or real(*a, **k)  # type: ignore[method-assign]
        sim.s3_requests.clear()
        cpu, wall = time.process_time(), time.perf_counter()
        merged = merge_from_s3(REPORT, "exec-1", targets, access)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        assert merged["targets"] == count and merged["summary"]["results"]["done"] == 3 * count
        gets = sum(r.method == "GET" and r.key.endswith("-us-east-1.json") for r in sim.s3_requests)
        return cpu, wall, gets, len(made)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, action="append", help="targets to merge (repeatable)")
    args = parser.parse_args()
    for name, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench")):
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    print(f"{'targets':>8} {'merge':<16} {'CPU s':>7} {'wall s':>7} {'GETs':>6} {'clients':>8} {'ratio':>6}")
    for count in args.targets or [100, 400, 1600]:
        kept = measure(count, per_object=False)
        each = measure(count, per_object=True)
        for label, (cpu, wall, gets, clients) in (("one client", kept), ("client per GET", each)):
            ratio = cpu / kept[0]
            print(f"{count:>8,} {label:<16} {cpu:>7.2f} {wall:>7.2f} {gets:>6,} {clients:>8,} {ratio:>6.2f}")


if __name__ == "__main__":
    main()
