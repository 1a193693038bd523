"""Reports: every decision and outcome, streamed to one writer per destination, one format each.

Formats (docs/design.md §5): `table` (people, 80 columns), `markdown` (the same, for a wiki or a pull request),
`json` (one document), `jsonl` (a line per decision and outcome, the summary last), `csv` (a row per
decision), `html` (one self-contained page with the quota drawn, tdgc.report.html). The machine formats are
stable: fields are only ever added, and `version` says which schema.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import IO, Any

from tdgc.model import Decision, Outcome
from tdgc.report.digest import KEPT_NOTES, Digest, FamilyRow, Section
from tdgc.report.html import HtmlWriter
from tdgc.report.model import Report, Summary, TargetSection, TargetStatus, Writer, iso
from tdgc.report.quota import QUOTA, FamilyQuota

FORMATS = ("table", "json", "jsonl", "csv", "markdown", "html")
DECISION_FIELDS = (
    "arn",
    "family",
    "revision",
    "status",
    "action",
    "reason",
    "registered_at",
    "deregistered_at",
    "in_use_by",
    "why",
)
# A new decision field goes after result and error: a CSV column keeps its place.
CSV_FIELDS = (*DECISION_FIELDS[:-1], "result", "error", "why")
QUOTA_SHOWN = 5  # the families closest to the quota that the table lists (3 in the short form)
FAMILIES_SHOWN = 40  # past this many families, the table lists only those with something to do
APPLY_NEXT = "`tdgc apply` with the same policy carries it out."
# What the table's abbreviations and the two statuses mean, for a reader who has not read the docs.
LEGEND = (
    ("REVS", "revisions held, ACTIVE and INACTIVE (both count toward the quota)"),
    ("KEEP", "left as they are; PROT: of those, kept by a protecting tag or in use"),
    ("DEREG", "ACTIVE revisions to deregister: INACTIVE from then on, for good"),
    ("DELETE", "INACTIVE revisions to delete: gone for good once nothing uses them"),
    ("ACTIVE", "new tasks can start on it; INACTIVE: running ones go on, no new ones"),
)


def decision_dict(d: Decision) -> dict[str, Any]:
    r = d.revision
    return {
        "arn": r.arn,
        "family": r.family,
        "revision": r.revision,
        "status": r.status.value,
        "action": d.action.value,
        "reason": d.reason,
        "registered_at": iso(r.registered_at),
        "deregistered_at": iso(r.deregistered_at),
        "in_use_by": list(d.in_use_by),
        "why": d.why.value,
    }


def outcome_dict(o: Outcome) -> dict[str, Any]:
    return {"arn": o.arn, "action": o.action.value, "result": o.result.value, "error": o.error}


class JsonWriter(Writer):
    """One JSON document; decisions stream out as they come, outcomes are spooled until the end."""

    def start(self, header: Mapping[str, Any]) -> None:
        super().start(header)
        # Outcomes come after all decisions in the document; spool them so memory stays flat.
        self._spool = tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+", encoding="utf-8")  # noqa: SIM115
        self._first = {"decisions": True, "outcomes": True}
        head = json.dumps(self.header, sort_keys=False)[:-1]
        self.out.write(f'{head}, "decisions": [')

    def _item(self, out: IO[str], kind: str, item: Mapping[str, Any]) -> None:
        out.write(("\n" if self._first[kind] else ",\n") + json.dumps(item))
        self._first[kind] = False

    def add(self, decisions: Sequence[Decision], outcomes: Sequence[Outcome]) -> None:
        for d in decisions:
            self._item(self.out, "decisions", decision_dict(d))
        for o in outcomes:
            self._item(self._spool, "outcomes", outcome_dict(o))

    def finish(self, report: Report) -> None:
        self.out.write('\n], "outcomes": [')
        self._spool.seek(0)
        while chunk := self._spool.read(1 << 16):
            self.out.write(chunk)
        self._spool.close()
        self.out.write("\n], " + json.dumps(report.tail())[1:] + "\n")
        super().finish(report)


class JsonlWriter(Writer):
    def add(self, decisions: Sequence[Decision], outcomes: Sequence[Outcome]) -> None:
        for d in decisions:
            self.out.write(json.dumps({"type": "decision", **decision_dict(d)}) + "\n")
        for o in outcomes:
            self.out.write(json.dumps({"type": "outcome", **outcome_dict(o)}) + "\n")

    def finish(self, report: Report) -> None:
        self.out.write(json.dumps({"type": "summary", **self.header, **report.tail()}) + "\n")
        super().finish(report)


class CsvWriter(Writer):
    """A row per decision; in apply, the row carries its outcome."""

    def start(self, header: Mapping[str, Any]) -> None:
        super().start(header)
        self._csv = csv.DictWriter(self.out, fieldnames=CSV_FIELDS, lineterminator="\n")
        self._csv.writeheader()

    def add(self, decisions: Sequence[Decision], outcomes: Sequence[Outcome]) -> None:
        by_arn = {o.arn: o for o in outcomes}
        for d in decisions:
            row = decision_dict(d)
            row["in_use_by"] = "; ".join(d.in_use_by)
            outcome = by_arn.get(d.revision.arn)
            row["result"] = outcome.result.value if outcome else ""
            row["error"] = (outcome.error or "") if outcome else ""
            self._csv.writerow(row)


class TableWriter(Digest):
    """For people: a per-family summary and the actions with their reasons, in 80 columns.

    `top` is the short form (`tdgc demo` without --full): only the `top` families with the most actions, the
    first action of each, and no list of the revisions kept in use (the notes count them). `legend` explains
    the columns; `next_step` is what a plan's last line suggests; `review` ends with the counts only, for the
    question apply asks next.
    """

    WIDTH = 80

    def __init__(
        self,
        out: IO[str],
        *,
        markdown: bool = False,
        top: int | None = None,
        legend: bool = False,
        next_step: str = APPLY_NEXT,
        review: bool = False,
    ) -> None:
        super().__init__(out)
        self.markdown = markdown
        self.top = top
        self.legend = legend
        self.next_step = next_step
        self.review = review

    def _action_line(self, d: Decision, outcome: Outcome | None) -> str:
        name = f"{d.revision.family}:{d.revision.revision}"
        result = ""
        if outcome is not None:
            result = f" [{outcome.result.value}" + (f": {outcome.error}" if outcome.error else "") + "]"
        if self.markdown:
            return f"| {d.action.value} | `{name}` | {d.reason}{result} |"
        head = f"  {d.action.value:<10} {_fit(name, 28):<28} "
        room = self.WIDTH - len(head)
        # The result is what a person looks for: the reason gives way to it, and an error to the reason.
        result = _fit(result[:-1], room // 2) + "]" if len(result) > room // 2 else result
        return head + _fit(d.reason, room - len(result)) + result

    def _in_use_line(self, d: Decision) -> str:
        name = f"{d.revision.family}:{d.revision.revision}"
        uses = ", ".join(d.in_use_by)
        if self.markdown:
            return f"| `{name}` | {uses} |"
        return _fit(f"  {_fit(name, 28):<28} {uses}", self.WIDTH)

    def finish(self, report: Report) -> None:
        summary, notes = report.summary, [*report.incomplete, *report.notes]
        h = self.header
        mode = h.get("mode", "plan")
        regions = ", ".join(h.get("regions", [])) or "-"
        policy = h.get("policy", {}).get("source", "")
        w = self.out.write
        title = f"tdgc {mode} · {regions} · policy: {policy}"
        w(f"# {title}\n\n" if self.markdown else f"{_fit(title, self.WIDTH)}\n\n")
        sections = self.sections or [Section()]
        for section in sections:
            if len(sections) > 1 and section.target is not None:
                self._section_title(section.target)
            self._section(
                section, section.target.summary if section.target else summary, "###" if len(sections) > 1 else "##"
            )
        self._quota(report.families, several=len(report.targets) > 1)
        self._notes(notes)
        if self.legend:
            self._legend()
        w("\n" + (f"Plan: {_counts(summary)}" if self.review else self._closing(summary, mode, self.next_step)) + "\n")
        if len(report.targets) > 1:
            w(_targets_line(report.targets) + "\n")
        if report.incomplete:
            w("INCOMPLETE: some references could not be read; see Notes.\n")
        if report.interrupted:
            w(f"INTERRUPTED ({report.interrupted}): what is above was done; the next run goes on.\n")
        super().finish(report)

    def _notes(self, notes: Sequence[str]) -> None:
        w = self.out.write
        notable = sorted((KEPT_NOTES[why], n) for why, n in self.kept.items() if why in KEPT_NOTES)
        lines = [f"{n:,} {'revision' if n == 1 else 'revisions'} {text}" for text, n in notable]
        lines += list(notes)
        if lines:
            w("\n## Notes\n\n" if self.markdown else "\nNotes\n")
            for line in lines:
                w(f"- {line}\n" if self.markdown else f"  {line}\n")

    def _legend(self) -> None:
        w = self.out.write
        w("\n## Legend\n\n" if self.markdown else "\nLegend\n")
        for term, meaning in LEGEND:
            if self.markdown:
                w(f"- **{term}** {meaning}\n" if term else f"  {meaning}\n")
            else:
                w(_fit(f"  {term:<7} {meaning}", self.WIDTH) + "\n")

    def _largest(self, families: Mapping[str, FamilyRow]) -> list[str]:
        """The short form's families: the `top` with the most actions, most first (then by name)."""
        acting = sorted((-(r.counts.deregister + r.counts.delete), name) for name, r in families.items())
        return [name for count, name in acting if count][: self.top]

    def _quota(self, families: Sequence[FamilyQuota], *, several: bool) -> None:
        """The families closest to the quota; the JSON report's `families` has every one."""
        if not families:
            return
        w = self.out.write
        cols = ("HIGHEST", "HEADROOM", "PER DAY", "DAYS LEFT")
        title = f"Closest to the quota ({QUOTA:,} revisions a family)"
        if self.markdown:
            w(f"\n## {title}\n\n| family | " + " | ".join(c.lower() for c in cols) + " |\n|---|" + "---:|" * 4 + "\n")
        else:
            w(f"\n{title}\n{'FAMILY':<36}" + "".join(f"{c:>11}" for c in cols) + "\n")
        for q in families[: QUOTA_SHOWN if self.top is None else 3]:
            name = f"{q.target} {q.family}" if several else q.family
            rate = "-" if q.per_day is None else f"{q.per_day:,.1f}"
            days = "-" if q.days_to_quota is None else f"{q.days_to_quota:,}"
            values = (f"{q.highest:,}", f"{q.headroom:,}", rate, days + (" !" if q.near_quota else ""))
            if self.markdown:
                w(f"| `{name}` | " + " | ".join(values) + " |\n")
            else:
                w(f"{_fit(name, 35):<36}" + "".join(f"{v:>11}" for v in values) + "\n")

    def _section_title(self, target: TargetSection) -> None:
        status = (
            ""
            if target.status is TargetStatus.OK
            else f" · {target.status.value}" + (f": {target.error}" if target.error else "")
        )
        text = f"{target.target}{status}"
        self.out.write(f"\n## {text}\n\n" if self.markdown else f"\n== {_fit(text, self.WIDTH - 3)}\n")

    def _section(self, section: Section, summary: Summary, level: str) -> None:
        w = self.out.write
        largest = self._largest(section.families) if self.top is not None else None
        self._family_table(section.families, summary, largest)
        if largest is not None:
            acting = [(name, FamilyRow(actions=section.families[name].actions[:1])) for name in largest]
            every = summary.deregister + summary.delete
            title = f"Actions: one of each family above (more: --full; all {every:,}: --output json)"
        else:
            acting = [(name, row) for name, row in section.families.items() if row.actions]
            title = "Actions"
        if acting:
            heading = f"\n{level} {title}\n\n| action | revision | reason |\n|---|---|---|\n"
            w(heading if self.markdown else f"\n{_fit(title, self.WIDTH)}\n")
            for name, row in acting:
                for d, outcome in row.actions:
                    w(self._action_line(d, outcome) + "\n")
                if row.more:
                    more = f"… and {row.more} more in {name}"
                    w(f"| | | {more} |\n" if self.markdown else f"  {_fit(more, self.WIDTH - 2)}\n")
            if any(row.more for _, row in acting) and not self.markdown:
                w("  (every decision: --output json, jsonl or csv)\n")
        if section.in_use and largest is None:
            heading = f"\n{level} In use, kept\n\n| revision | in use by |\n|---|---|\n"
            w(heading if self.markdown else "\nIn use, kept\n")
            for d in section.in_use:
                w(self._in_use_line(d) + "\n")

    def _family_table(self, families: Mapping[str, FamilyRow], summary: Summary, largest: Sequence[str] | None) -> None:
        w = self.out.write
        rows = sorted(families.items())
        hidden, rest = 0, "with nothing to do"
        if largest is not None:
            rows = [(name, families[name]) for name in largest]
            hidden, rest = len(families) - len(rows), "with fewer actions"
        elif len(rows) > FAMILIES_SHOWN:
            shown = [(n, r) for n, r in rows if r.counts.deregister or r.counts.delete or r.counts.protected]
            hidden = len(rows) - len(shown)
            rows = shown
        cols = ("REVS", "KEEP", "DEREG", "DELETE", "PROT")
        which = "" if largest is None else f" ({len(rows)} with the most actions)"
        if self.markdown:
            w(f"| family{which} | " + " | ".join(c.lower() for c in cols) + " |\n|---|" + "---:|" * len(cols) + "\n")
        else:
            w(f"{'FAMILY' + which:<38}" + "".join(f"{c:>8}" for c in cols) + "\n")
        for name, r in rows:
            self._row(name, r.counts)
        if hidden:
            text = f"… {hidden} more families {rest}"
            w(f"| {text} | | | | | |\n" if self.markdown else f"{text}\n")
        self._row(f"TOTAL ({summary.families} families)", summary, bold=True)

    def _row(self, name: str, counts: Summary, bold: bool = False) -> None:
        values = (counts.revisions, counts.keep, counts.deregister, counts.delete, counts.protected)
        if self.markdown:
            label = f"**{name}**" if bold else f"`{name}`"
            self.out.write(f"| {label} | " + " | ".join(f"{v:,}" for v in values) + " |\n")
        else:
            self.out.write(f"{_fit(name, 37):<38}" + "".join(f"{v:>8,}" for v in values) + "\n")

    @staticmethod
    def _closing(s: Summary, mode: str, next_step: str = APPLY_NEXT) -> str:
        counts = _counts(s)
        if mode == "plan":
            todo = f" {next_step}" if s.deregister or s.delete else ""
            return f"Plan: {counts}\nNothing was changed.{todo}"
        r = s.results
        return (
            f"Applied: {counts}\n{r['done']:,} done, {r['pending']:,} pending (ECS completes deletes), "
            f"{r['failed']:,} failed, {r['skipped']:,} skipped."
        )


def _counts(s: Summary) -> str:
    return (
        f"deregister {s.deregister:,}, delete {s.delete:,}, keep {s.keep:,} "
        f"of {s.revisions:,} revisions ({s.families:,} families)."
    )


def _targets_line(targets: Sequence[TargetSection]) -> str:
    counts = Counter(t.status for t in targets)
    return f"{len(targets)} targets: " + ", ".join(f"{counts[s]} {s.value}" for s in TargetStatus if counts[s]) + "."


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def make_writer(fmt: str, out: IO[str]) -> Writer:
    if fmt == "json":
        return JsonWriter(out)
    if fmt == "jsonl":
        return JsonlWriter(out)
    if fmt == "csv":
        return CsvWriter(out)
    if fmt == "html":
        return HtmlWriter(out)
    if fmt in ("table", "markdown"):
        return TableWriter(out, markdown=fmt == "markdown")
    raise ValueError(f"unknown report format {fmt!r}")
