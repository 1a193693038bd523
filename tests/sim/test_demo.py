from __future__ import annotations

from collections import Counter
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


def test_demo_full_table_reads_in_80_columns(tdgc: Any) -> None:
    ran = tdgc("demo", "--full")
    assert ran.code == 0
    lines = ran.out.splitlines()
    assert lines[0].startswith("tdgc plan · us-east-1 · policy: ")
    assert max(map(len, lines)) <= 80
    assert any(line.startswith("TOTAL (") for line in lines)
    assert any(line.startswith("  web-api:150                  service prod/web-api, ") for line in lines)
    assert "Legend" in lines
    assert lines[-1] == "Nothing was changed. Try plan, apply and restore on it: `tdgc demo --serve`."


def test_the_short_demo_fits_a_terminal_and_shows_the_families_with_the_most_actions(tdgc: Any) -> None:
    ran = tdgc("demo")
    assert ran.code == 0, ran.err
    lines = ran.out.splitlines()
    assert len(ran.err.splitlines()) + len(lines) <= 50 and max(map(len, lines)) <= 80
    assert lines[2].startswith("FAMILY (10 with the most actions)")
    shown = {}
    for line in lines[3:13]:
        name, _revs, _keep, dereg, delete, _prot = line.split()
        shown[name] = int(dereg) + int(delete)
    assert list(shown.values()) == sorted(shown.values(), reverse=True)
    assert lines[13] == "… 35 more families with fewer actions" and lines[14].startswith("TOTAL (45 families)")
    every = Counter(d["family"] for d in tdgc("demo", "--output", "json").json()["decisions"] if d["action"] != "keep")
    assert min(shown.values()) >= max(n for family, n in every.items() if family not in shown)
    assert {name: every[name] for name in shown} == shown
    actions = lines[lines.index("Actions: one of each family above (all 2,054: --full)") + 1 :][:10]
    assert [line.split()[1].split(":")[0] for line in actions] == list(shown)
    legend = ran.out[ran.out.index("\nLegend\n") :]
    explained = [line.split()[0] for line in legend.splitlines()[2:] if line.startswith("  ") and line[2] != " "]
    assert explained == ["REVS", "KEEP", "DEREG", "DELETE", "ACTIVE"]
    assert "PROT: " in legend and "INACTIVE: " in legend
    assert "tdgc apply" not in ran.out and "In use, kept" not in ran.out
    assert lines[-1] == "Nothing was changed. Try plan, apply and restore on it: `tdgc demo --serve`."


def test_the_demo_never_leaves_its_simulated_account(tdgc: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECS", "http://127.0.0.1:9")
    ran = tdgc("demo", "--output", "json")
    assert ran.code == 0, ran.err
    assert ran.json()["summary"]["deregister"] > 0
