from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tdgc.durations import Duration, humanize_age, parse_duration


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
    from datetime import timedelta

    assert humanize_age(timedelta(days=212, hours=3)) == "212 days"
    assert humanize_age(timedelta(days=7, hours=6)) == "7.2 days"
    assert humanize_age(timedelta(hours=5)) == "5 hours"
    assert humanize_age(timedelta(minutes=3)) == "3 minutes"
