"""What the formats for people (table, markdown, html) keep of a run: counts per family, the first few actions
of each and the first revisions kept for a reference, so that memory stays flat however large the account."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO

from tdgc.model import Action, Decision, Outcome, Why
from tdgc.report.model import Summary, TargetSection, Writer

ACTIONS_SHOWN_PER_FAMILY = 5
IN_USE_SHOWN = 20
# The kept revisions the notes count, and how they say why.
KEPT_NOTES = {
    Why.IN_USE: "kept because in use",
    Why.TAGGED: "kept by a protecting tag",
    Why.NO_TIME: "kept because ECS has no timestamp for them",
}


@dataclass
class FamilyRow:
    counts: Summary = field(default_factory=Summary)
    actions: list[tuple[Decision, Outcome | None]] = field(default_factory=list)  # the first few
    more: int = 0


@dataclass
class Section:
    """What is shown of one target."""

    target: TargetSection | None = None
    families: dict[str, FamilyRow] = field(default_factory=dict)
    in_use: list[Decision] = field(default_factory=list)  # the first few revisions kept because something uses them


class Digest(Writer):
    """Collects a section per target; the subclasses render it in `finish`."""

    def __init__(self, out: IO[str]) -> None:
        super().__init__(out)
        self.sections: list[Section] = []
        self.kept: Counter[Why] = Counter()  # the revisions kept, by what kept them

    def begin_target(self, section: TargetSection) -> None:
        self.sections.append(Section(section))

    @property
    def current(self) -> Section:
        if not self.sections:
            self.sections.append(Section())
        return self.sections[-1]

    def add(self, decisions: Sequence[Decision], outcomes: Sequence[Outcome]) -> None:
        by_arn = {o.arn: o for o in outcomes}
        current = self.current
        for d in decisions:
            row = current.families.setdefault(d.revision.family, FamilyRow())
            outcome = by_arn.get(d.revision.arn)
            row.counts.count([d], [outcome] if outcome else [])
            if d.action is Action.KEEP:
                self.kept[d.why] += 1
                if d.in_use_by and len(current.in_use) < IN_USE_SHOWN:
                    current.in_use.append(d)
            elif len(row.actions) < ACTIONS_SHOWN_PER_FAMILY:
                row.actions.append((d, outcome))
            else:
                row.more += 1
