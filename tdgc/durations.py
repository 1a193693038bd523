"""Durations as people write them ("6 months", "90 days", "12h", "P6M"), as calendar arithmetic."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta

_UNITS = {
    "y": "years",
    "yr": "years",
    "yrs": "years",
    "year": "years",
    "years": "years",
    "mo": "months",
    "mon": "months",
    "month": "months",
    "months": "months",
    "w": "weeks",
    "wk": "weeks",
    "wks": "weeks",
    "week": "weeks",
    "weeks": "weeks",
    "d": "days",
    "day": "days",
    "days": "days",
    "h": "hours",
    "hr": "hours",
    "hrs": "hours",
    "hour": "hours",
    "hours": "hours",
    "min": "minutes",
    "mins": "minutes",
    "minute": "minutes",
    "minutes": "minutes",
    "s": "seconds",
    "sec": "seconds",
    "secs": "seconds",
    "second": "seconds",
    "seconds": "seconds",
}
_ORDER = ("years", "months", "weeks", "days", "hours", "minutes", "seconds")
_PART = re.compile(r"(\d+)\s*([a-z]+)", re.ASCII)  # ASCII digits only: "²" or "٣" is no number of days
_ISO = re.compile(
    r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?",
    re.ASCII,
)
LONGEST = "100 years"  # any longer and a cut-off may not be computable for some date this century
_CENTURY = (datetime(2000, 1, 1), datetime(2100, 1, 1))


@dataclass(frozen=True, slots=True)
class Duration:
    """A calendar duration; `text` is its canonical spelling, used in reasons and reports."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0
    hours: int = 0
    minutes: int = 0
    seconds: int = 0

    @property
    def delta(self) -> relativedelta:
        return relativedelta(
            years=self.years,
            months=self.months,
            weeks=self.weeks,
            days=self.days,
            hours=self.hours,
            minutes=self.minutes,
            seconds=self.seconds,
        )

    def before(self, moment: datetime) -> datetime:
        """The moment this long before `moment`: a revision at or before it is old enough."""
        return moment - self.delta

    @property
    def fixed(self) -> bool:
        """Whether it is always as long: no months or years, whose length depends on the calendar."""
        return not (self.years or self.months)

    def seconds_from(self, moment: datetime) -> float:
        """How many seconds this is, counted from `moment` (a month is not always as long)."""
        return ((moment + self.delta) - moment).total_seconds()

    @property
    def text(self) -> str:
        parts = []
        for unit in _ORDER:
            n = getattr(self, unit)
            if n:
                parts.append(f"{n} {unit[:-1] if n == 1 else unit}")
        return " ".join(parts) or "0 days"

    def __str__(self) -> str:
        return self.text


def parse_duration(text: str) -> Duration:
    """Parse "6 months", "90 days", "1y 6mo", "12h", "P6M", "PT12H". Raises ValueError with the reason."""
    raw = text.strip()
    if not raw:
        raise ValueError("empty duration")
    if raw[0] in "pP":
        match = _ISO.fullmatch(raw.upper())
        if not match or raw.upper() in ("P", "PT") or raw.upper().endswith("T"):
            raise ValueError(f"{text!r} is not an ISO 8601 duration such as P6M or P90D")
        return _in_range(Duration(**{k: int(v) for k, v in match.groupdict().items() if v}), text)
    lowered = raw.lower().replace(",", " ")
    pos, values = 0, dict.fromkeys(_ORDER, 0)
    for match in _PART.finditer(lowered):
        if lowered[pos : match.start()].strip():
            break
        unit = match.group(2)
        if unit == "m":
            raise ValueError(f"{text!r}: unit 'm' is ambiguous; write 'min' or 'mo'")
        if unit not in _UNITS:
            raise ValueError(f"{text!r}: unknown unit {unit!r} (use years, months, weeks, days, hours, min)")
        values[_UNITS[unit]] += int(match.group(1))
        pos = match.end()
    if pos == 0 or lowered[pos:].strip():
        raise ValueError(f"{text!r} is not a duration such as '6 months', '90 days', '12h' or 'P6M'")
    return _in_range(Duration(**values), text)


def _in_range(duration: Duration, text: str) -> Duration:
    """The duration, if a cut-off `duration` before any moment of this century is a date Python can hold."""
    start, end = _CENTURY
    try:
        fits = start + duration.delta <= end
    except (OverflowError, ValueError):  # more days than a date can count
        fits = False
    if not fits:
        raise ValueError(f"{text!r} is too long: at most {LONGEST}")
    return duration


_UNIT_SECONDS = (("days", 86400), ("hours", 3600), ("minutes", 60), ("seconds", 1))


def humanize_age(age: timedelta, at_least: timedelta | None = None) -> str:
    """An elapsed time for reasons, in whole units and never rounded up: "212 days", "5 hours", "3 minutes".

    With `at_least` (a length the age is known to reach), the unit is fine enough that the figure reaches it
    too: a floored "7 days" for 7.04 days, but "36 hours" rather than "1 day" for 36 hours against 36 hours.
    """
    seconds = max(math.floor(age.total_seconds()), 0)
    for unit, size in _UNIT_SECONDS:
        n = seconds // size
        if (n >= 2 or size == 1) and (at_least is None or n * size >= at_least.total_seconds()):
            return f"{n} {unit[:-1] if n == 1 else unit}"
    raise AssertionError("unreachable: seconds always fit")  # pragma: no cover


def age_against(moment: datetime, limit: Duration, now: datetime) -> tuple[bool, str]:
    """Whether `moment` is at least `limit` before `now` (the age rules' test), and the phrase that says so,
    true of the figures it shows: "212 days ago ≥ 180 days", "12 days ago < 30 days". The age is floored (a
    "≥" in a unit fine enough to stay true); a limit in months or years, whose length depends on the calendar,
    is given in days (or finer) too: "190 days ago ≥ 6 months (181 days)"."""
    cutoff = limit.before(now)
    old = moment <= cutoff
    length = now - cutoff
    shown = limit.text if limit.fixed else f"{limit.text} ({humanize_age(length, at_least=length)})"
    if moment > now:  # a clock ahead of this one's: rounded up, so that it stays below any limit
        ahead = timedelta(seconds=math.ceil((moment - now).total_seconds()))
        return old, f"{humanize_age(ahead)} from now < {shown}"
    if old:
        return old, f"{humanize_age(now - moment, at_least=length)} ago ≥ {shown}"
    return old, f"{humanize_age(now - moment)} ago < {shown}"
