"""Timer schedules as the timer extension reads them: NCRONTAB or a TimeSpan.

NCRONTAB (the NCrontab library's dialect): `{second} {minute} {hour} {day} {month} {day-of-week}`,
or five fields without seconds. Each field: `*`, a value, a range `a-b` (a reversed range is
swapped, not wrapped), a step `x/n` (`5/15` means 5 to the maximum, every 15), and lists of
these. Months and days of the week take English names, matched by prefix. Day of month and day
of week must BOTH match (unlike Vixie cron's OR). A TimeSpan (`hh:mm:ss` or `d.hh:mm:ss`; .NET
reads an hour part above 23 as days) repeats at that interval. `%NAME%` is an app setting.
Times are UTC, as on Azure by default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
# (low, high, names): second, minute, hour, day, month, day of week (0 is Sunday)
FIELDS = [(0, 59, None), (0, 59, None), (0, 23, None), (1, 31, None), (1, 12, MONTHS), (0, 6, DAYS)]
SEARCH_DAYS = 366 * 28  # weekdays and leap years repeat within 28 years (29 February on a Thursday)
_SETTING = re.compile(r"%([^%]*)%")
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d+):(\d+)(?::(\d+)(?:\.(\d+))?)?$")


class ScheduleError(ValueError):
    """The schedule cannot be used; the message is the extension's, as far as it goes."""


def resolve_settings(expression: str, settings: Mapping[str, str]) -> str:
    """Replace every %NAME% by its app setting."""
    if expression.count("%") % 2:
        position = expression.rfind("%")
        raise ScheduleError(f"The '%' at position {position} does not have a closing '%'")

    def value(match: re.Match) -> str:
        if match.group(1) not in settings:
            raise ScheduleError(f"'%{match.group(1)}%' does not resolve to a value.")
        return settings[match.group(1)]

    return _SETTING.sub(value, expression)


def _value(token: str, low: int, names: list[str] | None) -> int:
    if token.isdigit():
        return int(token)
    if names and token:
        for index, name in enumerate(names):
            if name.lower().startswith(token.lower()):
                return index + low
    raise ValueError(token)


def _field(text: str, low: int, high: int, names: list[str] | None) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, slash, step_text = part.partition("/")
        step = int(step_text) if slash else 1
        if step <= 0:
            raise ValueError(part)
        if body == "*":
            first, last = low, high
        elif "-" in body:
            start, _, end = body.partition("-")
            first, last = sorted((_value(start, low, names), _value(end, low, names)))
        else:
            first = _value(body, low, names)
            last = high if slash else first
        if first < low or last > high:
            raise ValueError(part)
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 is Sunday

    def _first_time(self, earliest: time) -> time | None:
        for hour in sorted(h for h in self.hours if h >= earliest.hour):
            for minute in sorted(self.minutes):
                if (hour, minute) < (earliest.hour, earliest.minute):
                    continue
                for second in sorted(self.seconds):
                    if (hour, minute, second) >= (earliest.hour, earliest.minute, earliest.second):
                        return time(hour, minute, second)
        return None

    def _day_matches(self, day: date) -> bool:
        weekday = (day.weekday() + 1) % 7
        return day.month in self.months and day.day in self.days and weekday in self.weekdays

    def next_after(self, moment: datetime) -> datetime | None:
        """The first occurrence strictly after `moment` (whole seconds, UTC)."""
        start = moment.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        day = start.date()
        for _ in range(SEARCH_DAYS):
            if self._day_matches(day):
                found = self._first_time(start.time() if day == start.date() else time(0))
                if found is not None:
                    return datetime.combine(day, found, UTC)
            day += timedelta(days=1)
        return None

    @property
    def frequent(self) -> bool:
        """Fires more than once a minute: the extension then keeps no schedule status."""
        return len(self.seconds) > 1


@dataclass(frozen=True)
class Interval:
    every: timedelta

    def next_after(self, moment: datetime) -> datetime:
        return moment.astimezone(UTC) + self.every

    @property
    def frequent(self) -> bool:
        return self.every < timedelta(minutes=1)


Schedule = Cron | Interval


def _timespan(text: str) -> Interval | None:
    match = _TIMESPAN.match(text)
    if not match:
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups()[:4])
    if hours > 23 and match.group(4) and not match.group(1):  # "24:00:00" is 24 days to .NET
        days, hours, minutes, seconds = hours, minutes, seconds, 0
    if hours > 23 or minutes > 59 or seconds > 59:
        return None
    micro = int((match.group(5) or "0")[:6].ljust(6, "0"))
    every = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds, microseconds=micro)
    return Interval(every) if every > timedelta(0) else None


def parse_schedule(expression: str, settings: Mapping[str, str]) -> Schedule:
    """The schedule of a timerTrigger binding; ScheduleError if it is neither form."""
    text = resolve_settings(expression, settings).strip()
    parts = text.split()
    if len(parts) in (5, 6):
        if len(parts) == 5:
            parts = ["0", *parts]
        try:
            cron = Cron(*(_field(p, *spec) for p, spec in zip(parts, FIELDS, strict=True)))
        except ValueError:
            cron = None
        if cron is not None and cron.next_after(datetime.now(UTC)) is not None:
            return cron
    interval = _timespan(text)
    if interval is not None:
        return interval
    raise ScheduleError(
        f"The schedule expression '{expression}' was not recognized as a valid cron "
        "expression or timespan string."
    )
