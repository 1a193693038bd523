"""CloudWatch metrics from a finished run, as Embedded Metric Format (EMF) documents: a JSON line printed to a
Lambda's log is a metric, with no client, no call and no dependency.

One document for the run, with the dimension `Function` (the Lambda function's name: one series per deployment,
whatever the targets and however many organisation children ran; none outside Lambda):
`Deregistered` (deregisters done), `Deleted` (deletes ECS accepted), `Failed` (actions failed, plus targets an AWS
error stopped), `Deferred` (actions skipped: the time budget, or a reference seen just before acting), and
`QuotaHeadroomMin`, the least headroom of any family. Then one document per family for the QUOTA_FAMILIES
closest to the quota, `QuotaHeadroom` with the dimensions `Family`, and `Account` and `Region` where known:
EMF takes a dimension's value from the document's top level, so each family needs a document of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

NAMESPACE = "tdgc"
QUOTA_FAMILIES = 20  # the families whose headroom is published, the closest to the quota


def _document(timestamp: int, dimensions: list[str], values: Mapping[str, Any], **members: str) -> dict[str, Any]:
    directive = {
        "Namespace": NAMESPACE,
        "Dimensions": [dimensions],
        "Metrics": [{"Name": name, "Unit": "Count"} for name in values],
    }
    return {"_aws": {"Timestamp": timestamp, "CloudWatchMetrics": [directive]}, **members, **values}


def emf(result: Mapping[str, Any], function: str | None = None) -> list[dict[str, Any]]:
    """The EMF documents for a run's summary (tdgc.job.summary_of's shape), the run's first; `function` is the
    Lambda function's name.

    `closest_to_quota` there holds the families nearest the quota (tdgc.report.quota), the closest first.
    """
    timestamp = int(datetime.fromisoformat(result["generated_at"]).timestamp() * 1000)
    summary, results = result["summary"], result["summary"]["results"]
    failed_targets = sum(t["status"] == "failed" for t in result.get("targets", []))
    families = list(result.get("closest_to_quota", []))[:QUOTA_FAMILIES]
    values: dict[str, Any] = {
        "Deregistered": summary.get("deregistered", 0),
        "Deleted": summary.get("deleted", 0),
        "Failed": results.get("failed", 0) + failed_targets,
        "Deferred": results.get("skipped", 0),
    }
    if families:
        values["QuotaHeadroomMin"] = min(f["quota_headroom"] for f in families)
    run = {"Function": function} if function else {}
    documents = [_document(timestamp, list(run), values, mode=str(result.get("mode", "plan")), **run)]
    where = {t["target"]: t for t in result.get("targets", [])}
    for family in families:
        target = where.get(family.get("target", ""), {})
        members = {k: str(target[k.lower()]) for k in ("Account", "Region") if target.get(k.lower())}
        members["Family"] = family["family"]
        documents.append(_document(timestamp, list(members), {"QuotaHeadroom": family["quota_headroom"]}, **members))
    return documents
