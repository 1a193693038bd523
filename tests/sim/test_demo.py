from __future__ import annotations

import json
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from typing import Any

import pytest

from tests.sim.test_endpoint import subprocess_env, tdgc_command


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
    heading = lines.index("Actions: one of each family above (more: --full; all 2,054: --output json)")
    actions = lines[heading + 1 : heading + 11]
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


def _start_serving() -> tuple[subprocess.Popen[str], list[str]]:
    """`tdgc demo --serve --port 0` in a subprocess, and what it printed up to its last suggested command."""
    command = [sys.executable, "-m", "tdgc", "demo", "--serve", "--port", "0"]
    process = subprocess.Popen(command, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout or ()], daemon=True).start()
    printed: list[str] = []
    while not printed or not printed[-1].startswith("aws ecs "):
        try:
            printed.append(lines.get(timeout=120).rstrip("\n"))
        except queue.Empty:
            process.kill()
            raise AssertionError(f"no endpoint printed: {process.communicate()}") from None
    return process, printed


@pytest.mark.slow
def test_demo_serve_is_an_account_to_plan_against_until_ctrl_c() -> None:
    process, printed = _start_serving()
    exported = dict(line.removeprefix("export ").split("=", 1) for line in printed if line.startswith("export "))
    assert set(exported) == {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}
    assert exported["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    [plan] = [line for line in printed if line.startswith("tdgc plan ")]
    assert any(line.startswith("tdgc apply ") and line.endswith(" --archive ./archive") for line in printed)
    assert any(line.startswith("tdgc restore ./archive/123456789012/us-east-1/") for line in printed)

    # The printed command as pasted, on two families so that it is quick.
    env = {**subprocess_env(), **exported}
    two_families = ["--family", "airflow-dbt-daily", "--family", "web-api", "--output", "json"]
    command = [*tdgc_command(), *shlex.split(plan)[1:], *two_families]
    ran = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert {d["family"] for d in report["decisions"]} == {"airflow-dbt-daily", "web-api"}
    in_use = {(d["family"], d["revision"]): d["in_use_by"] for d in report["decisions"] if d["in_use_by"]}
    assert in_use[("web-api", 150)][0] == "service prod/web-api"
    assert in_use[("web-api", 120)] == [
        "terraform state s3://demo-terraform-state/prod/terraform.tfstate (module.web.aws_ecs_service.api)"
    ]
    deletes = [d for d in report["decisions"] if d["action"] == "delete"]
    assert len(deletes) > 300 and all(d["family"] == "airflow-dbt-daily" for d in deletes)
    assert all(re.fullmatch(r"deregistered \d+ days ago ≥ 7 days", d["reason"]) for d in deletes)
    assert report["summary"]["deregister"] > 100 and report["incomplete"] == []

    assert process.returncode == 0, err
    assert err.endswith("Stopped serving; the simulated account is gone. Bye.\n") and "Traceback" not in err


@pytest.mark.slow
def test_demo_serve_stops_cleanly_on_sigterm() -> None:
    process, _ = _start_serving()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert err.endswith("Bye.\n") and "interrupted" not in err


def test_demo_options_that_do_not_go_together_are_refused(tdgc: Any) -> None:
    for args, said in [
        (("--port", "8080"), "tdgc: --port goes with --serve\n"),
        (("--serve", "--output", "json"), "tdgc: --serve prints no report: --output and --full go without it\n"),
        (("--serve", "--full"), "tdgc: --serve prints no report: --output and --full go without it\n"),
    ]:
        ran = tdgc("demo", *args)
        assert (ran.code, ran.out, ran.err) == (2, "", said)
    ran = tdgc("demo", "--serve", "--port", "70000")
    assert ran.code == 2 and ran.err.startswith("tdgc: ") and len(ran.err.splitlines()) == 1


def test_demo_serve_on_a_port_taken_is_one_line_at_once(tdgc: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ran = tdgc("demo", "--serve", "--port", str(port))
    assert (ran.code, ran.out) == (2, "")
    assert (
        ran.err == f"tdgc: --port {port}: cannot listen there (Address already in use); --port 0 takes any free one\n"
    )


def test_demo_serve_without_moto_server_says_what_to_install(tdgc: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moto.server", None)  # as where Flask is missing: the import fails
    ran = tdgc("demo", "--serve", "--port", "0")
    assert (ran.code, ran.out) == (2, "")
    assert ran.err.startswith("tdgc: --serve needs moto's server (") and ran.err.endswith("pip install 'tdgc[demo]'\n")
