"""Timer triggers, run as the timer extension runs them.

Each timer function has its own loop: one run at a time (a run still going when the next is due
delays it), a failure never stops the schedule and is not retried. A run that exceeds
functionTimeout is abandoned as a timed-out HTTP function is: its thread cannot be stopped, so the
pool it ran in is replaced. Unless the schedule fires more than once a minute or `useMonitor` is
false, its status (last, next) is kept in the store, so an occurrence missed while the host was
down runs at start with `past_due` true; otherwise `runOnStartup` runs it at start.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime

from azure.functions.timer import TimerRequest

from devhost.durable.model import TimerStatus
from devhost.errors import FunctionTimeoutError
from devhost.functions.bindings import arguments
from devhost.functions.catalog import FunctionSpec
from devhost.functions.invoker import Invoker
from devhost.functions.schedule import SEARCH_DAYS, Cron, Schedule
from devhost.store.sqlite import Store

log = logging.getLogger("devhost.timers")


def _iso(epoch: float | None) -> str:
    """As the extension writes ScheduleStatus times; a timer that never ran has year 1."""
    if epoch is None:
        return "0001-01-01T00:00:00+00:00"
    return datetime.fromtimestamp(epoch, UTC).isoformat()


class TimerRunner:
    def __init__(
        self,
        specs: list[FunctionSpec],
        invoker: Invoker,
        store: Store,
        timeout: float,
        durable_binding: Callable[[], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.specs, self.invoker, self.store = specs, invoker, store
        self.timeout, self.durable_binding, self.clock = timeout, durable_binding, clock
        self._stop = asyncio.Event()

    async def run(self) -> None:
        results = await asyncio.gather(
            *(self._loop(spec) for spec in self.specs), return_exceptions=True
        )
        for spec, result in zip(self.specs, results, strict=True):
            if isinstance(result, Exception):  # a host fault: say so, the other timers go on
                log.error("the timer %s stopped: %s: %s", spec.name, type(result).__name__, result)

    def stop(self) -> None:
        self._stop.set()

    async def _loop(self, spec: FunctionSpec) -> None:
        trigger = spec.trigger
        schedule = spec.schedule
        use_monitor = str(trigger.get("useMonitor", True)).lower() != "false"
        monitored = use_monitor and not schedule.frequent
        status = self._read(spec.name) if monitored else None
        if monitored and status is None:  # never ran: Last is year 1, Next the first occurrence
            status = TimerStatus(None, self._next(schedule), self.clock())
        if status is not None and status.next < self.clock():
            log.info("Function '%s' is past due on startup. Executing now.", spec.name)
            status = await self._fire(spec, schedule, status, past_due=True)
        elif trigger.get("runOnStartup") is True:
            log.info("Function '%s' is configured to run on startup. Executing now.", spec.name)
            status = await self._fire(spec, schedule, status, past_due=False)
        due = self.clock()
        while not self._stop.is_set():
            # after the last occurrence too: an early wake-up must not fire one twice
            upcoming = schedule.next_after(datetime.fromtimestamp(max(self.clock(), due), UTC))
            if upcoming is None:
                log.error("the schedule of %s has no next occurrence: it stops", spec.name)
                return
            due = upcoming.timestamp()
            status = TimerStatus(status.last if status else None, due, self.clock())
            if monitored:
                self._save(spec.name, status)
            try:
                await asyncio.wait_for(self._stop.wait(), max(0.0, due - self.clock()))
                return
            except TimeoutError:
                pass
            status = await self._fire(spec, schedule, status if monitored else None, False)

    def _next(self, schedule: Schedule) -> float:
        """The first occurrence from now (the schedule was checked at load to have one)."""
        upcoming = schedule.next_after(datetime.fromtimestamp(self.clock(), UTC))
        return upcoming.timestamp() if upcoming else self.clock() + SEARCH_DAYS * 86400

    async def _fire(
        self, spec: FunctionSpec, schedule: Schedule, status: TimerStatus | None, past_due: bool
    ) -> TimerStatus:
        """One run; returns the status that records it."""
        fired = self.clock()
        request = TimerRequest(
            past_due=past_due,
            schedule_status=None
            if status is None
            else {
                "Last": _iso(status.last),
                "Next": _iso(status.next),
                "LastUpdated": _iso(status.updated),
            },
            schedule={"AdjustForDST": isinstance(schedule, Cron)},
        )
        kwargs, _ = arguments(spec, request, self.durable_binding)
        began = time.perf_counter()
        outcome = "Succeeded"
        try:
            await self.invoker.call_within(spec.name, kwargs, self.timeout)
        except FunctionTimeoutError as error:  # its pool was replaced: one line says it
            outcome = "Failed"
            log.error("%s", error)
        except Exception:  # noqa: BLE001 - a failed run is logged; the schedule goes on
            outcome = "Failed"
            log.error("%s raised:\n%s", spec.name, traceback.format_exc())
        log.info(
            "Executed 'Functions.%s' (%s, Reason='Timer fired at %s', Duration=%.0fms)",
            spec.name,
            outcome,
            _iso(fired),
            (time.perf_counter() - began) * 1000,
        )
        return TimerStatus(fired, status.next if status else fired, self.clock())

    def _read(self, name: str) -> TimerStatus | None:
        try:
            return self.store.timer_status(name)
        except Exception as error:  # noqa: BLE001 - no status: the timer still runs
            log.error("the schedule status of %s could not be read: %s", name, error)
            return None

    def _save(self, name: str, status: TimerStatus) -> None:
        try:
            self.store.save_timer_status(name, status)
        except Exception as error:  # noqa: BLE001 - the timer still runs
            log.error("the schedule status of %s could not be saved: %s", name, error)
