"""Pacing for steps that fail in the host itself: capped exponential backoff, quiet logs.

A damaged database or a full disk made the engine retry the same step at once, forever: a core
burned and 100 MB of tracebacks a minute. Now a failing key (an instance, a work item, the
dispatcher) waits 0.1 s, 0.2 s, ... up to 30 s before its next try, and each distinct failure
is logged once per minute with a count of the repeats it stood for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

FIRST_DELAY = 0.1
MAX_DELAY = 30.0
LOG_INTERVAL = 60.0


@dataclass
class _Seen:
    last_logged: float
    repeats: int = 0


@dataclass
class Backoff:
    log: logging.Logger
    clock: Callable[[], float] = time.monotonic
    first: float = FIRST_DELAY
    cap: float = MAX_DELAY
    log_interval: float = LOG_INTERVAL
    _delay: dict[Hashable, float] = field(default_factory=dict)
    _not_before: dict[Hashable, float] = field(default_factory=dict)
    _logged: dict[str, _Seen] = field(default_factory=dict)

    def ready(self, key: Hashable) -> bool:
        return self.clock() >= self._not_before.get(key, 0.0)

    def failed(self, key: Hashable, summary: str, detail: str = "") -> float:
        """Record a failure of `key`; returns the seconds until it may run again."""
        delay = min(self.cap, self._delay.get(key, self.first / 2) * 2)
        self._delay[key] = delay
        self._not_before[key] = self.clock() + delay
        self._report(summary, detail)
        return delay

    def succeeded(self, key: Hashable) -> None:
        self._delay.pop(key, None)
        self._not_before.pop(key, None)

    def waiting(self) -> list[Hashable]:
        """The keys that may not run yet; keys long expired are forgotten (their work may have
        been cancelled, so `succeeded` never comes)."""
        now = self.clock()
        for key in [k for k, t in self._not_before.items() if t < now - 2 * self.cap]:
            self._not_before.pop(key)
            self._delay.pop(key, None)
        return [key for key, t in self._not_before.items() if t > now]

    def next_due(self) -> float | None:
        """Seconds until the earliest waiting key may run again (None: nothing waits)."""
        now = self.clock()
        waits = [t - now for t in self._not_before.values() if t > now]
        return min(waits) if waits else None

    def _report(self, summary: str, detail: str) -> None:
        now = self.clock()
        seen = self._logged.get(summary)
        if seen is not None and now - seen.last_logged < self.log_interval:
            seen.repeats += 1
            return
        repeats = f" ({seen.repeats} more since)" if seen and seen.repeats else ""
        self._logged[summary] = _Seen(now)
        self.log.error("%s%s%s", summary, repeats, f"\n{detail}" if detail else "")
