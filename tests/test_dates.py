"""The submit endpoint's date rules, as a table of cases (the original service's curl cases too)."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from shared.dates import (
    BAD_END,
    BAD_RANGE,
    BAD_START,
    EMPTY_END,
    EMPTY_START,
    RANGE_TOO_LARGE,
    DateRangeError,
    parse_date,
    validate_range,
)

PARSED = [
    ("2021-12-10", datetime(2021, 12, 10)),  # ISO: never day/month swapped
    ("2021-01-02", datetime(2021, 1, 2)),
    ("2021-12-10T08:00:00Z", datetime(2021, 12, 10, 8, tzinfo=UTC)),
    ("2021-12-10T08:00:00+01:00", datetime(2021, 12, 10, 8, tzinfo=timezone(timedelta(hours=1)))),
    ("2021-12-10 08:30", datetime(2021, 12, 10, 8, 30)),
    ("10/12/2021", datetime(2021, 12, 10)),  # day first
    ("10/08/2021", datetime(2021, 8, 10)),
    ("05/08/2021", datetime(2021, 8, 5)),
    ("10.12.2021", datetime(2021, 12, 10)),
    ("10 March 2021", datetime(2021, 3, 10)),
    ("March 10 2021", datetime(2021, 3, 10)),
    ("  2021-12-10  ", datetime(2021, 12, 10)),
]

INVALID = [
    "12",
    "2021",
    "10/08",
    "March",
    "Dec 2021",
    "abcd",
    "2021-13-01",
    "2021-02-30",
    "31/02/2021",
    "1/1/0001",
    "01/01/1899",
    "01/01/3000",
    "99999999999999999999",
    "2021-12-10\x00",
    "10/12/2021\n",
    "\u0661\u0660/12/2021",
    "2021\u201312\u201310",
    "x" * 65,
    "1" * 5000,
    "0",
    "-1",
    "now",
    "today",
    "2021-12-10T25:00:00",
]


@pytest.mark.parametrize(("text", "expected"), PARSED)
def test_valid_dates_parse_to_what_the_caller_meant(text, expected):
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", INVALID)
def test_incomplete_or_absurd_dates_are_refused(text):
    assert parse_date(text) is None


RANGES = [
    # (s, e, error or (start, end)) - the first four are the original service's curl examples
    (None, None, EMPTY_START),
    ("10/08/2021", "abcd", BAD_END),
    ("10/08/2021", "05/08/2021", BAD_RANGE),
    ("10/10/2021", "10/12/2021", (date(2021, 10, 10), date(2021, 12, 10))),
    ("", "2021-12-10", EMPTY_START),
    ("2021-12-01", None, EMPTY_END),
    ("2021-12-01", "", EMPTY_END),
    ("nope", "2021-12-10", BAD_START),
    ("2021-12-10", "2021-12-10", BAD_RANGE),
    ("2021-12-10T00:00:00", "2021-12-10T23:59:59", BAD_RANGE),
    ("2021-12-10", "2021-12-11", (date(2021, 12, 10), date(2021, 12, 11))),
    ("2021-12-10T08:00:00Z", "2021-12-10", BAD_RANGE),  # aware mixed with naive
    ("2021-12-10", "2021-12-12T00:00:00+00:00", BAD_RANGE),
    ("2021-12-10T23:00:00-05:00", "2021-12-12T05:00:00Z", (date(2021, 12, 11), date(2021, 12, 12))),
    ("2021-01-01", "2022-01-02", (date(2021, 1, 1), date(2022, 1, 2))),  # 366 days: allowed
    ("2021-01-01", "2022-01-03", RANGE_TOO_LARGE),
    ("2000-01-01", "2999-01-01", RANGE_TOO_LARGE),
]


@pytest.mark.parametrize(("start", "end", "expected"), RANGES)
def test_ranges(start, end, expected):
    if isinstance(expected, str):
        with pytest.raises(DateRangeError) as error:
            validate_range(start, end, 366)
        assert str(error.value) == expected
    else:
        result = validate_range(start, end, 366)
        assert (result.start, result.end) == expected


def test_the_maximum_range_is_configurable():
    with pytest.raises(DateRangeError, match="too large"):
        validate_range("2021-01-01", "2021-01-10", 7)
    assert validate_range("2021-01-01", "2021-01-08", 7).days == 7
