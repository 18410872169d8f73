"""Split a date range into contiguous partition-key ranges.

Each range but the last is half-open ([from, to)), the last is closed ([from, end]), so their union
is exactly the original filter `PartitionKey ge start and PartitionKey le end`, whatever strings
the partition keys hold.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TypedDict

# A partition-key range: [from, to), or [from, to] for the last one (`from` is a keyword).
KeyRange = TypedDict("KeyRange", {"from": str, "to": str, "toInclusive": bool})


def key_ranges(start: date, end: date, days: int) -> list[KeyRange]:
    """Return the activity inputs covering [start, end] in chunks of `days` days."""
    if days < 1:
        raise ValueError("days must be at least 1")
    ranges = []
    lower = start
    while True:
        upper = lower + timedelta(days=days)
        if upper > end:
            ranges.append({"from": lower.isoformat(), "to": end.isoformat(), "toInclusive": True})
            return ranges
        ranges.append({"from": lower.isoformat(), "to": upper.isoformat(), "toInclusive": False})
        lower = upper
