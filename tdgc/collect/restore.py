"""Restore: register archived task-definition content again, as a new revision of its family.

Every archive is read and checked before anything is registered, so a bad file changes nothing. The same
reading serves `tdgc register`, which also takes RegisterTaskDefinition's arguments as they are.

What is checked, before any AWS call (each problem one line naming the file):
- the JSON: UTF-8, nested at most MAX_DEPTH levels (json.loads and tdgc's own walks recurse), every string
  and key valid Unicode (a lone surrogate cannot be hashed or sent);
- the shape tdgc needs (a family, a list of container definitions, tags as {key, value});
- RegisterTaskDefinition's input model, by botocore's own parameter validation (the one a client applies
  before sending), with one addition: JSON's true and false are not integers (Python's bool is an int);
- what botocore cannot see but tdgc reads: task-level cpu and memory written in ASCII, since int() and
  Decimal read other scripts' digits ("²", "١٠٢٤") that ECS does not (tdgc.reuse.content hashes these values);
- for restore, the account and region the archive came from (its ARN): `check_accounts` refuses another
  account's archive unless told to; another region's is restored where asked, and `note` says so.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions
import botocore.session
from botocore.model import Shape
from botocore.validate import ParamValidator, ValidationErrors

from tdgc.aws.connection import Connection, connect
from tdgc.aws.ecs import TaskDefinitions
from tdgc.aws.errors import error_text
from tdgc.aws.pacing import Pacer
from tdgc.aws.s3 import S3Access
from tdgc.aws.s3url import is_s3, s3_location
from tdgc.errors import UsageError
from tdgc.reuse.content import described_fields, register_fields

# RegisterTaskDefinition's deepest argument is 7 levels deep, an archive's 8: anything near this is not one.
MAX_DEPTH = 100
_TD_ARN = re.compile(r"arn:aws[a-z-]*:ecs:([a-z0-9-]+):(\d{12}):task-definition/[A-Za-z0-9_-]+:\d+")
_UNITS = {"cpu": '"256" or "0.25 vCPU"', "memory": '"512" or "2 GB"'}


@dataclass(frozen=True)
class Archived:
    source: str
    family: str
    region: str | None  # where the revision was registered (its ARN, or the archive's header), if known
    arguments: dict[str, Any]  # RegisterTaskDefinition's arguments, tags included
    account: str | None = None  # the account it was registered in (its ARN), if known


def load(source: str, s3: S3Access | None = None, *, request: bool = False) -> Archived:
    """Read and check one archive (a file, or s3://bucket/key with S3 given); see `parse`."""
    text = _read(source, s3)
    try:
        doc = json.loads(text)
    except RecursionError:  # json's decoder recurses once a level
        raise UsageError(f"{source}: nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:
        raise UsageError(f"{source}: not JSON ({_one_line(str(exc))})") from None
    return parse(doc, source, request=request)


def parse(doc: Any, source: str, *, request: bool = False) -> Archived:
    """An archive (or a DescribeTaskDefinition answer: `taskDefinition` and `tags`); with `request`, also
    RegisterTaskDefinition's arguments as they are (`family`, `containerDefinitions`, ... at the top).
    Checked as the module docstring says, but for the account: a UsageError names the source and the problem."""
    _check_values(doc, source)
    if request and isinstance(doc, dict) and "taskDefinition" not in doc:
        doc = {"taskDefinition": doc, "tags": doc.get("tags", [])}
    if not isinstance(doc, dict) or not isinstance(doc.get("taskDefinition"), dict):
        what = "a task definition (no family, no taskDefinition)" if request else "a tdgc archive"
        raise UsageError(f"{source}: not {what}" + ("" if request else " (no taskDefinition object)"))
    td = doc["taskDefinition"]
    unknown = sorted(set(td) - register_fields() - described_fields())
    if request and unknown:  # a typo would otherwise register, and hash, as if it were absent
        raise UsageError(f"{source}: not a task-definition field: {_one_line(unknown[0])}")
    family = td.get("family")
    if not isinstance(family, str) or not family:
        raise UsageError(f"{source}: taskDefinition.family is missing")
    containers = td.get("containerDefinitions")
    if not isinstance(containers, list) or not containers or not all(isinstance(c, dict) for c in containers):
        raise UsageError(f"{source}: taskDefinition.containerDefinitions must be a non-empty list of objects")
    arguments = {k: v for k, v in td.items() if k in register_fields() and k != "tags"}
    tags = doc.get("tags", [])
    if not isinstance(tags, list) or not all(
        isinstance(t, dict) and isinstance(t.get("key"), str) and isinstance(t.get("value", ""), str) for t in tags
    ):
        raise UsageError(f"{source}: tags must be a list of {{key, value}} objects")
    if tags:
        arguments["tags"] = tags
    check_arguments(arguments, source)
    header = doc.get("tdgc")
    region = header.get("region") if isinstance(header, dict) and isinstance(header.get("region"), str) else None
    account = None
    if not request:  # where the archived revision lived: its ARN, as tdgc's header or ECS's answer has it
        if isinstance(header, dict) and "arn" in header:
            where, arn = "tdgc.arn", header["arn"]
        else:
            where, arn = "taskDefinition.taskDefinitionArn", td.get("taskDefinitionArn")
        if arn is not None:
            found = _TD_ARN.fullmatch(arn) if isinstance(arn, str) else None
            if found is None:
                raise UsageError(f"{source}: {where} is not a task-definition ARN: {_one_line(repr(arn))}")
            region, account = found[1], found[2]
    return Archived(source, family, region, arguments, account)


def check_arguments(arguments: dict[str, Any], source: str) -> None:
    """RegisterTaskDefinition's arguments as botocore's model of ECS and tdgc's own reading take them."""
    report = _Validator().validate(arguments, _register_input())
    if report.has_errors():
        # One error a line; a value with a line break of its own is told apart by what follows the break.
        problems = _NEXT_ERROR.split(report.generate_report())
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UsageError(f"{source}: ECS would refuse it: {_one_line(problems[0])}{more}")
    for key, examples in _UNITS.items():
        value = arguments.get(key)
        if isinstance(value, str) and not value.isascii():  # int() and Decimal read "²" or Arabic-Indic digits
            raise UsageError(f"{source}: {key} {_one_line(repr(value))} is not written in ASCII (e.g. {examples})")


def connections(
    loaded: Sequence[Archived], regions: Sequence[str], profile: str | None, endpoint_url: str | None
) -> list[Connection]:
    """Where each archive is to be registered: `regions` (one), or the region it came from. No network call;
    an unknown region, or none at all, is a UsageError naming the archive."""
    made: dict[tuple[str, ...], Connection] = {}
    found = []
    for archived in loaded:
        region = tuple(regions) or ((archived.region,) if archived.region else ())
        if region not in made:
            try:
                made[region] = connect(profile, region, endpoint_url)[0]
            except UsageError as exc:
                raise UsageError(f"{archived.source}: {exc}" if not regions else str(exc)) from None
        found.append(made[region])
    return found


def check_accounts(loaded: Sequence[Archived], caller: str, *, into_another_account: bool) -> None:
    """Refuse archives of another account than the caller's, unless `into_another_account`."""
    foreign = [a for a in loaded if a.account is not None and a.account != caller]
    if foreign and not into_another_account:
        first, more = foreign[0], f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise UsageError(
            f"{first.source}: archived in account {first.account}, but the credentials are in account "
            f"{caller}{more}: pass --into-another-account to restore it there"
        )


def note(archived: Archived, target: Connection, caller: str | None) -> str:
    """What the output line says besides the new ARN: where the archive came from, when that is elsewhere."""
    elsewhere = []
    if caller is not None and archived.account is not None and archived.account != caller:
        elsewhere.append(f"account {archived.account}")
    if archived.region is not None and archived.region != target.region:
        elsewhere.append(archived.region)
    return f" (archived in {', '.join(elsewhere)})" if elsewhere else ""


def register(archived: Archived, target: Connection, pacer: Pacer) -> str:
    """Register the archived content; return the new revision's ARN."""
    definitions = TaskDefinitions(target.ecs(pacer))
    try:
        registered = definitions.register(archived.arguments)
    except botocore.exceptions.ParamValidationError as exc:
        raise UsageError(f"{archived.source}: ECS would refuse it: {str(exc).splitlines()[-1].strip()}") from None
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise UsageError(f"{archived.source}: register failed: {error_text(exc)}") from None
    return str(registered["taskDefinitionArn"])


class _Validator(ParamValidator):
    """botocore's parameter validation, and a bool is not an integer: Python's bool is an int, so botocore
    would send JSON's true where ECS reads a number."""

    def _validate_integer(self, param: Any, shape: Shape, errors: ValidationErrors, name: str) -> None:
        if isinstance(param, bool):
            errors.report(name, "invalid type", param=param, valid_types=[str(int)])
        else:
            super()._validate_integer(param, shape, errors, name)  # type: ignore[misc]  # stubs omit it

    def _validate_long(self, param: Any, shape: Shape, errors: ValidationErrors, name: str) -> None:
        self._validate_integer(param, shape, errors, name)


# Where the next error of botocore's report begins (each starts with one of these; see ValidationErrors).
_NEXT_ERROR = re.compile(r"\n(?=Missing required parameter |Unknown parameter |Invalid )")
_MODEL_LOCK = threading.Lock()


def _register_input() -> Shape:
    with _MODEL_LOCK:  # threads starting together would each load the model
        return _load_register_input()


@functools.cache
def _load_register_input() -> Shape:
    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    assert shape is not None
    return shape


def _check_values(doc: Any, source: str) -> None:
    """Nested at most MAX_DEPTH levels, every string and key valid Unicode; walked without recursing."""
    stack: list[tuple[Any, int, str]] = [(doc, 0, "")]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, (dict, list)):
            if depth >= MAX_DEPTH:
                raise UsageError(f"{source}: nested more than {MAX_DEPTH} levels deep")
            if isinstance(value, dict):
                for key, item in value.items():
                    path = f"{where}.{key}" if where else str(key)
                    _check_text(key, f"{where or 'the document'} (a key)", source)
                    stack.append((item, depth + 1, path))
            else:
                stack.extend((item, depth + 1, f"{where}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, str):
            _check_text(value, where, source)


def _check_text(text: Any, where: str, source: str) -> None:
    if isinstance(text, str):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = _one_line(text[exc.start : exc.end])
            raise UsageError(f"{source}: {_one_line(where)}: not valid Unicode (a lone surrogate: {bad})") from None


def _one_line(text: str, limit: int = 400) -> str:
    """`text` as one printable line of at most `limit` characters: line breaks and controls escaped."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _read(source: str, s3: S3Access | None) -> str:
    if is_s3(source):
        bucket, key = s3_location(source, "archive", key_required=True)
        if s3 is None:
            raise UsageError(f"{source}: an S3 archive needs S3 access")
        try:
            body: bytes = s3.client().get_object(Bucket=bucket, Key=key, **s3.protection.reads)["Body"].read()
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise UsageError(f"{source}: cannot read ({error_text(exc)})") from None
    else:
        try:
            body = Path(source).read_bytes()
        except FileNotFoundError:
            raise UsageError(f"{source}: no such file") from None
        except IsADirectoryError:
            raise UsageError(f"{source}: is a directory; name the archive files") from None
        except OSError as exc:
            raise UsageError(f"{source}: cannot read ({exc.strerror})") from None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{source}: not UTF-8 text") from None
