"""Fuzz the policy loader: any file is a policy or one readable PolicyError, never anything else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tdgc.errors import PolicyError
from tdgc.policy import Policy, load_policy

KEYS = ["keep_last", "deregister_after", "delete_after", "protect_tags", "families", "exclude", "name",
        "allow_deregister_all", "require_archive", "max_actions", "accept_incomplete_references", "services",
        "stacks", "read", "modify", "kep_last", "x"]  # fmt: skip
TABLES = ["defaults", "rules", "rate", "references", "safety", "defualts"]
scalars = st.one_of(
    st.integers(-5, 10**6), st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["6 months", "90 days", "P6M", "never", "12h", "5 m", "soon", "", "*", "dbt-*"]),
    st.text(max_size=10),
)  # fmt: skip
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(min_size=1, max_size=5), scalars,
                                                                           max_size=2))  # fmt: skip


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string, escapes included
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"


documents = st.lists(
    st.tuples(st.sampled_from(TABLES), st.dictionaries(st.sampled_from(KEYS), values, max_size=4)), max_size=4
)


def check(path: Path) -> None:
    try:
        policy = load_policy(str(path))
    except PolicyError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and "\n" not in message, message
    else:
        assert isinstance(policy, Policy)
        assert all(rule.families and rule.keep_last >= 0 for rule in policy.rules)


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(documents)
def test_structured_policies(tmp_path: Path, document: list[tuple[str, dict[str, Any]]]) -> None:
    lines = []
    for table, entries in document:
        lines.append(f"[[{table}]]" if table == "rules" else f"[{table}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in entries.items()]
    path = tmp_path / "policy.toml"
    path.write_text("\n".join(lines) + "\n")
    check(path)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_arbitrary_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check(path)
