"""The date rules of the submit endpoint.

ISO 8601 is read as ISO (never day/month swapped); anything else is day-first, as the original
service read it. A date must name its day, month and year: dateutil silently fills missing fields
from today, so a value is parsed twice with different defaults and refused if the results differ.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from dateutil import parser as dateutil_parser

MAX_LENGTH = 64
MIN_YEAR, MAX_YEAR = 1900, 2999
_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
_PRINTABLE = re.compile(r"[ -~]+")
_DEFAULTS = (datetime(2000, 1, 1), datetime(2004, 12, 28))

EMPTY_START = "Empty start date."
BAD_START = "Invalid start date format."
EMPTY_END = "Empty end date."
BAD_END = "Invalid end date format."
BAD_RANGE = "Invalid date range."
RANGE_TOO_LARGE = "Date range too large."


class DateRangeError(ValueError):
    """A rejected submission; its message is one of the documented API errors."""


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def parse_date(text: str) -> datetime | None:
    """Return the datetime a caller meant, or None when the text is not a complete date."""
    text = text.strip(" ")
    if not text or len(text) > MAX_LENGTH or not _PRINTABLE.fullmatch(text):
        return None
    try:
        if _ISO.fullmatch(text):
            value = datetime.fromisoformat(text.replace(" ", "T", 1))
        else:
            first, second = (
                dateutil_parser.parse(text, dayfirst=True, default=d) for d in _DEFAULTS
            )
            if first.date() != second.date():
                return None  # day, month or year came from the default, not from the caller
            value = first
    except (ValueError, OverflowError, TypeError):
        return None
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        return None
    return value


def _as_day(value: datetime) -> date:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.date()


def validate_range(start: str | None, end: str | None, max_days: int) -> DateRange:
    """Check a submission's two dates; raise DateRangeError with the API's message."""
    if not start:
        raise DateRangeError(EMPTY_START)
    start_dt = parse_date(start)
    if start_dt is None:
        raise DateRangeError(BAD_START)
    if not end:
        raise DateRangeError(EMPTY_END)
    end_dt = parse_date(end)
    if end_dt is None:
        raise DateRangeError(BAD_END)
    if (start_dt.tzinfo is None) != (end_dt.tzinfo is None):
        raise DateRangeError(BAD_RANGE)
    if (end_dt - start_dt).total_seconds() < 86400:
        raise DateRangeError(BAD_RANGE)
    result = DateRange(_as_day(start_dt), _as_day(end_dt))
    if result.days > max_days:
        raise DateRangeError(RANGE_TOO_LARGE)
    return result
