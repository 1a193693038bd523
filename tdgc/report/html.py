"""`--output html`: one self-contained page (inline CSS and SVG, no script, no font, nothing fetched).

The summary; a bar per family of its revisions by status against the quota; the actions with their reasons;
the revisions a reference kept. Every text from the account or the policy (family names, reasons, references,
notes) is escaped: it is input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from tdgc.model import Decision, Outcome, Status
from tdgc.report.digest import KEPT_NOTES, Digest, Section
from tdgc.report.model import Report, Summary
from tdgc.report.quota import QUOTA, FamilyQuota

FAMILIES_DRAWN = 200  # the closest to the quota; the JSON report has every family
LABEL_WIDTH, BAR_WIDTH, ROW_HEIGHT = 230, 560, 22
# What a bar is made of, left to right: each status's revisions, then the numbers used by revisions now gone.
PARTS = (
    ("ACTIVE", "#2e7d32"),
    ("INACTIVE", "#ef6c00"),
    ("DELETE_IN_PROGRESS", "#c62828"),
    ("gone (numbers used)", "#9e9e9e"),
)
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}
td.n,th.n{text-align:right}code{font-size:13px}.warn{color:#b71c1c;font-weight:bold}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 14px;vertical-align:middle}
"""


def _scale(value: float) -> float:
    """Where a revision count falls on the bar: a log scale from 1 to the quota (most families are far below)."""
    return BAR_WIDTH * math.log10(max(value, 1)) / math.log10(QUOTA)


class HtmlWriter(Digest):
    def finish(self, report: Report) -> None:
        h = self.header
        title = f"tdgc {h.get('mode', 'plan')} · {', '.join(h.get('regions', [])) or '-'}"
        w = self.out.write
        w(f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>')
        w(f"<style>{STYLE}</style></head><body>\n<h1>{escape(title)}</h1>\n")
        policy = h.get("policy", {}).get("source", "")
        w(f"<p>Policy: <code>{escape(str(policy))}</code> · generated {escape(str(h.get('generated_at', '')))}</p>\n")
        w(_summary(report.summary, h.get("mode", "plan")))
        w(_quota(report.families, several=len(report.targets) > 1))
        for section in self.sections:
            w(_section(section))
        notes = [f"{n:,} revisions {KEPT_NOTES[why]}" for why, n in sorted(self.kept.items()) if why in KEPT_NOTES]
        notes += [*report.incomplete, *report.notes]
        if report.interrupted:
            notes.append(f"interrupted ({report.interrupted}): what is above was done; the next run goes on")
        if notes:
            w("<h2>Notes</h2>\n<ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>\n")
        w("</body></html>\n")
        super().finish(report)


def _summary(s: Summary, mode: str) -> str:
    cells = [
        ("families", s.families),
        ("revisions", s.revisions),
        ("keep", s.keep),
        ("deregister", s.deregister),
        ("delete", s.delete),
        ("protected", s.protected),
    ]
    if mode == "apply":
        cells += [(r, s.results[r]) for r in ("done", "pending", "failed", "skipped")]
    head = "".join(f'<th class="n">{name}</th>' for name, _ in cells)
    row = "".join(f'<td class="n">{n:,}</td>' for _, n in cells)
    return f"<h2>Summary</h2>\n<table><tr>{head}</tr><tr>{row}</tr></table>\n"


def _quota(families: Sequence[FamilyQuota], *, several: bool) -> str:
    if not families:
        return ""
    drawn = families[:FAMILIES_DRAWN]
    legend = "".join(f'<span style="background:{colour}"></span>{escape(name)}' for name, colour in PARTS)
    height = ROW_HEIGHT * (len(drawn) + 1)
    width = LABEL_WIDTH + BAR_WIDTH + 240
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="revisions by status against the quota" font-size="12" font-family="sans-serif">'
    ]
    for k in range(0, 7):
        x = LABEL_WIDTH + _scale(10**k)
        svg.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 14}" stroke="#ccc"/>')
        svg.append(f'<text x="{x:.1f}" y="{height - 2}" text-anchor="middle">{_short(10**k)}</text>')
    for row, q in enumerate(drawn):
        svg.append(_bar(q, row * ROW_HEIGHT, several))
    svg.append("</svg>")
    more = (
        f"<p>… and {len(families) - len(drawn):,} more families (every one: --output json).</p>"
        if len(families) > len(drawn)
        else ""
    )
    return (
        f"<h2>Quota: {QUOTA:,} revisions a family</h2>\n<p>The closest first. A bar's length is the family's highest "
        f"revision number on a log scale (numbers are never reused, so that is what the quota counts), split by "
        f'status in proportion. <span class="warn">!</span> within 90 days of the quota at its rate.</p>\n'
        f'<p class="legend">{legend}</p>\n' + "\n".join(svg) + f"\n{more}\n"
    )


def _bar(q: FamilyQuota, y: int, several: bool) -> str:
    name = f"{q.target} {q.family}" if several else q.family
    held = [q.held.get(Status(s), 0) for s, _ in PARTS[:3]]
    counts = [*held, max(0, q.highest - sum(held))]
    length, total, x = _scale(q.highest), max(1, sum(counts)), float(LABEL_WIDTH)
    warn = ' fill="#b71c1c" font-weight="bold"' if q.near_quota else ""
    out = [
        f'<text x="0" y="{y + 15}"{warn}>{escape(_clip(name, 34))}{" !" if q.near_quota else ""}</text>',
        f'<rect x="{LABEL_WIDTH}" y="{y + 4}" width="{BAR_WIDTH}" height="14" fill="#eee"/>',
    ]
    for (part, colour), n in zip(PARTS, counts, strict=True):
        if n:
            width = length * n / total
            out.append(
                f'<rect x="{x:.1f}" y="{y + 4}" width="{width:.1f}" height="14" fill="{colour}">'
                f"<title>{escape(name)}: {n:,} {escape(part)}</title></rect>"
            )
            x += width
    rate = "rate unknown" if q.per_day is None else f"{q.per_day:,.1f}/day"
    days = "" if q.days_to_quota is None else f", {q.days_to_quota:,} days left"
    out.append(f'<text x="{LABEL_WIDTH + BAR_WIDTH + 8}" y="{y + 15}">{q.highest:,} · {rate}{days}</text>')
    return "".join(out)


def _section(section: Section) -> str:
    parts = []
    if section.target is not None:
        status = "" if section.target.status.value == "ok" else f" · {section.target.status.value}"
        parts.append(f"<h2>{escape(section.target.target + status)}</h2>\n")
    rows = [_action_row(d, o) for row in section.families.values() for d, o in row.actions]
    rows += [
        f'<tr><td></td><td colspan="3">… and {row.more:,} more in <code>{escape(name)}</code></td></tr>'
        for name, row in section.families.items()
        if row.more
    ]
    if rows:
        head = "<tr><th>action</th><th>revision</th><th>reason</th><th>result</th></tr>"
        parts.append(f"<h3>Actions</h3>\n<table>{head}\n" + "\n".join(rows) + "</table>\n")
    if section.in_use:
        uses = [
            f"<tr><td><code>{escape(_name(d))}</code></td><td>{escape(', '.join(d.in_use_by))}</td></tr>"
            for d in section.in_use
        ]
        parts.append(
            "<h3>In use, kept</h3>\n<table><tr><th>revision</th><th>in use by</th></tr>\n"
            + "\n".join(uses)
            + "</table>\n"
        )
    return "".join(parts)


def _action_row(d: Decision, outcome: Outcome | None) -> str:
    result = "" if outcome is None else outcome.result.value + (f": {outcome.error}" if outcome.error else "")
    return (
        f"<tr><td>{d.action.value}</td><td><code>{escape(_name(d))}</code></td><td>{escape(d.reason)}</td>"
        f"<td>{escape(result)}</td></tr>"
    )


def _name(d: Decision) -> str:
    return f"{d.revision.family}:{d.revision.revision}"


def _short(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k" if n >= 1000 else str(n)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
