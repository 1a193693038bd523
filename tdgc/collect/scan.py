"""Scanning: families and revisions from the paginated list calls, descriptions only where needed.

ECS's `nextToken` is opaque (docs/design.md §8): it may name the last item returned, or an offset into the
result list as it stands at the next call. Under offsets, a revision that leaves a listing while it is being
paged (deregistered out of ACTIVE, deleted out of INACTIVE) moves every later item one place back, and the
next page silently skips one. So no listing is still being paged while this run mutates what it lists:

- without --family globs, the account is listed whole (three account-wide listings, ACTIVE, INACTIVE and
  DELETE_IN_PROGRESS, at a page per 100 revisions) before the first family is given;
- with globs, the matching families' names are listed whole first, and each family's own listings are
  complete before it is given (this run only ever mutates the family it has been given).

Nothing relies on the order ECS lists in, and a revision listed twice (an offset page that moved back under
someone else's register) counts once. One found in two listings (deregistered by someone else between the
ACTIVE listing and the INACTIVE one) counts under the later. Revisions are kept as 4-byte numbers: an
account of a million revisions lists into a few megabytes.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from tdgc.aws.ecs import TaskDefinitions
from tdgc.model import Revision, Status, parse_arn

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

STATUSES = (Status.INACTIVE, Status.ACTIVE)  # what is decided; DELETE_IN_PROGRESS is ECS's to finish
# What is listed: DELETE_IN_PROGRESS too, since a listing of INACTIVE may include those (docs/design.md §8)
# and deciding them again would describe each one; a page per 100 of them is cheaper.
LISTED = (Status.ACTIVE, Status.INACTIVE, Status.DELETE_IN_PROGRESS)

Stop = Callable[[], bool]  # asked between pages: whether to stop listing


def literal_prefix(glob: str) -> str:
    """The part of a family glob before its first wildcard: what familyPrefix can narrow by."""
    for n, ch in enumerate(glob):
        if ch in "*?[":
            return glob[:n]
    return glob


class Scanner:
    def __init__(self, ecs: ECSClient, only_families: Iterable[str] = ()) -> None:
        self._ecs = TaskDefinitions(ecs)
        self._globs = tuple(only_families)
        # Set when a `stop` cut the account-wide listing short: what was given is a part of the account.
        self.truncated = False
        # How many families the listing found (before --family globs narrow them): known once it is done.
        self.listed: int | None = None

    def families(self) -> list[str]:
        """Every family with an ACTIVE or INACTIVE revision, sorted, narrowed to the --family globs' prefixes."""
        prefixes = sorted({literal_prefix(g) for g in self._globs}) if self._globs else [""]
        # A prefix that starts with a shorter one adds nothing; "" covers everything.
        prefixes = [p for n, p in enumerate(prefixes) if not any(p.startswith(q) for q in prefixes[:n])]
        names: set[str] = set()
        for prefix in prefixes:
            for page in self._ecs.family_pages("ALL", prefix):
                names.update(page)
        return sorted(names)

    def revision_lists(self, stop: Stop | None = None) -> Iterator[tuple[str, dict[Status, RevisionList]]]:
        """Every family with its INACTIVE and ACTIVE revision numbers (newest first), family by family.

        Without --family globs, three account-wide listings give every family at a page per 100 revisions,
        where listing family by family costs three calls a family however small it is; `stop`, asked between
        pages, cuts that listing short (a time budget), and the families are then given as far as they were
        listed: a part of a family is safe to decide, since the revisions missed can only make a listed one
        look newer than it is. With globs, only the families they match are listed.
        """
        if self._globs:
            names = self.families()
            self.listed = len(names)
            found: Iterator[tuple[str, dict[Status, RevisionList]]] = (
                (family, self.family_lists(family)) for family in names
            )
        else:
            found = self._account(stop or (lambda: False))
        # A family whose every revision is being deleted is listed or not, as ECS pleases: never reported.
        yield from ((f, lists) for f, lists in found if lists[Status.ACTIVE] or lists[Status.INACTIVE])

    def _account(self, stop: Stop) -> Iterator[tuple[str, dict[Status, RevisionList]]]:
        """The whole account, listed before the first family is given, in name order."""
        listed = self._list_account(stop)
        self.listed = len(listed)
        for family in sorted(listed):
            prefix, numbers = listed.pop(family)  # given away as it goes: memory falls as the run goes on
            yield family, _by_status(family, prefix, numbers)

    def _list_account(self, stop: Stop) -> dict[str, tuple[str, dict[Status, array[int]]]]:
        """family -> (ARN prefix, numbers by listed status, as listed)."""
        found: dict[str, tuple[str, dict[Status, array[int]]]] = {}
        for status in LISTED:
            for page in self._ecs.arn_pages(status.value):
                for arn in page:
                    head, _, number = arn.rpartition(":")
                    family = head.rsplit("/", 1)[-1]
                    if family not in found:
                        found[family] = (head + ":", {s: array("I") for s in LISTED})
                    found[family][1][status].append(int(number))
                if stop():
                    self.truncated = True
                    return found
        return found

    def family_lists(self, family: str) -> dict[Status, RevisionList]:
        """One family's INACTIVE and ACTIVE revisions, newest first, each listing complete."""
        numbers: dict[Status, array[int]] = {}
        prefix = ""
        for status in LISTED:
            if status is Status.DELETE_IN_PROGRESS and not numbers[Status.INACTIVE]:
                numbers[status] = array("I")  # nothing to take out of an empty INACTIVE listing: no call
                continue
            numbers[status] = array("I")
            for arns in self.pages(family, status):
                prefix = prefix or arns[0].rsplit(":", 1)[0] + ":"
                numbers[status].extend(int(arn.rsplit(":", 1)[1]) for arn in arns)
        return _by_status(family, prefix, numbers)

    def pages(self, family: str, status: Status) -> Iterator[list[str]]:
        """The family's revision ARNs with `status`, newest first, a page at a time."""
        for arns in self._ecs.arn_pages(status.value, family=family, newest_first=True):
            if arns:
                yield arns

    def revision(self, arn: str, status: Status, *, describe: bool) -> Revision | None:
        """The revision, described if asked; None if it disappeared since it was listed."""
        family, number = parse_arn(arn)
        if not describe:
            return Revision(arn=arn, family=family, revision=number, status=status)
        answer = self._ecs.describe(arn)
        if answer is None:
            return None
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


def _by_status(family: str, prefix: str, listed: dict[Status, array[int]]) -> dict[Status, RevisionList]:
    """Revision lists by status, newest first, each number once, each revision under its latest status.

    ACTIVE and INACTIVE are decided; DELETE_IN_PROGRESS is only counted (the family's quota, tdgc.report.quota).

    The listings run one after another in LISTED order, and a revision's status only ever moves along it
    (ACTIVE, INACTIVE, DELETE_IN_PROGRESS): one found in two listings moved on between them, and is where the
    later listing saw it. So a revision someone deregisters mid-scan is not counted among the newest ACTIVE,
    and one being deleted (which an INACTIVE listing may include) is never decided again.
    """
    later: set[int] = set()
    lists: dict[Status, RevisionList] = {}
    for status in reversed(LISTED):
        numbers = sorted(set(listed[status]) - later, reverse=True)
        later.update(numbers)
        lists[status] = RevisionList(family, prefix, array("I", numbers))
    return lists
