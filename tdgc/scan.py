"""Scanning: families and revisions from the paginated list calls, descriptions only where needed.

Everything streams: families come one at a time, revisions a page (at most 100) at a time, so memory does
not grow with the account.
"""

from __future__ import annotations

import heapq
import itertools
from array import array
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from tdgc.errors import TdgcError
from tdgc.model import Revision, Status, parse_arn

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

PAGE_SIZE = 100  # the most ECS returns in one page
STATUSES = (Status.INACTIVE, Status.ACTIVE)  # what is listed and decided; DELETE_IN_PROGRESS is ECS's to finish


class ScanError(TdgcError):
    """ECS answered in a shape the scan cannot rely on."""


_GONE = ("ClientException", "InvalidParameterException")


def literal_prefix(glob: str) -> str:
    """The part of a family glob before its first wildcard: what familyPrefix can narrow by."""
    for n, ch in enumerate(glob):
        if ch in "*?[":
            return glob[:n]
    return glob


class Scanner:
    def __init__(self, ecs: ECSClient, only_families: Iterable[str] = ()) -> None:
        self._ecs = ecs
        self._globs = tuple(only_families)

    def families(self) -> Iterator[str]:
        """Every family with an ACTIVE or INACTIVE revision, sorted, narrowed to the --family globs."""
        prefixes = sorted({literal_prefix(g) for g in self._globs}) if self._globs else [""]
        # A prefix that starts with a shorter one adds nothing; "" covers everything.
        prefixes = [p for n, p in enumerate(prefixes) if not any(p.startswith(q) for q in prefixes[:n])]
        streams = [self._families_with(prefix) for prefix in prefixes]
        last = None
        for name in heapq.merge(*streams):
            if name != last:
                last = name
                yield name

    def _families_with(self, prefix: str) -> Iterator[str]:
        kwargs: dict[str, Any] = {"status": "ALL", "PaginationConfig": {"PageSize": PAGE_SIZE}}
        if prefix:
            kwargs["familyPrefix"] = prefix
        for page in self._ecs.get_paginator("list_task_definition_families").paginate(**kwargs):
            yield from page.get("families", [])

    def revision_lists(self) -> Iterator[tuple[str, dict[Status, RevisionList]]]:
        """Every family with its INACTIVE and ACTIVE revision numbers, family by family.

        Without --family globs, two account-wide listings (ACTIVE, INACTIVE) give every family at a page per
        100 revisions, where listing family by family costs two calls a family however small it is. With
        globs, only the families they match are listed.
        """
        if self._globs:
            for family in self.families():
                yield family, {s: list_revisions(self, family, s) for s in STATUSES}
            return
        streams = [self._account_wide(status) for status in STATUSES]
        for family, groups in itertools.groupby(heapq.merge(*streams), key=lambda group: group[0]):
            found = {status: RevisionList(family, prefix, numbers) for _, status, prefix, numbers in groups}
            yield family, {s: found.get(s, RevisionList(family, "", array("I"))) for s in STATUSES}

    def _account_wide(self, status: Status) -> Iterator[tuple[str, Status, str, array[int]]]:
        """(family, status, ARN prefix, numbers newest first) per family, from one account-wide listing."""
        family, prefix, numbers = "", "", array("I")
        paginator = self._ecs.get_paginator("list_task_definitions")
        for page in paginator.paginate(status=status.value, sort="ASC", PaginationConfig={"PageSize": PAGE_SIZE}):
            for arn in page.get("taskDefinitionArns", []):
                head, _, number = arn.rpartition(":")
                name = head.rsplit("/", 1)[-1]
                if name != family:
                    if family:
                        numbers.reverse()
                        yield family, status, prefix, numbers
                    if name < family:  # the merge with the other status relies on this order
                        raise ScanError(f"ECS listed family {name!r} after {family!r}: run with --family '*'")
                    family, prefix, numbers = name, head + ":", array("I")
                numbers.append(int(number))
        if family:
            numbers.reverse()
            yield family, status, prefix, numbers

    def pages(self, family: str, status: Status) -> Iterator[list[str]]:
        """The family's revision ARNs with `status`, newest first, a page at a time."""
        paginator = self._ecs.get_paginator("list_task_definitions")
        for page in paginator.paginate(
            familyPrefix=family, status=status.value, sort="DESC", PaginationConfig={"PageSize": PAGE_SIZE}
        ):
            arns = page.get("taskDefinitionArns", [])
            if arns:
                yield arns

    def revision(self, arn: str, status: Status, *, describe: bool) -> Revision | None:
        """The revision, described if asked; None if it disappeared since it was listed."""
        family, number = parse_arn(arn)
        if not describe:
            return Revision(arn=arn, family=family, revision=number, status=status)
        try:
            answer = self._ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _GONE:
                return None
            raise
        answer.pop("ResponseMetadata", None)  # type: ignore[misc]
        td: dict[str, Any] = dict(answer["taskDefinition"])
        return Revision(
            arn=arn,
            family=family,
            revision=number,
            status=Status(td.get("status", status.value)),
            described=True,
            registered_at=td.get("registeredAt"),
            deregistered_at=td.get("deregisteredAt"),
            tags={t["key"]: t.get("value", "") for t in answer.get("tags", []) if "key" in t},
            description=dict(answer),
        )


class RevisionList:
    """One family's revision numbers with one status, newest first: 4 bytes a revision, not an ARN each."""

    def __init__(self, family: str, prefix: str, numbers: array[int]) -> None:
        self.family = family
        self.prefix = prefix  # "arn:...:task-definition/FAMILY:"
        self.numbers = numbers

    def __len__(self) -> int:
        return len(self.numbers)

    def arn(self, index: int) -> str:
        return f"{self.prefix}{self.numbers[index]}"


def list_revisions(scanner: Scanner, family: str, status: Status) -> RevisionList:
    numbers: array[int] = array("I")  # revision numbers are below 2**32
    prefix = ""
    for arns in scanner.pages(family, status):
        prefix = prefix or arns[0].rsplit(":", 1)[0] + ":"
        numbers.extend(int(arn.rsplit(":", 1)[1]) for arn in arns)
    return RevisionList(family, prefix, numbers)
