"""The formats for people: the table keeps each action's result in view, shows the families closest to the quota,
and `--output html` is one self-contained page, escaped, that a browser renders with a bar per family."""

from __future__ import annotations

import io
import re
import shutil
import struct
import subprocess
import zlib
from array import array
from datetime import timedelta
from pathlib import Path

import pytest

from tdgc.model import Action, Decision, Outcome, Result, Revision, Status, Why
from tdgc.report.model import Report, Writer
from tdgc.report.quota import QUOTA
from tdgc.report.writers import FORMATS, TableWriter, make_writer
from tests.helpers import NOW

HOSTILE = '<script>alert("x")</script>&<img src=x onerror=alert(1)>'


class _Listed:
    def __init__(self, *numbers: int) -> None:
        self.numbers = array("I", sorted(numbers, reverse=True))


def _arn(family: str, n: int) -> str:
    return f"arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:{n}"


def _report(writer: Writer, *, mode: str = "apply", reason: str = "deregistered 200 days ago ≥ 180 days") -> Report:
    """Three families: one near the quota and growing, one with a hostile name, one small; a delete each."""
    report = Report([writer], {"mode": mode, "generated_at": NOW.isoformat(), "regions": ["us-east-1"]})
    report.begin_target("us-east-1", None, "us-east-1")
    near = QUOTA - 5_000
    families = {
        "busy-etl": ({Status.ACTIVE: _Listed(near), Status.INACTIVE: _Listed(near - 1, near - 2)}, near - 2),
        HOSTILE: ({Status.ACTIVE: _Listed(40), Status.INACTIVE: _Listed(12, 11)}, 12),
        "web": ({Status.ACTIVE: _Listed(3), Status.INACTIVE: _Listed(2)}, 2),
    }
    for family, (lists, deleted) in families.items():
        report.family_seen(family, lists)
        old = Revision(
            _arn(family, deleted), family, deleted, Status.INACTIVE, deregistered_at=NOW - timedelta(days=400)
        )
        newest = lists[Status.ACTIVE].numbers[0]
        kept = Revision(_arn(family, newest), family, newest, Status.ACTIVE)
        decisions = [
            Decision(old, Action.DELETE, reason if family != HOSTILE else HOSTILE),
            Decision(kept, Action.KEEP, "in use", protected=True, in_use_by=(f"service {family}",), why=Why.IN_USE),
        ]
        outcomes = [Outcome(old.arn, Action.DELETE, Result.PENDING)] if mode == "apply" else []
        report.add(decisions, outcomes)
    # busy-etl: 5,000 registrations in the last 30 days, from a revision described just before the window.
    at = NOW - timedelta(days=30, minutes=1)
    probe = Revision(_arn("busy-etl", near - 5_000), "busy-etl", near - 5_000, Status.INACTIVE, registered_at=at)
    report.add([Decision(probe, Action.KEEP, "young enough")])
    report.finish()
    return report


@pytest.mark.parametrize("width_of_reason", [10, 60, 200])
def test_every_action_line_keeps_its_result_in_80_columns(width_of_reason: int) -> None:
    out = io.StringIO()
    _report(TableWriter(out), reason="r" * width_of_reason)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("  delete ")]
    assert len(lines) == 3
    for line in lines:
        assert len(line) <= TableWriter.WIDTH
        assert line.endswith("[pending]"), line


def test_a_long_error_gives_way_but_keeps_its_result_and_bracket() -> None:
    out = io.StringIO()
    writer = TableWriter(out)
    revision = Revision(_arn("web", 2), "web", 2, Status.INACTIVE)
    writer.start({"mode": "apply"})
    line = writer._action_line(
        Decision(revision, Action.DELETE, "deregistered long ago"),
        Outcome(revision.arn, Action.DELETE, Result.FAILED, "AccessDenied: " + "x" * 200),
    )
    assert len(line) <= TableWriter.WIDTH
    assert "deregistered" in line and "[failed: Access" in line and line.endswith("…]")


def test_the_table_lists_the_families_closest_to_the_quota_and_warns_of_the_near_one() -> None:
    out = io.StringIO()
    report = _report(TableWriter(out))
    text = out.getvalue()
    section = text[text.index("Closest to the quota") :]
    rows = section.splitlines()[2:5]
    assert rows[0].startswith("busy-etl") and rows[0].endswith(" !")
    assert "5,000" in rows[0]  # the headroom
    assert [q.family for q in report.families if q.near_quota] == ["busy-etl"]
    assert any("busy-etl reaches the quota" in note for note in report.notes)


def test_html_is_self_contained_escaped_and_draws_a_bar_per_family() -> None:
    assert "html" in FORMATS
    out = io.StringIO()
    _report(make_writer("html", out))
    page = out.getvalue()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;" in page  # the hostile family name and reason, shown as text
    assert not re.search(r"(src|href)=\"?(https?:)?//", page)  # nothing fetched from elsewhere
    bars = re.findall(r"<title>[^<]*: [0-9,]+ ACTIVE</title>", page)
    assert len(bars) == 3
    assert "busy-etl !" in page  # the warning
    assert "[pending]" not in page and "<td>pending</td>" in page


def _browser() -> str | None:
    return next((p for name in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(name))), None)


def _pixels(png: bytes, wanted: set[tuple[int, int, int]]) -> tuple[int, int, set[tuple[int, int, int]]]:
    """Width, height and the colours of an 8-bit RGB or RGBA PNG (what Chromium writes), decoded with zlib,
    row by row until every colour wanted has been seen."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    at, data = 8, b""
    while at < len(png):
        (length,), kind = struct.unpack(">I", png[at : at + 4]), png[at + 4 : at + 8]
        body = png[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
        elif kind == b"IDAT":
            data += body
        at += 12 + length
    step = 3 if colour == 2 else 4
    raw, stride, previous, colours = zlib.decompress(data), width * step, bytearray(width * step), set()
    for y in range(height):
        kind, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            a = row[x - step] if x >= step else 0
            b, c = previous[x], previous[x - step] if x >= step else 0
            p = a + b - c
            paeth = a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c) else c
            row[x] = (row[x] + (0, a, b, (a + b) // 2, paeth)[kind]) & 0xFF
        colours.update(tuple(row[x : x + 3]) for x in range(0, stride, step))
        if wanted <= colours:
            break
        previous = row
    return width, height, colours


@pytest.mark.skipif(_browser() is None, reason="no chromium, chromium-browser or google-chrome on PATH")
def test_html_renders_in_headless_chromium_with_the_bars_drawn(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    with page.open("w", encoding="utf-8") as out:
        _report(make_writer("html", out))
    shot = tmp_path / "report.png"
    browser = _browser()
    assert browser is not None
    # No network (the flags stop Chromium's own background calls), a profile of its own.
    quiet = ["--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    command = [browser, "--headless", "--disable-gpu", "--no-sandbox", *quiet, f"--user-data-dir={tmp_path / 'p'}"]
    command += ["--window-size=1000,600", f"--screenshot={shot}", page.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert shot.exists(), done.stderr[-2000:]
    drawn = {(0x2E, 0x7D, 0x32), (0xEF, 0x6C, 0x00)}  # ACTIVE and INACTIVE
    width, height, colours = _pixels(shot.read_bytes(), drawn)
    assert (width, height) == (1000, 600)
    assert drawn <= colours
