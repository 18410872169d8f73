"""Timer schedules: NCRONTAB as the NCrontab library reads it, TimeSpans as .NET does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devhost.functions.schedule import Cron, Interval, ScheduleError, parse_schedule

BASE = datetime(2026, 11, 29, 10, 15, 30, tzinfo=UTC)  # a Sunday


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("*/5 * * * * *", at(2026, 11, 29, 10, 15, 35)),
        ("0 */5 * * * *", at(2026, 11, 29, 10, 20, 0)),
        ("0 0 * * * *", at(2026, 11, 29, 11, 0, 0)),
        ("0 30 9 * * *", at(2026, 11, 30, 9, 30, 0)),
        ("*/10 * * * *", at(2026, 11, 29, 10, 20, 0)),  # five fields: no seconds
        ("0 0 9 * * MON-FRI", at(2026, 11, 30, 9, 0, 0)),
        ("0 0 9 * * FRI-MON", at(2026, 11, 30, 9, 0, 0)),  # reversed: swapped, so Mon-Fri
        ("0 0 9 * * Sat", at(2026, 12, 5, 9, 0, 0)),
        ("0 0 0 1 Jan *", at(2027, 1, 1, 0, 0, 0)),
        ("0 0 0 13 * FRI", at(2027, 8, 13, 0, 0, 0)),  # day AND weekday: only Friday the 13th
        ("0 0 0 29 2 *", at(2028, 2, 29, 0, 0, 0)),
        ("5/15 * * * * *", at(2026, 11, 29, 10, 15, 35)),  # 5 to 59, every 15
        ("0 0 1,13 * * *", at(2026, 11, 29, 13, 0, 0)),
        ("30 15 10 * * *", at(2026, 11, 30, 10, 15, 30)),  # strictly after the base time
        ("0 0 %HOUR% * * *", at(2026, 11, 29, 17, 0, 0)),
    ],
)
def test_cron_next_occurrence(expression, expected):
    schedule = parse_schedule(expression, {"HOUR": "17"})
    assert isinstance(schedule, Cron)
    assert schedule.next_after(BASE) == expected


@pytest.mark.parametrize(
    ("expression", "every"),
    [
        ("00:05:00", timedelta(minutes=5)),
        ("1.00:00:00", timedelta(days=1)),
        ("24:00:00", timedelta(days=24)),  # as .NET reads it
        ("00:00:01.5", timedelta(seconds=1.5)),
    ],
)
def test_timespan_schedules(expression, every):
    schedule = parse_schedule(expression, {})
    assert schedule == Interval(every)
    assert schedule.next_after(BASE) == BASE + every


@pytest.mark.parametrize(
    ("expression", "frequent"),
    [("* * * * * *", True), ("0 * * * * *", False), ("00:00:10", True), ("00:01:00", False)],
)
def test_a_schedule_faster_than_a_minute_keeps_no_status(expression, frequent):
    assert parse_schedule(expression, {}).frequent is frequent


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 0 0 30 2 *", "not recognized"),  # 30 February never comes
        ("60 * * * * *", "not recognized"),
        ("* * * * * 7", "not recognized"),  # 0-6, Sunday is 0
        ("*/0 * * * * *", "not recognized"),
        ("every minute", "not recognized"),
        ("0 0 %NOPE% * * *", "'%NOPE%' does not resolve to a value."),
        ("0 0 %HOUR * * *", "does not have a closing '%'"),
    ],
)
def test_a_schedule_that_cannot_be_used(expression, message):
    with pytest.raises(ScheduleError, match=message.replace("*", r"\*")):
        parse_schedule(expression, {"HOUR": "1"})


def test_a_leap_day_on_a_given_weekday_is_found_decades_ahead():
    schedule = parse_schedule("0 0 0 29 2 Thu", {})
    assert schedule.next_after(BASE) == at(2052, 2, 29, 0, 0, 0)
