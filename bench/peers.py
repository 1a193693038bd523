"""Peers: tdgc, cloud-custodian and a plain boto3 script on the same throttled accounts. Prints figures.

Each account is built in the simulator with AWS's throttling on (docs/design.md §2 buckets, refilled TIME_SCALE
times faster so that a run takes a minute rather than an hour), served by a process of its own; each tool
runs as a subprocess against it (bench/harness.py). tdgc's rates are its defaults scaled by the same factor.
During every apply a deployer registers revisions at a steady rate (a quarter of the modify bucket, as a busy
CI does) with retries off, and counts the throttles it gets.

    python bench/peers.py                  # cloud-custodian is installed in bench/.c7n-venv on first use
    python bench/peers.py --quick          # smaller accounts
    python bench/peers.py --no-c7n         # without cloud-custodian (no download)

Columns: td reads = ListTaskDefinitionFamilies + ListTaskDefinitions + DescribeTaskDefinition, of which lists =
the first two; other reads =
every other read (references, STS); bound = the token-bucket lower bound for the tool's own mutations at the
rate it is meant to use (tdgc: its default share; the peers, which do not pace: AWS's full bucket), each
bucket draining on its own; ratio = wall / bound; in use = revisions a service still ran that the tool
deregistered.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from harness import HERE, Account, Served, measure

from tdgc.aws.pacing import AWS_BUCKETS, BURST
from tdgc.policy import DEFAULT_RATES

TIME_SCALE = 20.0
DEPLOYER_SHARE = 0.25  # of the modify bucket's sustained rate
C7N = "c7n==0.9.53"
C7N_VENV = Path(HERE) / ".c7n-venv"
NOW = datetime.now(UTC)
KEEP, DEREGISTER_DAYS, DELETE_DAYS = 10, 30, 90
IN_USE_SERVICE = ("prod", "pinned")


# ---- accounts (run in the server process) ----------------------------------------------------------------


def orchestrator(sim: Any, families: int, each: int) -> None:
    """An orchestrator's families over 200 days; the older half deregistered after its run."""
    for f in range(families):
        for n in range(each):
            at = NOW - timedelta(days=200) * (each - n) / each
            if n < each // 2:
                sim.seed(f"etl-{f}", registered_at=at, status="INACTIVE", deregistered_at=at + timedelta(hours=1))
            else:
                sim.seed(f"etl-{f}", registered_at=at)
    _pin(f"etl-0:{each // 2 + each // 8}")  # an ACTIVE revision older than the cut-off that a service runs


def services(sim: Any, families: int, each: int) -> None:
    """Services deployed weekly, every revision left ACTIVE."""
    for f in range(families):
        for n in range(each):
            sim.seed(f"svc-{f:03d}", registered_at=NOW - timedelta(days=7 * (each - n)))
    _pin(f"svc-000:{each // 2}")


def _pin(revision: str) -> None:
    ecs = boto3.client("ecs", region_name="us-east-1")
    ecs.create_cluster(clusterName=IN_USE_SERVICE[0])
    ecs.create_service(
        cluster=IN_USE_SERVICE[0], serviceName=IN_USE_SERVICE[1], taskDefinition=revision, desiredCount=1
    )


# ---- the tools (run as subprocesses) ---------------------------------------------------------------------


def tdgc(mode: str, delete: bool, tmp: Path) -> list[str]:
    policy = tmp / "policy.toml"
    delete_after = f'"{DELETE_DAYS} days"' if delete else "false"
    policy.write_text(
        f'[defaults]\nkeep_last = {KEEP}\nderegister_after = "{DEREGISTER_DAYS} days"\n'
        f"delete_after = {delete_after}\nprotect_tags = {{}}\n"
    )
    rates = [a for c, r in DEFAULT_RATES.items() for a in ("--rate", f"{c}={r * TIME_SCALE:g}")]
    extra = ["--yes", "--archive", str(tmp / "archive")] if mode == "apply" else []
    return [sys.executable, "-m", "tdgc", mode, str(policy), "--output", "jsonl", *rates, *extra]


def script(mode: str, delete: bool, tmp: Path) -> list[str]:
    days = [str(DEREGISTER_DAYS), *([str(DELETE_DAYS)] if delete else [])]
    return [
        sys.executable,
        str(Path(HERE) / "peer_script.py"),
        str(KEEP),
        *days,
        *(["--dry-run"] if mode == "plan" else []),
    ]


def custodian(mode: str, delete: bool, tmp: Path) -> list[str] | None:
    if delete:
        return None  # c7n lists ACTIVE revisions only: it cannot see what it would delete
    policy = tmp / "policy.yml"
    policy.write_text(f"""policies:
  - name: bench
    resource: aws.ecs-task-definition
    filters:
      - status: ACTIVE
      - {{type: reduce, group-by: family, sort-by: revision, order: desc, discard: {KEEP}}}
      - {{type: value, key: registeredAt, value_type: age, op: greater-than, value: {DEREGISTER_DAYS}}}
    actions:
      - type: delete
""")
    return [
        str(C7N_VENV / "bin" / "custodian"),
        "run",
        "--cache-period",
        "0",
        "-s",
        str(tmp / "c7n"),
        "--region",
        "us-east-1",
        *(["--dryrun"] if mode == "plan" else []),
        str(policy),
    ]


def install_c7n() -> None:
    if not (C7N_VENV / "bin" / "custodian").exists():
        print(f"installing {C7N} into {C7N_VENV} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(C7N_VENV)], check=True)
        subprocess.run([str(C7N_VENV / "bin" / "pip"), "install", "-q", C7N], check=True)


# ---- the deployer ---------------------------------------------------------------------------------------


class Deployer(threading.Thread):
    """Registers a revision at a steady rate, retries off, counting the throttles it gets."""

    def __init__(self, served: Served, per_second: float) -> None:
        super().__init__(daemon=True)
        self.ecs = served.ecs(retries={"mode": "standard", "max_attempts": 1})
        self.interval = 1 / per_second
        self.registered = self.throttled = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        tick = time.monotonic()
        while not self.stopping.is_set():
            try:
                self.ecs.register_task_definition(
                    family="deployer", containerDefinitions=[{"name": "app", "image": "app:1", "memory": 128}]
                )
                self.registered += 1
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ThrottlingException":
                    raise
                self.throttled += 1
            tick += self.interval
            self.stopping.wait(max(0.0, tick - time.monotonic()))

    def stop(self) -> None:
        self.stopping.set()
        self.join()


# ---- the table --------------------------------------------------------------------------------------------

LISTS = ("ListTaskDefinitionFamilies", "ListTaskDefinitions")
TD_READS = (*LISTS, "DescribeTaskDefinition")
MUTATIONS = {"DeregisterTaskDefinition": "modify", "DeleteTaskDefinitions": "delete"}


def bound(calls: dict[str, int], paced: bool) -> float:
    """Seconds the buckets need for these mutations at least, each bucket draining on its own."""
    need = 0.0
    for operation, category in MUTATIONS.items():
        aws_burst, aws_rate = AWS_BUCKETS[category]
        rate = (DEFAULT_RATES[category] if paced else aws_rate) * TIME_SCALE
        burst = BURST[category] if paced else aws_burst
        need = max(need, max(0, calls.get(operation, 0) - burst) / rate)
    return need


HEADER = (
    f"{'account':<30}{'tool':<14}{'mode':<7}{'td reads':>9}{'lists':>7}{'other':>7}{'dereg':>7}{'delete':>7}"
    f"{'throttled':>10}{'deployer':>10}{'wall s':>8}{'bound s':>8}{'ratio':>7}{'in use':>7}{'RSS MB':>8}"
    f"{'exit':>5}"
)


def row(
    account: str,
    tool: str,
    mode: str,
    served: Served,
    wall: float,
    rss: float,
    status: int,
    deployer: Deployer | None,
    in_use: int,
) -> str:
    calls = {op: n for op, n in served.calls.items() if op != "RegisterTaskDefinition"}  # the deployer's
    td_reads = sum(calls.get(op, 0) for op in TD_READS)
    other = sum(n for op, n in calls.items() if op not in TD_READS and op not in MUTATIONS)
    throttled = sum(n for op, n in served.throttled.items() if op != "RegisterTaskDefinition")
    mutations = sum(calls.get(op, 0) for op in MUTATIONS)
    need = bound(calls, paced=tool == "tdgc") if mode == "apply" else 0.0
    ratio = f"{wall / need:.2f}" if need > 0 and mutations else "-"
    dep = f"{deployer.throttled}/{deployer.registered + deployer.throttled}" if deployer else "-"
    lists = sum(calls.get(op, 0) for op in LISTS)
    return (
        f"{account:<30}{tool:<14}{mode:<7}{td_reads:>9,}{lists:>7,}{other:>7,}"
        f"{calls.get('DeregisterTaskDefinition', 0):>7,}{calls.get('DeleteTaskDefinitions', 0):>7,}"
        f"{throttled:>10,}{dep:>10}{wall:>8.1f}"
        f"{(f'{need:.1f}' if need else '-'):>8}{ratio:>7}{in_use:>7}{rss:>8.0f}{status:>5}"
    )


def in_use_deregistered(served: Served) -> int:
    """1 if the revision the pinned service runs is no longer ACTIVE."""
    ecs = served.ecs()
    service = ecs.describe_services(cluster=IN_USE_SERVICE[0], services=[IN_USE_SERVICE[1]])["services"][0]
    td = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    return int(td["status"] != "ACTIVE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-c7n", action="store_true")
    args = parser.parse_args()
    tools = {"tdgc": tdgc, "boto3 script": script, **({} if args.no_c7n else {"c7n": custodian})}
    if not args.no_c7n:
        install_c7n()
    scale = 0.25 if args.quick else 1.0
    accounts = [
        (f"orchestrator 3x{int(800 * scale)}", "peers:orchestrator", [3, int(800 * scale)], False),
        (f"orchestrator 3x{int(800 * scale)} +delete", "peers:orchestrator", [3, int(800 * scale)], True),
        (f"services {int(60 * scale)}x30", "peers:services", [int(60 * scale), 30], False),
    ]
    print(
        f"time scale {TIME_SCALE:g}: AWS's buckets refill {TIME_SCALE:g}x faster; tdgc's rates scaled alike; "
        f"deployer at {DEPLOYER_SHARE * TIME_SCALE:g}/s"
    )
    print(HEADER, flush=True)
    for name, builder, build_args, delete in accounts:
        for tool, command in tools.items():
            for mode in ("plan", "apply"):
                with tempfile.TemporaryDirectory() as tmp:
                    argv = command(mode, delete, Path(tmp))
                    if argv is None:
                        print(f"{name:<30}{tool:<14}{mode:<7}  cannot express it (lists ACTIVE revisions only)")
                        continue
                    with Account(builder, build_args, time_scale=TIME_SCALE) as served:
                        deployer = Deployer(served, DEPLOYER_SHARE * TIME_SCALE) if mode == "apply" else None
                        if deployer:
                            deployer.start()
                        ran = measure(argv, served.env())
                        if deployer:
                            deployer.stop()
                        in_use = in_use_deregistered(served)
                    served.calls["DescribeServices"] -= 1  # in_use_deregistered's own two reads
                    served.calls["DescribeTaskDefinition"] -= 1
                    print(row(name, tool, mode, served, ran.wall, ran.rss_mb, ran.status, deployer, in_use), flush=True)


if __name__ == "__main__":
    main()
