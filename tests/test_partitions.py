"""Range splitting: contiguous, covering, and exactly the original filter's extent."""

import itertools
from datetime import date

import pytest

from shared.partitions import key_ranges
from shared.table_query import range_filter


def test_one_day_ranges_are_half_open_but_the_last():
    ranges = key_ranges(date(2021, 12, 30), date(2022, 1, 2), 1)
    assert [(r["from"], r["to"], r["toInclusive"]) for r in ranges] == [
        ("2021-12-30", "2021-12-31", False),
        ("2021-12-31", "2022-01-01", False),
        ("2022-01-01", "2022-01-02", False),
        ("2022-01-02", "2022-01-02", True),
    ]


@pytest.mark.parametrize("days", [1, 2, 3, 7, 30, 400])
def test_ranges_are_contiguous_and_cover_the_whole_span(days):
    start, end = date(2021, 1, 1), date(2021, 12, 31)
    ranges = key_ranges(start, end, days)
    assert ranges[0]["from"] == start.isoformat()
    assert ranges[-1]["to"] == end.isoformat() and ranges[-1]["toInclusive"]
    for left, right in itertools.pairwise(ranges):
        assert left["to"] == right["from"] and not left["toInclusive"]


def test_keys_between_days_fall_in_exactly_one_range():
    """A key like '2021-12-30x' sorts between two days: exactly one range must own it."""
    ranges = key_ranges(date(2021, 12, 29), date(2021, 12, 31), 1)

    def owns(r, key):
        return r["from"] <= key and (key <= r["to"] if r["toInclusive"] else key < r["to"])

    for key in ["2021-12-29", "2021-12-30x", "2021-12-30~", "2021-12-31"]:
        assert sum(owns(r, key) for r in ranges) == 1
    assert not any(owns(r, "2021-12-31x") for r in ranges)  # also outside the original filter


def test_range_filter_keeps_the_original_clauses():
    query, params = range_filter({"from": "2021-01-01", "to": "2021-01-02", "toInclusive": False})
    assert query == "PartitionKey ge @lower and PartitionKey lt @upper and CertNumber ne ''"
    assert params == {"lower": "2021-01-01", "upper": "2021-01-02"}
    query, _ = range_filter({"from": "2021-01-01", "to": "2021-01-02", "toInclusive": True})
    assert "PartitionKey le @upper" in query


def test_zero_days_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        key_ranges(date(2021, 1, 1), date(2021, 1, 2), 0)
