"""The dispatcher: runs orchestrator episodes and activities from the store's pending rows.

It never sleeps on a timer: timers are inbox rows with a due time, and the loop waits for either
a notification (new row) or the earliest due time, whichever comes first.

A step that fails in the host itself (the store, a lost worker) is not the app's failure: its
rows stay, so it runs again, after a capped exponential backoff (devhost.durable.backoff) that
also keeps the log to one line per distinct failure per minute. An activity whose worker died
runs again (at least once, as in Azure), up to MAX_REDELIVERIES times.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from collections.abc import Callable

from devhost.durable import events as ev
from devhost.durable.actions import Outcome, outcome_of_exception, parse_state
from devhost.durable.backoff import Backoff
from devhost.durable.turn import batch, decide, task_ids
from devhost.errors import FunctionTimeoutError, WorkerLostError
from devhost.functions.invoker import Invoker
from devhost.store.sqlite import Store

log = logging.getLogger("devhost.engine")
IDLE_POLL = 1.0  # seconds: an upper bound on any wait, so a missed wake-up costs at most this
MAX_REDELIVERIES = 3  # an activity whose worker keeps dying fails after this many re-runs
DISPATCHER = ("dispatcher", "")


def episode_payload(instance: dict, past: list[str], new_events: list[dict]) -> str:
    """The orchestrationTrigger JSON; past events are stored text, not parsed again."""
    history = ",".join([*past, *(json.dumps(e) for e in new_events)])
    rest = json.dumps(
        {
            "input": instance["input"],
            "instanceId": instance["id"],
            "isReplaying": bool(past),
            "parentInstanceId": instance["parent_id"],
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
            "longRunningTimerIntervalDuration": None,
            "maximumShortTimerDuration": None,
            "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
        }
    )
    return '{"history":[' + history + "]," + rest[1:]


class Engine:
    """Owns the store's pending work; the HTTP layer only adds rows and calls notify()."""

    def __init__(
        self,
        store: Store,
        invoker: Invoker,
        max_activities: int,
        max_orchestrators: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.invoker, self.clock = store, invoker, clock
        self.max_activities, self.max_orchestrators = max_activities, max_orchestrators
        self.orchestrators = invoker.names("orchestrator")
        self.activities = invoker.names("activity")
        self._busy_instances: set[str] = set()
        self._busy_work: set[int] = set()
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task] = set()
        self._stopping = False
        self.backoff = Backoff(log)
        self._redeliveries: dict[int, int] = {}

    def notify(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            wait = IDLE_POLL
            if self.backoff.ready(DISPATCHER):
                try:
                    self._dispatch()
                    due = self.store.next_due(self.clock())
                    self.backoff.succeeded(DISPATCHER)
                    if due is not None:
                        wait = min(wait, max(0.001, due - self.clock()))
                except Exception as error:  # noqa: BLE001 - the store failing must not end the loop
                    self.backoff.failed(DISPATCHER, _summary("dispatch", error))
            cooling = self.backoff.next_due()
            if cooling is not None:
                wait = min(wait, max(0.001, cooling))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    def _spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def _cooling(self, kind: str) -> set:
        return {key for k, key in self.backoff.waiting() if k == kind}

    def _dispatch(self) -> None:
        now = self.clock()
        free = self.max_orchestrators - len(self._busy_instances)
        if free > 0:
            skip = self._busy_instances | self._cooling("instance")
            for instance_id in self.store.ready_instances(now, skip, free):
                self._busy_instances.add(instance_id)
                self._spawn(self._episode(instance_id))
        free = self.max_activities - len(self._busy_work)
        if free > 0:
            for row in self.store.pending_work(self._busy_work | self._cooling("work"), free):
                self._busy_work.add(row["id"])
                self._spawn(self._activity(row))

    async def _episode(self, instance_id: str) -> None:
        began = time.perf_counter()
        name, label = "orchestrator", "error"
        key = ("instance", instance_id)
        try:
            name, label = await self._run_episode(instance_id)
            self.backoff.succeeded(key)
        except Exception as error:  # noqa: BLE001 - a host fault: its messages stay, it reruns
            label = "retried later"
            self.backoff.failed(
                key, _summary("an episode failed in the host", error), traceback.format_exc()
            )
        finally:
            self._busy_instances.discard(instance_id)
            self._wake.set()
        log.info(
            "%s instance=%s %.1fms %s",
            name,
            instance_id,
            (time.perf_counter() - began) * 1000,
            label,
        )

    async def _run_episode(self, instance_id: str) -> tuple[str, str]:
        """Run and commit one episode; returns the orchestrator's name and the new status."""
        now = self.clock()
        instance = self.store.get_instance(instance_id)
        messages = self.store.messages(instance_id, now)
        if instance is None or not messages:
            return "orchestrator", "skipped"
        tasks = self.store.tasks(instance_id, task_ids(messages))
        delivered = batch(messages, tasks)
        started = ev.orchestrator_started(now)
        if instance["name"] not in self.orchestrators:
            outcome = Outcome(error=f"no orchestrator function named '{instance['name']}'")
        else:
            past = self.store.history(instance_id)
            payload = episode_payload(instance, past, [started, *(e for _, e in delivered)])
            try:
                outcome = parse_state(await self.invoker.orchestrate(instance["name"], payload))
            except WorkerLostError:
                raise  # a host fault: the episode runs again
            except Exception as error:  # noqa: BLE001 - user code failing is an outcome
                outcome = outcome_of_exception(error)
                if "$OutOfProcData$" not in str(error):
                    log.error(
                        "orchestrator %s raised:\n%s", instance["name"], traceback.format_exc()
                    )
        episode = decide(instance, started, delivered, outcome, tasks, now)
        self.store.commit_episode(episode, self.clock())
        return instance["name"], episode.status

    async def _activity(self, row: dict) -> None:
        began = time.perf_counter()
        name, work_id = row["name"], row["id"]
        key = ("work", work_id)
        label = "retried later"
        try:
            event, label = await self._execute(name, row["task_id"], row)
            self.store.finish_work(work_id, row["instance_id"], event, self.clock())
            self.backoff.succeeded(key)
            self._redeliveries.pop(work_id, None)
        except WorkerLostError as error:
            self._redelivered(row, key, error)
        except Exception as error:  # noqa: BLE001 - the store failing: the work stays, reruns
            self.backoff.failed(key, _summary("an activity's result could not be stored", error))
        finally:
            self._busy_work.discard(work_id)
            self._wake.set()
        log.info(
            "%s instance=%s %.1fms %s",
            name,
            row["instance_id"],
            (time.perf_counter() - began) * 1000,
            label,
        )

    def _redelivered(self, row: dict, key: tuple, error: Exception) -> None:
        """Run it again (its work row stays); after MAX_REDELIVERIES, fail it as Azure would
        a message that keeps crashing its worker."""
        runs = self._redeliveries.get(row["id"], 0) + 1
        self._redeliveries[row["id"]] = runs
        if runs <= MAX_REDELIVERIES:
            self.backoff.failed(
                key, _summary(f"{row['name']} lost its worker; running it again", error)
            )
            return
        self._redeliveries.pop(row["id"], None)
        reason = f"Activity function '{row['name']}' failed: its worker process exited {runs} times"
        event = ev.task_failed(self.clock(), row["task_id"], reason, "WorkerLostError")
        self.store.finish_work(row["id"], row["instance_id"], event, self.clock())

    async def _execute(self, name: str, task_id: int, row: dict) -> tuple[dict, str]:
        """Run one activity; its failure becomes a TaskFailed event, not an exception. A lost
        worker is the host's failure, not the activity's: it propagates."""
        try:
            if name not in self.activities:
                raise LookupError(f"no activity function named '{name}'")
            result = await self.invoker.activity(name, row["input"])
            return ev.task_completed(self.clock(), task_id, result), "ok"
        except WorkerLostError:
            raise
        except FunctionTimeoutError as error:
            log.error("activity %s (instance %s): %s", name, row["instance_id"], error)
            return ev.task_failed(self.clock(), task_id, str(error), "FunctionTimeoutException"), (
                "timed out"
            )
        except Exception as error:  # noqa: BLE001 - user code failing is an outcome
            log.error(
                "activity %s (instance %s) raised:\n%s",
                name,
                row["instance_id"],
                traceback.format_exc(),
            )
            reason = f"Activity function '{name}' failed: {type(error).__name__}: {error}"
            return ev.task_failed(self.clock(), task_id, reason, type(error).__name__), "failed"


def _summary(what: str, error: Exception) -> str:
    """One line that is the same for the same failure, whatever instance it hit."""
    return f"{what}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
