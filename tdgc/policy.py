"""The retention policy: a TOML file (docs/design.md §4) with command-line flags laid over it.

Everything is validated here, before any AWS call: an unknown key, a wrong type or a bad duration is a
PolicyError naming the file, the key and its line.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tdgc.aws.pacing import AWS_BUCKETS
from tdgc.aws.s3url import is_s3, s3_location
from tdgc.durations import Duration, parse_duration
from tdgc.errors import PolicyError, UsageError

ANY_VALUE = "*"
# Our share of AWS's per-account, per-Region buckets (docs/design.md §2): calls per second that tdgc may use, so
# that deploys sharing the same buckets keep the rest.
DEFAULT_RATES: Mapping[str, float] = {
    "read": 10.0,
    "modify": 0.5,
    "delete": 0.5,
    "cluster_read": 10.0,
    "service_read": 10.0,
    "task_read": 10.0,
    "service_deployment_read": 10.0,
}
RATE_FLOOR = 0.001  # calls per second: one in about 17 minutes; slower would never finish (and sleep overflows)
ROLLBACK_DEPTH = 1  # completed deployments back whose replaced revisions stay protected: the one before
# Where a revision can be in use (docs/design.md §2); each source can be switched off.
REFERENCE_SOURCES = (
    "services",
    "rollback",
    "express_services",
    "tasks",
    "rules",
    "schedules",
    "pipes",
    "state_machines",
    "stacks",
    "codedeploy",
    "terraform",
)
_UNSET: Any = object()
# A KMS key as S3's SSEKMSKeyId takes it: a key id (a multi-Region key's `mrk-` too), `alias/NAME`, or either
# as an ARN. Its form only: whether the key exists and may be used, the write probe finds out before any change.
_KMS_KEY_ID = r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})"
_KMS_ALIAS = r"alias/[A-Za-z0-9/_-]{1,250}"
_KMS_KEY = re.compile(
    rf"{_KMS_KEY_ID}|{_KMS_ALIAS}|arn:aws[a-z-]*:kms:[a-z]{{2}}(?:-[a-z]+)+-[0-9]+:[0-9]{{12}}:"
    rf"(?:key/{_KMS_KEY_ID}|{_KMS_ALIAS})"
)
KMS_KEY_FORMS = "a KMS key ARN, key id or alias (arn:aws:kms:REGION:ACCOUNT:key/ID, ID, alias/NAME)"


@dataclass(frozen=True, slots=True)
class Rule:
    """A family's retention settings, with the defaults already filled in."""

    families: tuple[str, ...] = ("*",)
    exclude: bool = False
    keep_last: int = 5
    deregister_after: Duration | None = None
    delete_after: Duration | None = field(default_factory=lambda: Duration(days=180))  # None: never
    protect_tags: Mapping[str, str] = field(default_factory=lambda: {"tdgc:keep": "true"})
    allow_deregister_all: bool = False  # with keep_last = 0, may a family be left with no ACTIVE revision?
    # An ACTIVE revision the usage store knows is kept while used this recently, deregistered once not.
    unused_for: Duration | None = None
    name: str = "defaults"

    def matching_glob(self, family: str) -> str | None:
        return next((g for g in self.families if fnmatch.fnmatchcase(family, g)), None)

    def protected_by(self, tags: Mapping[str, str]) -> str | None:
        """The `key=value` of the first protecting tag present, if any."""
        for key, wanted in self.protect_tags.items():
            if key in tags and wanted in (ANY_VALUE, tags[key]):
                return f"{key}={tags[key]}"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "families": list(self.families),
            "exclude": self.exclude,
            "keep_last": self.keep_last,
            "deregister_after": self.deregister_after.text if self.deregister_after else None,
            "delete_after": self.delete_after.text if self.delete_after else "never",
            "protect_tags": dict(self.protect_tags),
            "allow_deregister_all": self.allow_deregister_all,
            "unused_for": self.unused_for.text if self.unused_for else None,
        }


@dataclass(frozen=True, slots=True)
class Safety:
    """Guards on what one apply may do."""

    references: frozenset[str] = frozenset(REFERENCE_SOURCES)  # the sources looked at
    # How many completed deployments back each service's replaced revisions stay protected (rollback targets)
    rollback_depth: int = ROLLBACK_DEPTH
    # Terraform / OpenTofu states whose revisions are in use: files, directories, s3://BUCKET/KEY or PREFIX/
    terraform_state: tuple[str, ...] = ()
    accept_incomplete_references: bool = False  # apply even where a reference source could not be read
    require_archive: bool = False  # refuse to delete without --archive
    max_actions: int | None = None  # stop after this many revisions acted on; the rest is deferred
    # SSE-KMS under this key for what tdgc writes to S3 (archives, reports, probes); None: SSE-S3
    archive_kms_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "references": sorted(self.references),
            "rollback_depth": self.rollback_depth if "rollback" in self.references else 0,
            "terraform_state": list(self.terraform_state) if "terraform" in self.references else [],
            "accept_incomplete_references": self.accept_incomplete_references,
            "require_archive": self.require_archive,
            "max_actions": self.max_actions,
            "archive_kms_key": self.archive_kms_key,
        }


@dataclass(frozen=True, slots=True)
class Policy:
    defaults: Rule = field(default_factory=Rule)
    rules: tuple[Rule, ...] = ()
    only_families: tuple[str, ...] = ()  # --family: scan only these globs (empty: all)
    rates: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))
    safety: Safety = field(default_factory=Safety)
    source: str = "built-in defaults"
    usage_store: str | None = None  # [usage] store: where `unused_for` reads each revision's last use
    warnings: tuple[str, ...] = ()  # what the policy says that cannot be what its author meant

    @property
    def uses_usage(self) -> bool:
        return any(rule.unused_for is not None for rule in (self.defaults, *self.rules))

    def rule_for(self, family: str) -> tuple[Rule, str | None]:
        """The first rule whose globs match, else the defaults; with the glob that matched."""
        for rule in self.rules:
            glob = rule.matching_glob(family)
            if glob is not None:
                return rule, glob
        return self.defaults, None

    def in_scope(self, family: str) -> bool:
        return not self.only_families or any(fnmatch.fnmatchcase(family, g) for g in self.only_families)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "defaults": self.defaults.to_dict(),
            "rules": [r.to_dict() for r in self.rules],
            "families": list(self.only_families),
            "rates": dict(self.rates),
            "safety": self.safety.to_dict(),
            "usage_store": self.usage_store,
        }


@dataclass(frozen=True, slots=True)
class Overrides:
    """Command-line flags; `_UNSET` (the default) leaves the file's value alone."""

    keep_last: Any = _UNSET
    deregister_after: Any = _UNSET  # Duration | None
    delete_after: Any = _UNSET  # Duration | None (never)
    protect_tags: tuple[str, ...] = ()  # KEY or KEY=VALUE
    families: tuple[str, ...] = ()
    exclude_families: tuple[str, ...] = ()
    rates: tuple[str, ...] = ()  # CATEGORY=PER_SECOND
    skip_references: tuple[str, ...] = ()  # reference sources not to look at ("all": none)
    terraform_state: tuple[str, ...] = ()  # more state locations, after the file's
    accept_incomplete_references: bool = False
    max_actions: int | None = None
    archive_kms_key: str | None = None  # wins over the file's


# ---- validation of one value -----------------------------------------------------------------------------


class _Bad(Exception):
    """A value's problem; the caller adds file, key and line."""


def _int_at_least_zero(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"must be a whole number, not {_type(value)}")
    if value < 0:
        raise _Bad(f"must be 0 or more, not {value}")
    return value


def _state_locations(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v.strip() for v in items):
        raise _Bad('must be a list of state locations such as ["s3://BUCKET/env/prod/terraform.tfstate"]')
    for item in items:
        _check_state_location(item)
    return tuple(items)


def _check_state_location(text: str) -> None:
    if is_s3(text):
        try:
            s3_location(text, "terraform state")
        except UsageError:
            raise _Bad(f"expected s3://BUCKET/KEY or s3://BUCKET/PREFIX/, not {text!r}") from None


def _duration(value: Any) -> Duration:
    if not isinstance(value, str):
        raise _Bad(f'must be a duration string such as "90 days", not {_type(value)}')
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise _Bad(str(exc)) from None


def _duration_or_never(value: Any) -> Duration | None:
    if value is False or (isinstance(value, str) and value.strip().lower() == "never"):
        return None
    if value is True:
        raise _Bad('must be a duration such as "180 days", or false / "never"')
    return _duration(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"must be true or false, not {_type(value)}")
    return value


def _tags(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _Bad(f'must be a table such as {{ "tdgc:keep" = "true" }}, not {_type(value)}')
    for k, v in value.items():
        if not isinstance(v, str):
            raise _Bad(f'tag {k!r} must map to a string value ("*" for any value), not {_type(v)}')
        if not k:
            raise _Bad("tag keys must not be empty")
    return dict(value)


def _globs(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(g, str) and g for g in items):
        raise _Bad('must be a non-empty list of family globs such as ["dbt-*"]')
    return tuple(items)


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _Bad(f"must be a non-empty string, not {_type(value)}")
    return value


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Bad(f"must be a whole number of 1 or more, not {value!r}")
    return value


def _rate_in(category: str) -> Callable[[Any], float]:
    """A rate's check: between RATE_FLOOR and AWS's burst for the category (docs/design.md §2)."""
    ceiling = AWS_BUCKETS[category][0]

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise _Bad(f"must be a number of calls per second, not {value!r}")
        if not RATE_FLOOR <= value <= ceiling:
            raise _Bad(f"must be between {RATE_FLOOR} and {ceiling:g} (AWS's burst for {category}), not {value!r}")
        return float(value)

    return check


def _kms_key(value: Any) -> str:
    if not isinstance(value, str) or not _KMS_KEY.fullmatch(value):
        raise _Bad(f"expected {KMS_KEY_FORMS}, not {value!r}")
    return value


def _store(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"dynamodb://[A-Za-z0-9_.-]{3,255}", value):
        raise _Bad(f"expected dynamodb://TABLE (the usage store `tdgc register` writes), not {value!r}")
    return value


def _type(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "keep_last": _int_at_least_zero,
    "deregister_after": _duration,
    "delete_after": _duration_or_never,
    "protect_tags": _tags,
    "unused_for": _duration,
}
_RULE_KEYS: dict[str, Callable[[Any], Any]] = {
    "families": _globs,
    "exclude": _bool,
    "name": _name,
    "allow_deregister_all": _bool,
    **_SETTINGS,
}
_SAFETY_KEYS: dict[str, Callable[[Any], Any]] = {
    "require_archive": _bool,
    "max_actions": _positive_int,
    "accept_incomplete_references": _bool,
    "archive_kms_key": _kms_key,
}
_USAGE_KEYS: dict[str, Callable[[Any], Any]] = {"store": _store}
_TOP_KEYS = ("defaults", "rules", "rate", "references", "safety", "usage")


# ---- the file ------------------------------------------------------------------------------------------


class _Locator:
    """Finds the line of a key in TOML text, since tomllib keeps no positions."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
    _KEY = re.compile(r"""^\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_:.\-]+))\s*=""")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def line(self, path: tuple[str | int, ...], key: str | None) -> int | None:
        counters: dict[str, int] = {}
        current: tuple[str | int, ...] = ()
        for number, line in enumerate(self.lines, 1):
            header = self._HEADER.match(line)
            if header:
                names = [n.strip().strip("\"'") for n in header.group(2).split(".")]
                if header.group(1) == "[[":
                    joined = ".".join(names)
                    counters[joined] = counters.get(joined, -1) + 1
                    current = (*names, counters[joined])
                else:
                    current = tuple(names)
                    if names[0] in counters and len(names) > 1:  # [rules.protect_tags] inside a [[rules]]
                        current = (names[0], counters[names[0]], *names[1:])
                if key is None and current == path:
                    return number
                continue
            found = self._KEY.match(line)
            if found and key is not None and current == path:
                name = next(g for g in found.groups() if g is not None)
                if name == key:
                    return number
        return None


def load_policy(path: str | None = None, overrides: Overrides | None = None) -> Policy:
    """Read the policy file (or the built-in defaults) and lay the flags over it."""
    policy = _read_file(path) if path else Policy()
    return apply_overrides(policy, overrides or Overrides())


def parse_policy(text: str, source: str, overrides: Overrides | None = None) -> Policy:
    """A policy from TOML text that came from elsewhere (an environment variable, a parameter);
    errors name `source` as they would a file."""
    return apply_overrides(_parse(text, source), overrides or Overrides())


def _read_file(path: str) -> Policy:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError("no such policy file", source=path) from None
    except IsADirectoryError:
        raise PolicyError("is a directory, not a policy file", source=path) from None
    except UnicodeDecodeError:
        raise PolicyError("is not UTF-8 text", source=path) from None
    except OSError as exc:
        raise PolicyError(f"cannot read: {exc.strerror}", source=path) from None
    return _parse(text, path)


def _parse(text: str, path: str) -> Policy:
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise PolicyError("not a policy: nested too deeply", source=path) from None
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        at = re.search(r"\(at line (\d+), column \d+\)", msg)
        line = int(at.group(1)) if at else None
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg) if at else msg
        msg = re.sub(r"\s*\(at end of document\)", " at end of file", msg)
        raise PolicyError(f"not valid TOML: {msg}", source=path, line=line) from None
    return _build(data, path, _Locator(text))


def _build(data: dict[str, Any], source: str, where: _Locator) -> Policy:
    build = _Builder(source, where)
    for key in data:
        if key not in _TOP_KEYS:
            raise build.fail(f"unknown key (expected one of: {', '.join(_TOP_KEYS)})", (), key)
    defaults = replace(Rule(), **build.settings(data.get("defaults", {}), ("defaults",), _SETTINGS))
    rules = build.rules(data.get("rules", []), defaults)
    rates = {
        **DEFAULT_RATES,
        **build.settings(data.get("rate", {}), ("rate",), {c: _rate_in(c) for c in DEFAULT_RATES}),
    }
    store = build.settings(data.get("usage", {}), ("usage",), _USAGE_KEYS).get("store")
    placed: list[tuple[tuple[str | int, ...], Rule]] = [(("defaults",), defaults)]
    placed += [(("rules", index), rule) for index, rule in enumerate(rules)]
    for table, rule in placed:
        if rule.unused_for is not None and store is None:
            raise build.fail('unused_for needs a usage store: [usage] store = "dynamodb://TABLE"', table, "unused_for")
    return Policy(
        defaults=defaults,
        rules=tuple(rules),
        rates=rates,
        safety=build.safety(data),
        source=source,
        warnings=tuple(f"{source}: {w}" for w in unreachable(rules)),
        usage_store=store,
    )


class _Builder:
    """Checks a parsed policy table by table; every error names the file, the key and its line."""

    def __init__(self, source: str, where: _Locator) -> None:
        self.source, self.where = source, where

    def fail(self, message: str, table: tuple[str | int, ...], key: str | None) -> PolicyError:
        line = self.where.line(table, key)
        if line is None and key is not None:  # a [key] table header, else the table the key is in
            line = self.where.line((*table, key), None) or self.where.line(table, None)
        label = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in table).replace(".[", "[")
        full = f"{label}.{key}" if label and key else (key or label)
        return PolicyError(message, source=self.source, key=full, line=line)

    def settings(
        self, table: Any, path: tuple[str | int, ...], allowed: Mapping[str, Callable[[Any], Any]]
    ) -> dict[str, Any]:
        if not isinstance(table, dict):
            raise self.fail(f"must be a table, not {_type(table)}", path[:-1], str(path[-1]))
        out = {}
        for key, value in table.items():
            if key not in allowed:
                raise self.fail(f"unknown key (expected one of: {', '.join(allowed)})", path, key)
            try:
                out[key] = allowed[key](value)
            except _Bad as bad:
                raise self.fail(str(bad), path, key) from None
        return out

    def rules(self, raw_rules: Any, defaults: Rule) -> list[Rule]:
        if not isinstance(raw_rules, list):
            raise self.fail("must be an array of tables, written [[rules]]", (), "rules")
        rules = []
        for index, raw in enumerate(raw_rules):
            values = self.settings(raw, ("rules", index), _RULE_KEYS)
            if "families" not in values:
                raise self.fail('a rule needs families = ["glob", ...]', ("rules", index), None)
            tags = {**defaults.protect_tags, **values.pop("protect_tags", {})}
            name = values.pop("name", None) or values["families"][0]
            rules.append(replace(defaults, **values, protect_tags=tags, name=name))
        return rules

    def safety(self, data: dict[str, Any]) -> Safety:
        switches = self.settings(
            data.get("references", {}),
            ("references",),
            {
                **dict.fromkeys(REFERENCE_SOURCES, _bool),
                "rollback_depth": _int_at_least_zero,
                "terraform_state": _state_locations,
            },
        )
        depth = switches.pop("rollback_depth", ROLLBACK_DEPTH)
        return Safety(
            references=frozenset(s for s in REFERENCE_SOURCES if switches.get(s, True) and (s != "rollback" or depth)),
            rollback_depth=depth,
            terraform_state=switches.pop("terraform_state", ()),
            **self.settings(data.get("safety", {}), ("safety",), _SAFETY_KEYS),
        )


def unreachable(rules: Sequence[Rule]) -> list[str]:
    """A rule whose every glob an earlier rule's glob already covers never applies (the first match wins)."""
    found = []
    for index, rule in enumerate(rules):
        earlier = [(glob, r) for r in rules[:index] for glob in r.families]
        covering = [next((r for g, r in earlier if _covers(g, glob)), None) for glob in rule.families]
        if rule.families and all(covering):
            names = ", ".join(dict.fromkeys(r.name for r in covering if r is not None))
            found.append(f"rule {rule.name} never applies: {names} before it already covers its families")
    return found


def _covers(earlier: str, later: str) -> bool:
    """Whether every name `later` matches, `earlier` matches too; only the cases that are sure: the same glob,
    "*", or a literal prefix and "*" that `later` begins with."""
    prefix = earlier[:-1]
    literal = earlier.endswith("*") and not any(c in prefix for c in "*?[")
    return earlier in ("*", later) or (literal and later.startswith(prefix))


# ---- the flags -----------------------------------------------------------------------------------------


def parse_tag_flag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not key.strip():
        raise PolicyError(f"--protect-tag {text!r}: expected KEY or KEY=VALUE")
    return key.strip(), value if sep else ANY_VALUE


def parse_rate_flag(text: str) -> tuple[str, float]:
    category, sep, value = text.partition("=")
    if not sep or category not in DEFAULT_RATES:
        raise PolicyError(
            f"--rate {text!r}: expected CATEGORY=PER_SECOND with CATEGORY one of {', '.join(DEFAULT_RATES)}"
        )
    try:
        if not value.strip().isascii():  # float() reads "٣" as 3: a rate is written in ASCII digits
            raise ValueError(value)
        number = float(value.strip())
    except ValueError:
        raise PolicyError(f"--rate {text!r}: the rate must be a number of calls per second") from None
    try:
        return category, _rate_in(category)(number)
    except _Bad as bad:
        raise PolicyError(f"--rate {text!r}: {bad}") from None


def apply_overrides(policy: Policy, flags: Overrides) -> Policy:
    """Flags win over the file, in the defaults and in every rule alike."""
    changes: dict[str, Any] = {}
    for name in ("keep_last", "deregister_after", "delete_after"):
        value = getattr(flags, name)
        if value is not _UNSET:
            changes[name] = value
    extra_tags = dict(parse_tag_flag(t) for t in flags.protect_tags)

    def adjust(rule: Rule) -> Rule:
        return replace(rule, **changes, protect_tags={**rule.protect_tags, **extra_tags})

    excluded = [Rule(families=(glob,), exclude=True, name=glob, protect_tags={}) for glob in flags.exclude_families]
    skipped = set()
    for name in flags.skip_references:
        if name not in (*REFERENCE_SOURCES, "all"):
            raise PolicyError(f"--skip-reference {name!r}: expected one of {', '.join(REFERENCE_SOURCES)}, or all")
        skipped |= set(REFERENCE_SOURCES) if name == "all" else {name}
    for location in flags.terraform_state:
        try:
            _check_state_location(location)
        except _Bad as bad:
            raise PolicyError(f"--terraform-state: {bad}") from None
    if flags.archive_kms_key is not None:
        try:
            _kms_key(flags.archive_kms_key)
        except _Bad as bad:
            raise PolicyError(f"--archive-kms-key: {bad}") from None
    safety = replace(
        policy.safety,
        references=policy.safety.references - skipped,
        terraform_state=tuple(dict.fromkeys((*policy.safety.terraform_state, *flags.terraform_state))),
        accept_incomplete_references=policy.safety.accept_incomplete_references or flags.accept_incomplete_references,
        max_actions=flags.max_actions if flags.max_actions is not None else policy.safety.max_actions,
        archive_kms_key=flags.archive_kms_key or policy.safety.archive_kms_key,
    )
    return replace(
        policy,
        defaults=adjust(policy.defaults),
        rules=(*excluded, *(adjust(r) for r in policy.rules)),
        only_families=tuple(flags.families) or policy.only_families,
        rates={**policy.rates, **dict(parse_rate_flag(r) for r in flags.rates)},
        safety=safety,
    )
