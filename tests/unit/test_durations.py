import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tdgc.durations import Duration, age_against, humanize_age, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6 months", Duration(months=6)),
        ("90 days", Duration(days=90)),
        ("12h", Duration(hours=12)),
        ("P6M", Duration(months=6)),
        ("p90d", Duration(days=90)),
        ("PT12H", Duration(hours=12)),
        ("P1Y2M3W4DT5H6M7S", Duration(1, 2, 3, 4, 5, 6, 7)),
        ("1y 6mo", Duration(years=1, months=6)),
        ("2 weeks, 3 days", Duration(weeks=2, days=3)),
        ("30min", Duration(minutes=30)),
        ("0 days", Duration()),
        ("  7 Days ", Duration(days=7)),
    ],
)
def test_parses_what_people_write(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("6", "not a duration"),
        ("six months", "not a duration"),
        ("5 m", "ambiguous"),
        ("10 parsecs", "unknown unit"),
        ("-5 days", "not a duration"),
        ("6 months ago", "not a duration"),
        ("P", "ISO 8601"),
        ("PT", "ISO 8601"),
        ("P1DT", "ISO 8601"),
        ("P6X", "ISO 8601"),
    ],
)
def test_rejects_with_a_reason(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_duration(text)


def test_months_are_calendar_months() -> None:
    assert Duration(months=6).before(datetime(2026, 8, 31, tzinfo=UTC)) == datetime(2026, 2, 28, tzinfo=UTC)
    assert Duration(years=1).before(datetime(2028, 2, 29, tzinfo=UTC)) == datetime(2027, 2, 28, tzinfo=UTC)


@given(st.builds(Duration, st.integers(0, 20), *[st.integers(0, 500)] * 6))  # all well within 100 years
def test_canonical_text_parses_back_to_the_same_duration(duration: Duration) -> None:
    assert parse_duration(duration.text) == duration


@pytest.mark.parametrize(
    ("text", "fits"),
    [
        ("100 years", True),
        ("P100Y", True),
        ("36524 days", True),
        ("99 years 12 months", True),
        ("100 years 1 second", False),
        ("101 years", False),
        ("1201 months", False),
        ("10000y", False),
        ("99999999999 days", False),
        ("P99999999Y", False),
        ("9" * 30 + " hours", False),
    ],
)
def test_a_cut_off_is_computable_for_any_date_this_century(text: str, fits: bool) -> None:
    if fits:
        duration = parse_duration(text)
        for moment in (datetime(2000, 1, 1, tzinfo=UTC), datetime(2099, 12, 31, 23, 59, tzinfo=UTC)):
            assert duration.before(moment).year >= 1899 and duration.seconds_from(moment) > 0
    else:
        with pytest.raises(ValueError, match="is too long: at most 100 years"):
            parse_duration(text)


@pytest.mark.parametrize("text", ["² days", "٣ days", "P٣D", "3 days\u0661"])
def test_digits_are_ascii_digits(text: str) -> None:
    with pytest.raises(ValueError, match="is not a"):
        parse_duration(text)


def test_ages_read_naturally() -> None:
    assert humanize_age(timedelta(days=212, hours=3)) == "212 days"
    assert humanize_age(timedelta(days=7, hours=6)) == "7 days"  # floored, never rounded up
    assert humanize_age(timedelta(hours=5)) == "5 hours"
    assert humanize_age(timedelta(minutes=3)) == "3 minutes"
    assert humanize_age(timedelta(seconds=1.9)) == "1 second"
    assert humanize_age(timedelta(hours=36), at_least=timedelta(hours=36)) == "36 hours"


NOW_ = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_an_age_against_a_limit_reads_true() -> None:
    days = Duration(days=180)
    # The example: 180.5 days used to read "180 days ago > 180 days".
    assert age_against(NOW_ - timedelta(days=180, hours=12), days, NOW_) == (True, "180 days ago ≥ 180 days")
    assert age_against(NOW_ - timedelta(days=180), days, NOW_) == (True, "180 days ago ≥ 180 days")
    assert age_against(NOW_ - timedelta(days=180) + timedelta(seconds=1), days, NOW_) == (
        False,
        "179 days ago < 180 days",
    )
    week = Duration(weeks=1)
    assert age_against(NOW_ - timedelta(days=7.04), week, NOW_) == (True, "7 days ago ≥ 1 week")
    mixed = Duration(days=1, hours=12)
    assert age_against(NOW_ - timedelta(hours=37), mixed, NOW_) == (True, "37 hours ago ≥ 1 day 12 hours")
    # September to March: six months are 181 days here, and say so.
    assert age_against(NOW_ - timedelta(days=190), Duration(months=6), NOW_) == (
        True,
        "190 days ago ≥ 6 months (181 days)",
    )
    assert age_against(NOW_ + timedelta(seconds=0.2), Duration(), NOW_) == (False, "1 second from now < 0 days")


_SECONDS = {"day": 86400, "hour": 3600, "minute": 60, "second": 1}
_PHRASE = re.compile(r"(\d+) (day|hour|minute|second)s? (ago|from now) (≥|<) (.+)")
_CALENDAR = re.compile(r"(.+) \((\d+) (day|hour|minute|second)s?\)")


@given(
    age=st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(days=3000)),
    limit=st.builds(
        Duration,
        years=st.integers(0, 3),
        months=st.integers(0, 30),
        weeks=st.integers(0, 10),
        days=st.integers(0, 800),
        hours=st.integers(0, 72),
        minutes=st.integers(0, 200),
        seconds=st.integers(0, 200),
    ),
    now=st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)),
)
def test_the_comparison_a_reason_shows_is_true_of_its_figures(age: timedelta, limit: Duration, now: datetime) -> None:
    old, text = age_against(now - age, limit, now)
    match = _PHRASE.fullmatch(text)
    assert match, text
    figure, unit, direction, sign, shown = match.groups()
    shown_age = int(figure) * _SECONDS[unit] * (1 if direction == "ago" else -1)
    calendar = _CALENDAR.fullmatch(shown)
    if calendar:
        assert not limit.fixed and calendar.group(1) == limit.text
        shown_limit = int(calendar.group(2)) * _SECONDS[calendar.group(3)]
    else:
        assert limit.fixed and shown == limit.text
        shown_limit = int(parse_duration(shown).seconds_from(now))
    assert (sign == "≥") == old == (age >= now - limit.before(now)), "the sign is the rule's"
    assert shown_age >= shown_limit if old else shown_age < shown_limit, text
