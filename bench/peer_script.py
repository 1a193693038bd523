"""A peer for bench/peers.py: the clean-up script people write, with boto3's defaults. Not part of tdgc.

    python bench/peer_script.py KEEP DEREGISTER_DAYS [DELETE_DAYS] [--dry-run]

Keeps the newest KEEP ACTIVE revisions of every family, describes each of the others and deregisters those
registered more than DEREGISTER_DAYS ago; with DELETE_DAYS, describes each INACTIVE revision and deletes
(ten a call) those deregistered more than DELETE_DAYS ago.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import boto3


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--dry-run"]
    dry_run = "--dry-run" in sys.argv
    keep, deregister_days = int(args[0]), int(args[1])
    delete_days = int(args[2]) if len(args) > 2 else None
    ecs = boto3.client("ecs")
    now = datetime.now(UTC)

    def listed(operation: str, key: str, **params: str) -> list[str]:
        return [item for page in ecs.get_paginator(operation).paginate(**params) for item in page[key]]

    for family in listed("list_task_definition_families", "families", status="ALL"):
        active = listed("list_task_definitions", "taskDefinitionArns", familyPrefix=family, sort="DESC")
        for arn in active[keep:]:
            td = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            if now - td["registeredAt"] > timedelta(days=deregister_days) and not dry_run:
                ecs.deregister_task_definition(taskDefinition=arn)
        if delete_days is None:
            continue
        old = []
        for arn in listed("list_task_definitions", "taskDefinitionArns", familyPrefix=family, status="INACTIVE"):
            td = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            if now - td["deregisteredAt"] > timedelta(days=delete_days):
                old.append(arn)
        for start in range(0, len(old), 10):
            if not dry_run:
                ecs.delete_task_definitions(taskDefinitions=old[start : start + 10])


if __name__ == "__main__":
    main()
