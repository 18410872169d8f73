"""History events as the extension hands them to an out-of-process orchestrator (DTFx shapes).

One factory per event kind, shared by the engine and its tests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

EXECUTION_STARTED = 0
EXECUTION_COMPLETED = 1
EXECUTION_FAILED = 2
EXECUTION_TERMINATED = 3
TASK_SCHEDULED = 4
TASK_COMPLETED = 5
TASK_FAILED = 6
SUB_ORCHESTRATION_CREATED = 7
SUB_ORCHESTRATION_COMPLETED = 8
SUB_ORCHESTRATION_FAILED = 9
TIMER_CREATED = 10
TIMER_FIRED = 11
ORCHESTRATOR_STARTED = 12
ORCHESTRATOR_COMPLETED = 13
EVENT_SENT = 14
EVENT_RAISED = 15
GENERIC_EVENT = 17
EXECUTION_SUSPENDED = 19
EXECUTION_RESUMED = 20

NAMES = {
    EXECUTION_STARTED: "ExecutionStarted",
    EXECUTION_COMPLETED: "ExecutionCompleted",
    EXECUTION_FAILED: "ExecutionFailed",
    EXECUTION_TERMINATED: "ExecutionTerminated",
    TASK_SCHEDULED: "TaskScheduled",
    TASK_COMPLETED: "TaskCompleted",
    TASK_FAILED: "TaskFailed",
    SUB_ORCHESTRATION_CREATED: "SubOrchestrationInstanceCreated",
    SUB_ORCHESTRATION_COMPLETED: "SubOrchestrationInstanceCompleted",
    SUB_ORCHESTRATION_FAILED: "SubOrchestrationInstanceFailed",
    TIMER_CREATED: "TimerCreated",
    TIMER_FIRED: "TimerFired",
    EVENT_SENT: "EventSent",
    EVENT_RAISED: "EventRaised",
    GENERIC_EVENT: "GenericEvent",
    EXECUTION_SUSPENDED: "ExecutionSuspended",
    EXECUTION_RESUMED: "ExecutionResumed",
}


def timestamp(epoch: float) -> str:
    """ISO 8601 in UTC with 7 fraction digits, as .NET writes it (dateutil reads it)."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def event(kind: int, epoch: float, event_id: int = -1, **fields: Any) -> dict:
    return {
        "EventType": kind,
        "EventId": event_id,
        "IsPlayed": False,
        "Timestamp": timestamp(epoch),
        **fields,
    }


def orchestrator_started(epoch: float) -> dict:
    return event(ORCHESTRATOR_STARTED, epoch)


def orchestrator_completed(epoch: float) -> dict:
    return event(ORCHESTRATOR_COMPLETED, epoch)


def execution_started(
    epoch: float, instance_id: str, name: str, input_text: str | None, parent_id: str | None
) -> dict:
    parent = {"OrchestrationInstance": {"InstanceId": parent_id}} if parent_id else None
    return event(
        EXECUTION_STARTED,
        epoch,
        OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": ""},
        ParentInstance=parent,
        Name=name,
        Version="",
        Input=input_text,
        Tags=None,
        Correlation=None,
        ScheduledStartTime=None,
        Generation=0,
    )


def execution_completed(epoch: float, status: str, result: str | None) -> dict:
    """How every execution ends in DTFx, failed or not (ExecutionFailed is never written)."""
    return event(EXECUTION_COMPLETED, epoch, OrchestrationStatus=status, Result=result)


def execution_terminated(epoch: float, reason: str) -> dict:
    return event(EXECUTION_TERMINATED, epoch, Input=reason)


def task_scheduled(epoch: float, task_id: int, name: str, input_text: str | None) -> dict:
    return event(TASK_SCHEDULED, epoch, task_id, Name=name, Version="", Input=input_text)


def task_completed(epoch: float, task_id: int, result: str) -> dict:
    return event(TASK_COMPLETED, epoch, TaskScheduledId=task_id, Result=result)


def task_failed(epoch: float, task_id: int, reason: str, details: str) -> dict:
    return event(TASK_FAILED, epoch, TaskScheduledId=task_id, Reason=reason, Details=details)


def timer_created(epoch: float, timer_id: int, fire_at: str) -> dict:
    return event(TIMER_CREATED, epoch, timer_id, FireAt=fire_at)


def timer_fired(epoch: float, timer_id: int, fire_at: str) -> dict:
    return event(TIMER_FIRED, epoch, TimerId=timer_id, FireAt=fire_at)


def sub_orchestration_created(
    epoch: float, task_id: int, name: str, instance_id: str, input_text: str | None
) -> dict:
    return event(
        SUB_ORCHESTRATION_CREATED,
        epoch,
        task_id,
        Name=name,
        InstanceId=instance_id,
        Input=input_text,
        Version="",
    )


def sub_orchestration_completed(epoch: float, task_id: int, result: str | None) -> dict:
    return event(SUB_ORCHESTRATION_COMPLETED, epoch, TaskScheduledId=task_id, Result=result)


def sub_orchestration_failed(epoch: float, task_id: int, reason: str, details: str) -> dict:
    return event(
        SUB_ORCHESTRATION_FAILED, epoch, TaskScheduledId=task_id, Reason=reason, Details=details
    )


def event_raised(epoch: float, name: str, input_text: str | None) -> dict:
    return event(EVENT_RAISED, epoch, Name=name, Input=input_text)


def execution_suspended(epoch: float, reason: str | None) -> dict:
    return event(EXECUTION_SUSPENDED, epoch, Reason=reason)


def execution_resumed(epoch: float, reason: str | None) -> dict:
    return event(EXECUTION_RESUMED, epoch, Reason=reason)


def generic_event(epoch: float, data: str | None) -> dict:
    return event(GENERIC_EVENT, epoch, Data=data)
