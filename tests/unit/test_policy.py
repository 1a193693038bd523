import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tdgc.durations import Duration
from tdgc.errors import PolicyError
from tdgc.policy import Overrides, Policy, Rule, load_policy, parse_policy

DESIGN_EXAMPLE = """\
[defaults]
keep_last = 5                  # the 5 newest ACTIVE revisions of each family are kept
deregister_after = "30 days"
delete_after = "180 days"
protect_tags = { "tdgc:keep" = "true" }

[[rules]]
families = ["dbt-*", "airflow-*"]
keep_last = 1
delete_after = "7 days"

[[rules]]
families = ["prod-*"]
exclude = true
"""


def load(tmp_path: Path, text: str, overrides: Overrides | None = None) -> Policy:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return load_policy(str(path), overrides)


def test_design_example_loads(tmp_path: Path) -> None:
    policy = load(tmp_path, DESIGN_EXAMPLE)
    assert policy.defaults.keep_last == 5
    assert policy.defaults.deregister_after == Duration(days=30)
    dbt, glob = policy.rule_for("dbt-nightly")
    assert (glob, dbt.keep_last, dbt.delete_after) == ("dbt-*", 1, Duration(days=7))
    assert dbt.deregister_after == Duration(days=30), "defaults fill what a rule leaves out"
    assert dbt.protect_tags == {"tdgc:keep": "true"}
    prod, glob = policy.rule_for("prod-web")
    assert prod.exclude and glob == "prod-*"
    other, glob = policy.rule_for("web")
    assert other is policy.defaults and glob is None


def test_first_matching_rule_wins(tmp_path: Path) -> None:
    policy = load(
        tmp_path, '[[rules]]\nfamilies = ["a-*"]\nkeep_last = 1\n[[rules]]\nfamilies = ["a-b*"]\nkeep_last = 9\n'
    )
    assert policy.rule_for("a-bc")[0].keep_last == 1


def test_built_in_defaults_without_a_file() -> None:
    policy = load_policy(None)
    assert policy.defaults == Rule()
    assert policy.defaults.delete_after == Duration(days=180)
    assert policy.defaults.protect_tags == {"tdgc:keep": "true"}


def test_never_delete(tmp_path: Path) -> None:
    assert load(tmp_path, "[defaults]\ndelete_after = false\n").defaults.delete_after is None
    assert load(tmp_path, '[defaults]\ndelete_after = "never"\n').defaults.delete_after is None


def test_rule_tags_add_to_the_defaults(tmp_path: Path) -> None:
    text = '[defaults]\nprotect_tags = { a = "1" }\n[[rules]]\nfamilies = "x*"\nprotect_tags = { b = "*" }\n'
    assert load(tmp_path, text).rule_for("xy")[0].protect_tags == {"a": "1", "b": "*"}


def test_flags_override_the_file_everywhere(tmp_path: Path) -> None:
    flags = Overrides(
        keep_last=10,
        delete_after=None,
        deregister_after=Duration(days=3),
        protect_tags=("pin", "owner=ops"),
        exclude_families=("legacy-*",),
        families=("dbt-*",),
        rates=("modify=0.25",),
    )
    policy = load(tmp_path, DESIGN_EXAMPLE, flags)
    for family in ("dbt-x", "web"):
        rule = policy.rule_for(family)[0]
        assert rule.keep_last == 10 and rule.delete_after is None and rule.deregister_after == Duration(days=3)
        assert rule.protect_tags == {"tdgc:keep": "true", "pin": "*", "owner": "ops"}
    legacy, glob = policy.rule_for("legacy-cron")
    assert legacy.exclude and glob == "legacy-*"
    assert policy.only_families == ("dbt-*",)
    assert policy.in_scope("dbt-a") and not policy.in_scope("web")
    assert policy.rates["modify"] == 0.25 and policy.rates["read"] == 10.0


def test_protected_by_any_value_or_exact_value() -> None:
    rule = Rule(protect_tags={"pin": "*", "keep": "true"})
    assert rule.protected_by({"pin": ""}) == "pin="
    assert rule.protected_by({"keep": "true"}) == "keep=true"
    assert rule.protected_by({"keep": "false"}) is None


@pytest.mark.parametrize(
    ("text", "line", "key", "fragment"),
    [
        ("[defaults]\nkeep_last = 5\nkep_last = 3\n", 3, "defaults.kep_last", "unknown key"),
        ("[defualts]\nkeep_last = 5\n", 1, "defualts", "unknown key"),
        ('[defaults]\nkeep_last = "5"\n', 2, "defaults.keep_last", "whole number"),
        ("[defaults]\nkeep_last = true\n", 2, "defaults.keep_last", "whole number"),
        ("[defaults]\nkeep_last = 2.5\n", 2, "defaults.keep_last", "whole number"),
        ("[defaults]\nkeep_last = -1\n", 2, "defaults.keep_last", "0 or more"),
        ('[defaults]\n\ndelete_after = "6 moons"\n', 3, "defaults.delete_after", "unknown unit"),
        ("[defaults]\ndelete_after = 180\n", 2, "defaults.delete_after", "duration"),
        ("[defaults]\ndelete_after = true\n", 2, "defaults.delete_after", "duration"),
        ("[defaults]\nderegister_after = false\n", 2, "defaults.deregister_after", "duration"),
        ('[defaults]\nprotect_tags = ["a"]\n', 2, "defaults.protect_tags", "table"),
        ("[defaults]\nprotect_tags = { a = 1 }\n", 2, "defaults.protect_tags", "string value"),
        ("[defaults]\nexclude = true\n", 2, "defaults.exclude", "unknown key"),
        ("[[rules]]\nkeep_last = 1\n", 1, "rules[0]", "needs families"),
        ("[[rules]]\nfamilies = []\n", 2, "rules[0].families", "non-empty list"),
        ("[[rules]]\nfamilies = [1]\n", 2, "rules[0].families", "non-empty list"),
        (
            '[[rules]]\nfamilies = ["a"]\n[[rules]]\nfamilies = ["b"]\nexclude = "yes"\n',
            5,
            "rules[1].exclude",
            "true or false",
        ),
        ('[[rules]]\nfamilies = ["a"]\nname = 3\n', 3, "rules[0].name", "non-empty string"),
        ("rules = 3\n", 1, "rules", "array of tables"),
        ("defaults = 3\n", 1, "defaults", "must be a table"),
        ("keep_last = 5\n", 1, "keep_last", "unknown key"),
        ("[rate]\nmodify = 0\n", 2, "rate.modify", "must be between 0.001 and 20 (AWS's burst for modify), not 0"),
        ("[rate]\nmodify = 1e-300\n", 2, "rate.modify", "must be between 0.001 and 20"),
        ("[rate]\nread = 51\n", 2, "rate.read", "must be between 0.001 and 50 (AWS's burst for read), not 51"),
        ("[rate]\nread = nan\n", 2, "rate.read", "must be a number of calls per second, not nan"),
        ("[rate]\nwrite = 1\n", 2, "rate.write", "unknown key"),
        ("[defaults\nkeep_last = 5\n", 1, "", "not valid TOML"),
        ("[defaults]\nkeep_last = 5\nkeep_last = 6\n", 3, "", "not valid TOML"),
    ],
)
def test_bad_policies_name_file_key_and_line(tmp_path: Path, text: str, line: int, key: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as err:
        load(tmp_path, text)
    message = str(err.value)
    assert fragment in message
    assert message.startswith(f"{tmp_path / 'policy.toml'}:{line}")
    assert err.value.line == line
    if key:
        assert f"key {key!r}" in message
    assert "\n" not in message


def test_missing_unreadable_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no such policy file"):
        load_policy(str(tmp_path / "nope.toml"))
    with pytest.raises(PolicyError, match="is a directory"):
        load_policy(str(tmp_path))
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00junk")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(str(tmp_path / "bin.toml"))


@pytest.mark.parametrize(("flag", "fragment"), [("", "KEY or KEY=VALUE"), ("=x", "KEY or KEY=VALUE")])
def test_bad_tag_flags(flag: str, fragment: str) -> None:
    with pytest.raises(PolicyError, match=fragment):
        load_policy(None, Overrides(protect_tags=(flag,)))


@pytest.mark.parametrize("flag", ["modify", "write=1", "modify=0", "modify=-1", "modify=fast", "read=nan"])
def test_bad_rate_flags(flag: str) -> None:
    with pytest.raises(PolicyError, match="--rate"):
        load_policy(None, Overrides(rates=(flag,)))


KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:eu-west-1:111122223333:key/{KEY_ID}"


@pytest.mark.parametrize(
    "key",
    [
        KEY_ID,
        KEY_ARN,
        "mrk-1234abcd12ab34cd56ef1234567890ab",
        "alias/tdgc-archive",
        "alias/aws/s3",
        "arn:aws:kms:eu-west-1:111122223333:alias/tdgc/archive",
    ],
)
def test_the_archive_kms_key_is_a_key_id_arn_or_alias_and_the_flag_wins(key: str) -> None:
    from_file = parse_policy(f'[safety]\narchive_kms_key = "{key}"\n', "p.toml")
    assert from_file.safety.archive_kms_key == key and from_file.to_dict()["safety"]["archive_kms_key"] == key
    flagged = parse_policy(f'[safety]\narchive_kms_key = "{key}"\n', "p.toml", Overrides(archive_kms_key=KEY_ARN))
    assert flagged.safety.archive_kms_key == KEY_ARN
    assert load_policy(None).safety.archive_kms_key is None, "none: SSE-S3"


@pytest.mark.parametrize(
    "key",
    [
        "tdgc-archive",
        "alias/",
        "key/" + KEY_ID,
        KEY_ID.upper(),
        f"{KEY_ID}\n",
        KEY_ARN.replace("111122223333", "1111"),
        "arn:aws:s3:::bucket",
        "alias/a b",
    ],
)
def test_a_kms_key_of_another_form_is_refused_in_the_file_and_the_flag(key: str) -> None:
    with pytest.raises(PolicyError, match=r"^p.toml:2, key 'safety.archive_kms_key': expected a KMS key ARN"):
        parse_policy(f"[safety]\narchive_kms_key = {json.dumps(key)}\n", "p.toml")
    with pytest.raises(PolicyError, match=r"^--archive-kms-key: expected a KMS key ARN, key id or alias"):
        load_policy(None, Overrides(archive_kms_key=key))


@pytest.mark.parametrize(
    ("rules", "warned"),
    [
        (
            '[[rules]]\nfamilies = ["*"]\n[[rules]]\nfamilies = ["web-*"]\nname = "web"\n',
            ["rule web never applies: * before it already covers its families"],
        ),
        (
            '[[rules]]\nfamilies = ["web*"]\n[[rules]]\nfamilies = ["web-api", "web-[ab]*"]\n',
            ["rule web-api never applies: web* before it already covers its families"],
        ),
        (
            '[[rules]]\nfamilies = ["a*"]\n[[rules]]\nfamilies = ["b*"]\n[[rules]]\nfamilies = ["a1", "b1"]\n',
            ["rule a1 never applies: a*, b* before it already covers its families"],
        ),
        ('[[rules]]\nfamilies = ["web?"]\n[[rules]]\nfamilies = ["web*"]\n', []),  # web? does not cover web-api
        ('[[rules]]\nfamilies = ["web-*"]\n[[rules]]\nfamilies = ["web*"]\n', []),
        ('[[rules]]\nfamilies = ["w[e]b*"]\n[[rules]]\nfamilies = ["web-1"]\n', []),  # not sure: no warning
    ],
)
def test_a_rule_that_can_never_apply_is_a_warning(rules: str, warned: list[str]) -> None:
    assert parse_policy(rules, "p.toml").warnings == tuple(f"p.toml: {w}" for w in warned)


@given(
    st.lists(st.lists(st.from_regex(r"[ab*?]{1,4}", fullmatch=True), min_size=1, max_size=2), min_size=2, max_size=4),
    st.from_regex(r"[ab]{0,5}", fullmatch=True),
)
def test_a_rule_called_unreachable_never_matches_a_family_first(globs: list[list[str]], family: str) -> None:
    text = "".join(f'[[rules]]\nfamilies = {json.dumps(g)}\nname = "r{i}"\n' for i, g in enumerate(globs))
    policy = parse_policy(text, "p.toml")
    never = {w.split()[2] for w in policy.warnings}
    rule, _ = policy.rule_for(family)
    assert rule.name not in never
