"""tdgc.report.metrics: a run's summary as Embedded Metric Format documents, held to the specification."""

from __future__ import annotations

import json
from typing import Any

from tdgc.report.metrics import NAMESPACE, QUOTA_FAMILIES, emf
from tests.helpers import NOW, emf_problems


def _family(n: int, target: str) -> dict[str, Any]:
    return {
        "target": target,
        "family": f"etl-{n:02}",
        "revisions_held": {"ACTIVE": 1, "INACTIVE": n},
        "highest_revision": 900_000 + n,
        "quota_headroom": 100_000 - n,
        "registered_per_day": 10.0,
        "days_to_quota": 10_000 - n,
    }


def _summary(families: int) -> dict[str, Any]:
    role = "arn:aws:iam::111122223333:role/tdgc"
    return {
        "mode": "apply",
        "generated_at": NOW.isoformat(),
        "summary": {"deregistered": 7, "deleted": 5, "results": {"done": 9, "pending": 3, "failed": 2, "skipped": 4}},
        "targets": [
            {"target": "us-east-1", "account": None, "region": "us-east-1", "status": "ok"},
            {"target": f"{role} eu-west-1", "account": "111122223333", "region": "eu-west-1", "status": "failed"},
        ],
        # The closest first, as tdgc.job.summary_of gives them.
        "closest_to_quota": [_family(n, "us-east-1" if n % 2 else f"{role} eu-west-1") for n in range(families)][::-1],
    }


def test_every_document_meets_the_specification_and_is_one_json_line() -> None:
    documents = emf(_summary(30))
    for document in documents:
        assert emf_problems(document) == []
        assert "\n" not in json.dumps(document)
        assert document["_aws"]["Timestamp"] == int(NOW.timestamp() * 1000)
        assert {d["Namespace"] for d in document["_aws"]["CloudWatchMetrics"]} == {NAMESPACE}


def test_the_run_document_counts_and_the_smallest_headroom() -> None:
    run, *families = emf(_summary(30), "tdgc-prod")
    # One series per deployment, whatever the targets: what the templates' alarms watch.
    assert run["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Function"]] and run["Function"] == "tdgc-prod"
    assert emf_problems(run) == []
    values = {m["Name"]: run[m["Name"]] for m in run["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    # Failed: two actions, and the one target an AWS error stopped.
    assert values == {"Deregistered": 7, "Deleted": 5, "Failed": 3, "Deferred": 4, "QuotaHeadroomMin": 100_000 - 29}
    assert len(families) == QUOTA_FAMILIES


def test_each_family_document_has_its_dimensions_at_the_top_level() -> None:
    _, *families = emf(_summary(3))
    by_family = {d["Family"]: d for d in families}
    assumed, own = by_family["etl-02"], by_family["etl-01"]
    assert assumed["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Account", "Region", "Family"]]
    assert (assumed["Account"], assumed["Region"], assumed["QuotaHeadroom"]) == ("111122223333", "eu-west-1", 99_998)
    assert own["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Region", "Family"]]  # the caller's account
    assert own["Region"] == "us-east-1" and "Account" not in own


def test_a_run_with_no_family_publishes_its_counts_only() -> None:
    (run,) = emf(_summary(0))
    assert emf_problems(run) == []
    assert run["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]]  # outside Lambda: no function to name
    assert "QuotaHeadroomMin" not in run


def test_the_checker_finds_what_breaks_the_specification() -> None:
    good = emf(_summary(1))[1]
    missing_value = {k: v for k, v in good.items() if k != "QuotaHeadroom"}
    missing_dimension = {k: v for k, v in good.items() if k != "Family"}
    bad_unit = json.loads(json.dumps(good).replace('"Count"', '"Apples"'))
    no_timestamp = {**good, "_aws": {"CloudWatchMetrics": good["_aws"]["CloudWatchMetrics"]}}
    for broken in (missing_value, missing_dimension, bad_unit, no_timestamp):
        assert emf_problems(broken) != []
