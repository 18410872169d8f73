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
import re
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from devhost import errors
from devhost.durable import events as ev
from devhost.durable import http_activity
from devhost.durable.actions import HTTP_ACTIVITY, Outcome, outcome_of_exception, parse_state
from devhost.durable.backoff import Backoff
from devhost.durable.entities import (
    MAX_BATCH,
    OPERATION,
    batch_payload,
    decide_entity,
    entity_id,
    is_entity,
    operation_request,
    request,
)
from devhost.durable.http_activity import HttpActivityError
from devhost.durable.model import FINISHED, Instance, Message, RuntimeStatus, WorkItem
from devhost.durable.turn import batch, decide, rewound, task_ids, unfinished_task_ids
from devhost.errors import FunctionLoadError, FunctionTimeoutError, WorkerLostError
from devhost.functions.invoker import Invoker
from devhost.store.sqlite import Store

log = logging.getLogger("devhost.engine")
IDLE_POLL = 1.0  # seconds: an upper bound on any wait, so a missed wake-up costs at most this
MAX_REDELIVERIES = 3  # an activity whose worker keeps dying fails after this many re-runs
DISPATCHER = ("dispatcher", "")
MAX_INSTANCE_ID = 256  # the extension's limit
_FORBIDDEN_IN_IDS = re.compile(r"[/\\#?\x00-\x1f\x7f]")


def valid_instance_id(instance_id: str) -> bool:
    """The extension's rule; '@' starts entity ids."""
    return (
        0 < len(instance_id) <= MAX_INSTANCE_ID
        and not instance_id.startswith("@")
        and not _FORBIDDEN_IN_IDS.search(instance_id)
    )


def unknown_activity(name: str, known: set[str]) -> str:
    """The extension's words for an activity that is not registered (DurableTaskExtension's
    GetInvalidActivityFunctionMessage)."""
    listed = "', '".join(sorted(known))
    info = (
        f"The following are the known activity functions: '{listed}'."
        if known
        else "No activity functions are currently registered!"
    )
    return (
        f"The function '{name}' doesn't exist, is disabled, or is not an activity function. "
        f"Additional info: {info}"
    )


class PlainAnswer(errors.ApiError):
    """A refusal the extension answers with a body of its own (`body`, rendered as is by the
    management API) rather than the usual {Message, ExceptionMessage}: a JSON string for
    `CreateResponse(status, text)`, {"Message": text} for `CreateErrorResponse(status, text)`."""

    def __init__(self, status: int, body: str | dict) -> None:
        super().__init__(status, body if isinstance(body, str) else body["Message"])
        self.body = body


def episode_payload(instance: Instance, past: list[str], new_events: list[dict]) -> str:
    """The orchestrationTrigger JSON; past events are stored text, not parsed again."""
    history = ",".join([*past, *(json.dumps(e) for e in new_events)])
    rest = json.dumps(
        {
            "input": instance.input,
            "instanceId": instance.id,
            "isReplaying": bool(past),
            "parentInstanceId": instance.parent_id,
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
            "longRunningTimerIntervalDuration": None,
            "maximumShortTimerDuration": None,
            "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
        }
    )
    return '{"history":[' + history + "]," + rest[1:]


class Engine:
    """Owns the store: runs its pending work, and is the one door through which instances are
    started, controlled, read and purged (the HTTP layer only parses and renders)."""

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
        # an entity's name is its function's, lowercased (the extension matches ignoring case)
        self.entities = {name.lower(): name for name in invoker.names("entity")}
        self._busy_instances: set[str] = set()
        self._busy_work: set[int] = set()
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task] = set()
        self._stopping = False
        self.backoff = Backoff(log)
        self._redeliveries: dict[int, int] = {}

    def notify(self) -> None:
        self._wake.set()

    # ---- instance control: each a message the instance's next episode handles
    def instance(self, instance_id: str) -> Instance:
        """An orchestration instance (entities are reached through their own API)."""
        found = None if is_entity(instance_id) else self.store.get_instance(instance_id)
        if found is None:
            raise errors.not_found()
        return found

    def history(self, instance_id: str) -> list[str]:
        return self.store.history(instance_id)

    def instances(self, **query: Any) -> list[Instance]:
        """Instances by creation time; `query` as Store.list_instances takes it."""
        return self.store.list_instances(**query)

    def live(self, instance_id: str) -> Instance:
        """The instance, which must not have finished (404, 410 otherwise)."""
        found = self.instance(instance_id)
        if found.finished:
            raise errors.gone()
        return found

    def _send(self, instance_id: str, event: dict) -> None:
        self.store.send(Message(instance_id, event, self.clock()))
        self.notify()

    def start(self, name: str, instance_id: str, input_text: str | None) -> Instance:
        if name not in self.orchestrators:
            raise errors.unknown_orchestrator(name)
        if not valid_instance_id(instance_id):
            raise errors.bad_argument(
                f"The instance ID is invalid: at most "
                f"{MAX_INSTANCE_ID} characters, not starting with '@', without / \\ # ? or "
                "control characters."
            )
        existing = self.store.get_instance(instance_id)
        if existing is not None and not existing.finished:  # DTFx's dedupe statuses: a 409
            message = f"An Orchestration instance with the status {existing.status} already exists."
            raise PlainAnswer(409, {"Message": message})
        now = self.clock()
        instance = Instance(instance_id, name, RuntimeStatus.PENDING, input_text, created=now)
        start = ev.execution_started(now, instance_id, name, input_text, None)
        self.store.create_instance(instance, start)
        self.notify()
        return instance

    def raise_event(self, instance_id: str, name: str, input_text: str | None) -> None:
        self.live(instance_id)
        self._send(instance_id, ev.event_raised(self.clock(), name, input_text))

    def terminate(self, instance_id: str, reason: str) -> None:
        self.live(instance_id)
        self._send(instance_id, ev.execution_terminated(self.clock(), reason))

    def suspend(self, instance_id: str, reason: str | None) -> None:
        """Refused (500) for a suspended instance, as the extension's DurableClient refuses it."""
        status = self.live(instance_id).status
        if status == RuntimeStatus.SUSPENDED:
            raise errors.invalid_operation(
                f"Cannot suspend the orchestration instance {instance_id} because instance is "
                f"in the {status} state."
            )
        self._send(instance_id, ev.execution_suspended(self.clock(), reason))

    def resume(self, instance_id: str, reason: str | None) -> None:
        """Refused (500) unless the instance is suspended, as the extension refuses it."""
        status = self.live(instance_id).status
        if status != RuntimeStatus.SUSPENDED:
            raise errors.invalid_operation(
                f"Cannot resume the orchestration instance {instance_id} because instance is "
                f"in the {status} state."
            )
        self._send(instance_id, ev.execution_resumed(self.clock(), reason))

    def restart(self, instance_id: str, new_id: str | None) -> Instance:
        """Start the instance's orchestrator again with its input, under `new_id` or its own
        id (which must have finished)."""
        try:
            old = self.instance(instance_id)
        except errors.ApiError:  # the extension answers an unknown one with 400, not 404
            raise errors.ApiError(
                400,
                f"An orchestration with the instanceId {instance_id} was not found.",
                "InstanceId does not match a valid orchestration instance.",
            ) from None
        try:
            return self.start(old.name, new_id or instance_id, old.input)
        except PlainAnswer as refused:
            if refused.status != 409:
                raise
            summary = "A non-terminal instance with this instance ID already exists."
            raise errors.ApiError(409, refused.message, summary) from None

    def rewind(self, instance_id: str, reason: str | None) -> None:
        """A Failed instance runs again from its failures: each failed activity runs again,
        the rest of its history replays (as the extension's rewind does). Refused as the
        extension refuses it: 404 and 412 with a sentence of its own."""
        found = None if is_entity(instance_id) else self.store.get_instance(instance_id)
        if found is None:  # the extension's text, its stray '$' included
            raise PlainAnswer(404, f'No orchestration with instance ID "${instance_id}" found.')
        if found.status != RuntimeStatus.FAILED:
            raise PlainAnswer(
                412,
                f"This orchestration has status {found.status}, but only orchestrations in the "
                '"Failed" state can be rewound.',
            )
        history = [json.loads(text) for text in self.store.history(instance_id)]
        tasks = self.store.tasks(instance_id, unfinished_task_ids(history))
        if any(task.retry for task in tasks.values()):  # the extension's 501 for a provider
            raise errors.ApiError(  # that cannot rewind
                501,
                "The local host cannot rewind an activity that has a retry policy: its attempts "
                "and retry timers are in the history. Restart the instance instead.",
                "Rewind is not supported by the underlying storage provider.",
            )
        now = self.clock()
        events, work = rewound(history, tasks, instance_id, reason, now)
        wake = Message(instance_id, ev.generic_event(now, reason), now)
        self.store.rewind(instance_id, events, work, wake, now)
        self.notify()

    # ---- entities
    def signal_entity(self, name: str, key: str, operation: str, input_text: str | None) -> None:
        """A client's signal: queued for the entity, answered to no one."""
        if not name:
            raise errors.bad_argument("The entity name must not be empty.")
        target = entity_id(name, key)
        message = request(operation, input_text, None, str(uuid.uuid4()))
        self._send(target, ev.event_raised(self.clock(), OPERATION, json.dumps(message)))

    def entity(self, name: str, key: str) -> Instance | None:
        """The entity, if it exists (has state)."""
        found = self.store.get_instance(entity_id(name, key))
        return found if found is not None and found.status == RuntimeStatus.RUNNING else None

    def purge(self, instance_id: str) -> int:
        """One instance's history and state. An orchestration must exist (404) and have
        finished (412, as the extension answers since 3.9.1); an id starting with '@' is not
        checked (entities exist while running), and one that is not there purges nothing."""
        if not is_entity(instance_id):
            found = self.store.get_instance(instance_id)
            if found is None:
                raise errors.not_found()
            if not found.finished:
                raise PlainAnswer(
                    412,
                    "Only orchestrations in a terminal state can be purged, but the orchestration "
                    f"with instance ID {instance_id} has status {found.status}",
                )
        return self.store.purge(instance_id)

    def purge_finished(self, instances: list[Instance]) -> int:
        return sum(self.store.purge(i.id) for i in instances if i.status in FINISHED)

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
            for item in self.store.pending_work(self._busy_work | self._cooling("work"), free):
                self._busy_work.add(item.id)
                self._spawn(self._activity(item))

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
        if is_entity(instance_id):
            return await self._entity_batch(instance, messages[:MAX_BATCH])
        tasks = self.store.tasks(instance_id, task_ids(messages))
        delivered = batch(messages, tasks, instance.status == RuntimeStatus.SUSPENDED)
        if not delivered:
            return instance.name, "skipped"
        started = ev.orchestrator_started(now)
        outcome = (
            None if delivered[0].control else await self._orchestrate(instance, started, delivered)
        )
        episode = decide(instance, started, delivered, outcome, tasks, now)
        self.store.commit_episode(episode, self.clock())
        return instance.name, episode.status

    async def _entity_batch(self, instance: Instance, delivered: list[Message]) -> tuple[str, str]:
        """One call of the entity's function with the operations waiting for it, in order."""
        found = [operation_request(m.event) for m in delivered]
        requests = [r for r in found if r is not None]
        if len(requests) < len(found):  # consumed, so nothing can block the entity's queue
            log.error("entity %s: dropped messages that are not operations", instance.id)
        function = self.entities.get(instance.name)
        answer = failure = None
        if not requests:
            failure = "no operation"
        elif function is None:
            failure = f"No entity function named '{instance.name}'"
        else:
            try:
                answer = await self.invoker.entity(function, batch_payload(instance, requests))
            except WorkerLostError:
                raise
            except Exception as error:  # noqa: BLE001 - the function failing is an outcome
                failure = f"Entity function '{function}' failed: {type(error).__name__}: {error}"
        if failure and requests:
            log.error("entity %s: %s", instance.id, failure)
        episode = decide_entity(instance, delivered, requests, answer, failure, self.clock())
        self.store.commit_episode(episode, self.clock())
        return function or instance.name, f"{len(requests)} operation(s)"

    async def _orchestrate(
        self, instance: Instance, started: dict, delivered: list[Message]
    ) -> Outcome:
        """Call the orchestrator with its history and the new events; its failure is an
        outcome, a lost worker the host's fault (the episode runs again)."""
        if instance.name not in self.orchestrators:
            return Outcome(error=f"no orchestrator function named '{instance.name}'")
        past = self.store.history(instance.id)
        payload = episode_payload(instance, past, [started, *(m.event for m in delivered)])
        try:
            return parse_state(await self.invoker.orchestrate(instance.name, payload))
        except WorkerLostError:
            raise
        except Exception as error:  # noqa: BLE001 - user code failing is an outcome
            if isinstance(error, FunctionLoadError):
                log.error("orchestrator %s: %s", instance.name, error)
            elif "$OutOfProcData$" not in str(error):
                log.error("orchestrator %s raised:\n%s", instance.name, traceback.format_exc())
            return outcome_of_exception(error)

    async def _activity(self, item: WorkItem) -> None:
        began = time.perf_counter()
        key = ("work", item.id)
        label = "retried later"
        try:
            event, label = await self._execute(item)
            self.store.finish_work(item, event, self.clock())
            self.backoff.succeeded(key)
            self._redeliveries.pop(item.id, None)
        except WorkerLostError as error:
            self._redelivered(item, key, error)
        except Exception as error:  # noqa: BLE001 - the store failing: the work stays, reruns
            self.backoff.failed(key, _summary("an activity's result could not be stored", error))
        finally:
            self._busy_work.discard(item.id)
            self._wake.set()
        log.info(
            "%s instance=%s %.1fms %s",
            item.name,
            item.instance_id,
            (time.perf_counter() - began) * 1000,
            label,
        )

    def _redelivered(self, item: WorkItem, key: tuple, error: Exception) -> None:
        """Run it again (its work row stays); after MAX_REDELIVERIES, fail it as Azure would
        a message that keeps crashing its worker."""
        runs = self._redeliveries.get(item.id, 0) + 1
        self._redeliveries[item.id] = runs
        if runs <= MAX_REDELIVERIES:
            self.backoff.failed(
                key, _summary(f"{item.name} lost its worker; running it again", error)
            )
            return
        self._redeliveries.pop(item.id, None)
        reason = f"Activity function '{item.name}' failed: its worker process exited {runs} times"
        event = ev.task_failed(self.clock(), item.task_id, reason, "WorkerLostError")
        self.store.finish_work(item, event, self.clock())

    async def _call_http(self, item: WorkItem) -> str:
        """The built-in activity of call_http, bounded by functionTimeout like any other."""
        try:
            return await asyncio.wait_for(
                http_activity.call(item.input or "[]"), self.invoker.timeout
            )
        except TimeoutError:
            raise FunctionTimeoutError(HTTP_ACTIVITY, self.invoker.timeout) from None

    async def _execute(self, item: WorkItem) -> tuple[dict, str]:
        """Run one activity; its failure becomes a TaskFailed event, not an exception. A lost
        worker is the host's failure, not the activity's: it propagates."""
        name, task_id = item.name, item.task_id
        try:
            if name == HTTP_ACTIVITY:
                result = await self._call_http(item)
            elif name not in self.activities:  # not registered: its function.json is unusable
                log.error("activity %s (instance %s): not registered", name, item.instance_id)
                reason = unknown_activity(name, self.activities)
                return ev.task_failed(self.clock(), task_id, reason, "ArgumentException"), "failed"
            else:
                result = await self.invoker.activity(name, item.input)
            return ev.task_completed(self.clock(), task_id, result), "ok"
        except WorkerLostError:
            raise
        except FunctionTimeoutError as error:
            log.error("activity %s (instance %s): %s", name, item.instance_id, error)
            return ev.task_failed(self.clock(), task_id, str(error), "FunctionTimeoutException"), (
                "timed out"
            )
        except Exception as error:  # noqa: BLE001 - user code failing is an outcome
            expected = isinstance(error, (FunctionLoadError, HttpActivityError))
            detail = str(error) if expected else traceback.format_exc()
            log.error("activity %s (instance %s) raised:\n%s", name, item.instance_id, detail)
            reason = f"Activity function '{name}' failed: {type(error).__name__}: {error}"
            return ev.task_failed(self.clock(), task_id, reason, type(error).__name__), "failed"


def _summary(what: str, error: Exception) -> str:
    """One line that is the same for the same failure, whatever instance it hit."""
    return f"{what}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
