"""Fuzz the policy loader: any file is a policy or one readable PolicyError, never anything else."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tdgc.aws.pacing import AWS_BUCKETS
from tdgc.errors import PolicyError
from tdgc.policy import RATE_FLOOR, Policy, load_policy

KEYS = [
    "keep_last",
    "deregister_after",
    "delete_after",
    "protect_tags",
    "families",
    "exclude",
    "name",
    "allow_deregister_all",
    "require_archive",
    "max_actions",
    "accept_incomplete_references",
    "services",
    "stacks",
    "read",
    "modify",
    "delete",
    "unused_for",
    "rollback_depth",
    "terraform_state",
    "kep_last",
    "archive_kms_key",
    "x",
]
TABLES = ["defaults", "rules", "rate", "references", "safety", "defualts"]
scalars = st.one_of(
    st.integers(-5, 10**6),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["6 months", "90 days", "P6M", "never", "12h", "5 m", "soon", "", "*", "dbt-*"]),
    # at and beyond the edges of every range, and digits that are not ASCII
    st.sampled_from(
        [
            "100 years",
            "36525 days",
            "101 years",
            "10000 years",
            "P99999999Y",
            "99999999999 days",
            "\u0663 days",
            "\u00b2 days",
            "PT99999999999999999999S",
            "s3:/b/k",
            "s3://b/",
            "dynamodb://t",
            "alias/tdgc",
            "alias/",
            "mrk-0123456789abcdef0123456789abcdef",
        ]
    ),
    st.sampled_from([0.001, 0.0009, 1e-300, 1e300, 20, 20.5, 50, 51, 2**63, -(2**63)]),
    st.text(max_size=10),
)
values = st.one_of(
    scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(min_size=1, max_size=5), scalars, max_size=2)
)


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
        # Whatever loads can be used: every cut-off is a date for any moment this century, every rate a pace.
        for rule in (policy.defaults, *policy.rules):
            for limit in (rule.deregister_after, rule.delete_after, rule.unused_for):
                for moment in (datetime(2000, 1, 1, tzinfo=UTC), datetime(2099, 12, 31, tzinfo=UTC)):
                    assert limit is None or limit.before(moment).year >= 1899
        assert all(RATE_FLOOR <= rate <= AWS_BUCKETS[category][0] for category, rate in policy.rates.items())


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


def test_a_policy_nested_deeper_than_any_reader_goes(tmp_path: Path) -> None:
    for depth in (100, 1_000, 100_000):
        path = tmp_path / f"deep{depth}.toml"
        path.write_text("[defaults]\nprotect_tags = " + "[" * depth + "]" * depth + "\n")
        check(path)
