"""One orchestration episode as a pure function: (instance, new events, outcome) -> changes.

Sequence ids follow the SDK's numbering: each new leaf action that schedules work takes the next
id, in order; a failed retryable task then takes one for its retry timer, and that timer firing
takes one for the next attempt. Those two retry steps consume ids the orchestrator's actions do
not show, so an episode delivers at most one retry event, last (see `batch`), which makes the
order of ids unambiguous.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from itertools import takewhile

from devhost.durable import entities
from devhost.durable import events as ev
from devhost.durable.actions import (
    ACTIVITIES,
    CALL_ENTITY,
    CALL_HTTP,
    CONTINUE_AS_NEW,
    CREATE_TIMER,
    HTTP_ACTIVITY,
    SIGNAL_ENTITY,
    SUB_ORCHESTRATIONS,
    SUPPORTED,
    Outcome,
    leaves,
)
from devhost.durable.model import (
    Child,
    Episode,
    Instance,
    Message,
    RuntimeStatus,
    Task,
    WorkItem,
)

FAILURES = (ev.TASK_FAILED, ev.SUB_ORCHESTRATION_FAILED)
RETRY_TIMER = "retry:"  # a retry timer's task kind is "retry:" + the kind it retries


def is_retry_event(event: dict, tasks: dict[int, Task]) -> bool:
    if event["EventType"] in FAILURES:
        task = tasks.get(event.get("TaskScheduledId"))
        return bool(task and task.retry)
    if event["EventType"] == ev.TIMER_FIRED:
        task = tasks.get(event.get("TimerId"))
        return bool(task and task.kind.startswith(RETRY_TIMER))
    return False


def task_ids(messages: list[Message]) -> set[int]:
    ids = set()
    for message in messages:
        for key in ("TaskScheduledId", "TimerId"):
            if isinstance(message.event.get(key), int):
                ids.add(message.event[key])
    return ids


def batch(messages: list[Message], tasks: dict[int, Task], suspended: bool) -> list[Message]:
    """The messages one episode delivers. Control events go alone, in a run: the orchestrator
    is not called for them; a suspended instance receives nothing else. Otherwise: up to the
    next control event, and up to and including the first retry event."""
    if suspended:
        return [m for m in messages if m.control]
    if messages and messages[0].control:
        return list(takewhile(lambda m: m.control, messages))
    delivered = []
    for message in messages:
        if message.control:
            break
        delivered.append(message)
        if is_retry_event(message.event, tasks):
            break
    return delivered


def unfinished_task_ids(history: list[dict]) -> set[int]:
    """Activities that failed, or never finished (still running when a fan-out failed)."""
    scheduled = {e["EventId"] for e in history if e["EventType"] == ev.TASK_SCHEDULED}
    completed = {e["TaskScheduledId"] for e in history if e["EventType"] == ev.TASK_COMPLETED}
    return scheduled - completed


def _failed_end(event: dict) -> bool:
    kind = event["EventType"]
    return kind == ev.EXECUTION_FAILED or (
        kind == ev.EXECUTION_COMPLETED and event.get("OrchestrationStatus") == RuntimeStatus.FAILED
    )


def rewound(
    history: list[dict], tasks: dict[int, Task], instance_id: str, reason: str | None, now: float
) -> tuple[list[dict], list[WorkItem]]:
    """A failed instance's history made ready to run again, as the extension's rewind does:
    each failed activity's TaskScheduled and TaskFailed, and the failed end, become
    GenericEvents (so the replay finds those activities not yet run); they run again, with the
    activities that were still running when it failed. `tasks` holds those tasks."""
    rerun = unfinished_task_ids(history)
    events = []
    for event in history:
        kind = event["EventType"]
        cancelled = (
            kind == ev.TASK_FAILED
            or (kind == ev.TASK_SCHEDULED and event["EventId"] in rerun)
            or _failed_end(event)
        )
        if not cancelled:
            events.append(event)
            continue
        events.append({**ev.generic_event(now, reason), "Reason": f"Rewound: {ev.NAMES[kind]}"})
    work = [
        WorkItem(instance_id, task_id, tasks[task_id].name, tasks[task_id].input)
        for task_id in sorted(rerun)
        if task_id in tasks and tasks[task_id].kind == "activity"
    ]
    return events, work


def retry_delay(retry: dict, attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: first interval grown by the backoff, capped."""
    delay = retry.get("firstRetryIntervalInMilliseconds", 1000) * (
        retry.get("backoffCoefficient", 1) ** (attempt - 1)
    )
    cap = retry.get("maxRetryIntervalInMilliseconds")
    if cap:
        delay = min(delay, cap)
    return max(delay, 0) / 1000


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _json(value: object) -> str | None:
    return None if value is None else json.dumps(value)


class _Builder:
    """Accumulates the episode's changes while ids are handed out."""

    def __init__(self, instance: Instance, now: float) -> None:
        self.instance = instance
        self.now = now
        self.seq = instance.next_seq
        self.events: list[dict] = []
        self.tasks: list[Task] = []
        self.work: list[WorkItem] = []
        self.messages: list[Message] = []
        self.children: list[Child] = []

    def take_id(self) -> int:
        self.seq += 1
        return self.seq - 1

    def schedule(
        self,
        kind: str,
        name: str,
        input_text: str | None,
        retry: dict | None,
        attempt: int,
        instance_id: str | None = None,
    ) -> None:
        task_id = self.take_id()
        self.tasks.append(Task(task_id, kind, name, input_text, retry, attempt))
        if kind == "activity":
            self.events.append(ev.task_scheduled(self.now, task_id, name, input_text))
            self.work.append(WorkItem(self.instance.id, task_id, name, input_text))
            return
        child = instance_id or f"{self.instance.id}:{task_id}"
        if attempt > 1:
            child = f"{child}:{attempt}"
        self.events.append(ev.sub_orchestration_created(self.now, task_id, name, child, input_text))
        start = ev.execution_started(self.now, child, name, input_text, self.instance.id)
        self.children.append(Child(child, name, input_text, task_id, start))

    def timer(self, fire_at: float, kind: str = "timer", like: Task | None = None) -> None:
        """A durable timer: a TimerFired message that becomes visible at fire_at."""
        timer_id = self.take_id()
        stamp = ev.timestamp(fire_at)
        self.events.append(ev.timer_created(self.now, timer_id, stamp))
        self.messages.append(
            Message(self.instance.id, ev.timer_fired(fire_at, timer_id, stamp), fire_at)
        )
        task = Task(timer_id, kind) if like is None else replace(like, task_id=timer_id, kind=kind)
        self.tasks.append(task)

    def leaf(self, action: dict) -> str | None:
        """Apply one new leaf action; returns an error message for an unsupported one."""
        kind = action.get("actionType")
        if kind not in SUPPORTED:
            return f"Action type {kind} is not supported by the local host."
        if kind in ACTIVITIES:
            self.schedule(
                "activity",
                action["functionName"],
                action.get("input"),
                action.get("retryOptions"),
                1,
            )
        elif kind in SUB_ORCHESTRATIONS:
            self.schedule(
                "suborchestration",
                action["functionName"],
                action.get("input"),
                action.get("retryOptions"),
                1,
                action.get("instanceId"),
            )
        elif kind == CREATE_TIMER:
            self.timer(_epoch(action["fireAt"]))
        elif kind == CALL_HTTP:
            request = json.dumps([action.get("httpRequest")])
            self.schedule("activity", HTTP_ACTIVITY, request, None, 1)
        elif kind in (CALL_ENTITY, SIGNAL_ENTITY):
            sent, message = entities.send(
                self.instance.id, self.take_id(), action, kind == SIGNAL_ENTITY, self.now
            )
            self.events.append(sent)
            self.messages.append(message)
        return None  # external events take no id; continue-as-new is handled at the end

    def apply(self, actions: list[dict], recorded: list | None) -> str | None:
        """Apply new leaf actions in order, recording the ones a replay is checked against;
        returns the error that stopped it, if any."""
        for action in actions:
            first_id = self.seq
            error = self.leaf(action)
            if error:
                return error
            kind = CHECKED.get(action.get("actionType"))
            if recorded is not None and kind:
                recorded.append([kind, action.get("functionName") or "", first_id])
        return None

    def retry(self, event: dict, task: Task) -> None:
        """A failed attempt gets a retry timer; a fired retry timer, the next attempt."""
        if event["EventType"] in FAILURES:
            fire_at = self.now + retry_delay(task.retry, task.attempt)
            self.timer(fire_at, RETRY_TIMER + task.kind, task)
        elif task.attempt < task.retry.get("maxNumberOfAttempts", 1):
            kind = task.kind.removeprefix(RETRY_TIMER)
            self.schedule(kind, task.name, task.input, task.retry, task.attempt + 1)


# the tasks whose replay is checked, as DTFx checks them (waiting for an event schedules nothing)
CHECKED = {
    **dict.fromkeys(ACTIVITIES, "activity"),
    **dict.fromkeys(SUB_ORCHESTRATIONS, "sub-orchestration"),
    CREATE_TIMER: "timer",
}
# the .NET action types DTFx names when a replay produced something else
ACTION_NAMES = dict.fromkeys(ACTIVITIES, "ScheduleTaskOrchestratorAction")
ACTION_NAMES |= dict.fromkeys(SUB_ORCHESTRATIONS, "CreateSubOrchestrationAction")
ACTION_NAMES[CREATE_TIMER] = "CreateTimerOrchestratorAction"
CHANGED = (
    "Was a change made to the orchestrator code after this instance had already started running?"
)


def _mismatch(kind: str, seq: int, name: str, action: dict | None) -> str | None:
    """DTFx's TaskOrchestrationContext messages (activities and timers word for word)."""
    if kind == "timer":
        scheduled = f"scheduled a timer task with sequence number {seq} but the current"
    elif kind == "activity":
        scheduled = (
            f"scheduled an activity task with sequence number {seq} named '{name}', but the current"
        )
    else:
        scheduled = (
            f"scheduled a sub-orchestration task with sequence ID {seq} named '{name}', "
            "but the current"
        )
    if action is None:
        if kind == "activity":
            scheduled = (
                f"scheduled an activity task with sequence ID {seq} and name '{name}' "
                "(version ''), but the current"
            )
        return f"{scheduled} replay execution hasn't (yet?) scheduled this task. {CHANGED}"
    if CHECKED[action["actionType"]] != kind:
        produced = ACTION_NAMES[action["actionType"]]
        return (
            f"{scheduled} orchestration replay instead produced a {produced} action with this "
            f"sequence number. {CHANGED}"
        )
    new_name = action.get("functionName") or ""
    if kind != "timer" and new_name.lower() != name.lower():
        noun = "an activity task" if kind == "activity" else "a sub-orchestration task"
        return (
            f"{scheduled} orchestration replay instead scheduled {noun} named '{new_name}' with "
            f"this sequence number.  {CHANGED}"
        )
    return None


def nondeterminism(recorded: list[list], replayed: list[dict]) -> str | None:
    """The failure when the replay no longer schedules what the history says it scheduled:
    missing, of another type, or by another name (names compare ignoring case, as in DTFx)."""
    checked = [a for a in replayed if a.get("actionType") in CHECKED]
    for index, (kind, name, seq) in enumerate(recorded):
        action = checked[index] if index < len(checked) else None
        detail = _mismatch(kind, seq, name or "", action)
        if detail:
            return (
                "Non-Deterministic workflow detected: A previous execution of this "
                f"orchestration {detail}"
            )
    return None


def _episode(instance: Instance, delivered: list[Message], events: list[dict]) -> Episode:
    """An episode that changes nothing yet but consumes `delivered` and records `events`."""
    return Episode(
        instance_id=instance.id,
        consumed=[m.id for m in delivered if m.id is not None],
        events=events,
        status=instance.status,
        output=instance.output,
        custom_status=instance.custom_status,
        next_seq=instance.next_seq,
        actions_seen=instance.actions_seen,
        scheduled=instance.scheduled,
        created=instance.created,
    )


def _recorded(instance: Instance) -> list | None:
    """What the instance scheduled so far; None for one started by an older store, which
    kept no record: it is not checked."""
    if instance.scheduled:
        return json.loads(instance.scheduled)
    return None if instance.actions_seen else []


def decide(
    instance: Instance,
    started: dict,
    delivered: list[Message],
    outcome: Outcome | None,
    tasks: dict[int, Task],
    now: float,
) -> Episode:
    """The changes of one episode, ready for Store.commit_episode. `outcome` is the
    orchestrator's answer; None for a run of control events, which it never sees."""
    if outcome is None:
        return _control(instance, started, delivered, now)
    build = _Builder(instance, now)
    replayed = leaves(outcome.actions)
    new_leaves = replayed[instance.actions_seen :]
    recorded = _recorded(instance)
    error = outcome.error
    seen = replayed[: instance.actions_seen]
    changed = nondeterminism(recorded, seen) if error is None and recorded else None
    if error is None and changed is None:
        error = build.apply(new_leaves, recorded)
    if error is None and not outcome.done and delivered:
        last = delivered[-1].event
        if is_retry_event(last, tasks):
            build.retry(last, tasks[last.get("TaskScheduledId", last.get("TimerId"))])

    episode = _episode(instance, delivered, [started, *(m.event for m in delivered), *build.events])
    episode.status = RuntimeStatus.RUNNING
    episode.output = None
    episode.custom_status = _json(outcome.custom_status)
    episode.next_seq = build.seq
    episode.actions_seen = instance.actions_seen + len(new_leaves)
    episode.scheduled = None if recorded is None else json.dumps(recorded, separators=(",", ":"))
    episode.tasks, episode.work = build.tasks, build.work
    episode.messages, episode.children = build.messages, build.children
    continued = next((a for a in new_leaves if a.get("actionType") == CONTINUE_AS_NEW), None)
    if changed is not None:
        _finish(episode, instance, RuntimeStatus.FAILED, changed, now)
    elif error is not None:
        message = f"Orchestrator function '{instance.name}' failed: {error}"
        _finish(episode, instance, RuntimeStatus.FAILED, message, now)
    elif outcome.done and continued is not None:
        _continue_as_new(episode, instance, continued.get("input"), now)
    elif outcome.done:
        _finish(episode, instance, RuntimeStatus.COMPLETED, outcome.output, now)
    else:
        episode.events.append(ev.orchestrator_completed(now))
    return episode


def _control(instance: Instance, started: dict, delivered: list[Message], now: float) -> Episode:
    """Terminate, suspend and resume, in arrival order; one that does not apply to the
    instance's status (resume of a running one) is consumed and changes nothing."""
    episode = _episode(instance, delivered, [started])
    for message in delivered:
        event, kind = message.event, message.event["EventType"]
        if kind == ev.EXECUTION_TERMINATED:
            episode.events.append(event)
            _finish(episode, instance, RuntimeStatus.TERMINATED, _reason(event), now)
            return episode
        if kind == ev.EXECUTION_SUSPENDED and episode.status != RuntimeStatus.SUSPENDED:
            episode.status = RuntimeStatus.SUSPENDED
            episode.events.append(event)
        elif kind == ev.EXECUTION_RESUMED and episode.status == RuntimeStatus.SUSPENDED:
            episode.status = RuntimeStatus.RUNNING
            episode.events.append(event)
    episode.events.append(ev.orchestrator_completed(now))
    return episode


def _reason(event: dict) -> object:
    """A terminate reason is shown as JSON when it is JSON, as the extension shows it."""
    text = event.get("Input") or ""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _finish(
    episode: Episode, instance: Instance, status: RuntimeStatus, output: object, now: float
) -> None:
    result = _json(output)
    episode.status, episode.output = status, result
    episode.events.append(ev.execution_completed(now, status, result))
    episode.events.append(ev.orchestrator_completed(now))
    episode.work, episode.children = [], []
    # its own timers die with it; what it sent to others (entity signals) still goes
    episode.messages = [m for m in episode.messages if m.instance_id != instance.id]
    if instance.parent_id:
        task_id = instance.parent_task
        if status == RuntimeStatus.COMPLETED:
            notice = ev.sub_orchestration_completed(now, task_id, result)
        else:
            notice = ev.sub_orchestration_failed(now, task_id, str(output), "")
        episode.messages.append(Message(instance.parent_id, notice, now))


def _continue_as_new(
    episode: Episode, instance: Instance, input_text: str | None, now: float
) -> None:
    """Start a fresh history with the new input; unconsumed messages stay in the inbox."""
    episode.status = RuntimeStatus.CONTINUED_AS_NEW
    episode.reset_history = True
    episode.events = []
    episode.tasks, episode.work, episode.children = [], [], []
    episode.next_seq, episode.actions_seen, episode.scheduled = 0, 0, "[]"
    episode.input = input_text
    start = ev.execution_started(now, instance.id, instance.name, input_text, instance.parent_id)
    sent = [m for m in episode.messages if m.instance_id != instance.id]  # entity signals go
    episode.messages = [*sent, Message(instance.id, start, now)]
