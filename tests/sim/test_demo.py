from __future__ import annotations

from typing import Any


def test_demo_plans_a_believable_account(tdgc: Any) -> None:
    ran = tdgc("demo", "--output", "json")
    assert ran.code == 0, ran.err
    report = ran.json()
    summary = report["summary"]
    assert summary["families"] >= 24 and summary["revisions"] >= 2000
    assert summary["deregister"] > 0 and summary["delete"] > 0 and summary["protected"] >= 1
    families = {d["family"] for d in report["decisions"]}
    assert {"airflow-dbt-daily", "prod-payments", "legacy-cron", "web-api"} <= families
    reasons = {d["reason"] for d in report["decisions"]}
    assert "family excluded by rule prod-*" in reasons
    assert "no deregistration time known; kept" in reasons
    assert "protected by tag tdgc:keep=true" in reasons
    in_use = {(d["family"], d["revision"]): d["in_use_by"] for d in report["decisions"] if d["in_use_by"]}
    assert in_use[("web-api", 150)][0] == "service prod/web-api"
    assert in_use[("checkout-svc", 20)] == ["rule default/nightly-reconcile"]
    assert in_use[("search-svc-16", 30)] == ["state machine search-reindex"]
    assert in_use[("worker-queue", 60)][0].startswith("task prod/")
    assert in_use[("web-api", 160)][0] == "express service prod/docs-site"
    [deployment] = in_use[("checkout-svc", 134)]
    assert deployment.startswith("codedeploy checkout/prod (deployment ")
    assert in_use[("checkout-svc", 133)] == [deployment.removesuffix(")") + ", previous revision)"]
    assert in_use[("web-api", 120)] == [
        "terraform state s3://demo-terraform-state/prod/terraform.tfstate (module.web.aws_ecs_service.api)"
    ]
    assert report["incomplete"] == []
    assert all(d["action"] == "keep" for d in report["decisions"] if d["family"].startswith("prod-"))
    assert "Simulated account (no AWS account, no network)" in ran.err


def test_demo_table_reads_in_80_columns(tdgc: Any) -> None:
    ran = tdgc("demo")
    assert ran.code == 0
    lines = ran.out.splitlines()
    assert lines[0].startswith("tdgc plan · us-east-1 · policy: ")
    assert max(map(len, lines)) <= 80
    assert any(line.startswith("TOTAL (") for line in lines)
    assert any(line.startswith("  web-api:150                  service prod/web-api, ") for line in lines)
    assert lines[-1] == "Nothing was changed. `tdgc apply` with the same policy carries it out."


def test_the_demo_never_leaves_its_simulated_account(tdgc: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECS", "http://127.0.0.1:9")
    ran = tdgc("demo", "--output", "json")
    assert ran.code == 0, ran.err
    assert ran.json()["summary"]["deregister"] > 0
