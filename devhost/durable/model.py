"""The host's records: what an instance, a task, a message, a work item and an episode are,
and a timer trigger's schedule status (which the store keeps beside them).

Every layer speaks these types: the store reads and writes them, the turn computes them, the
HTTP layer renders them. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from devhost.durable import events as ev


class RuntimeStatus(StrEnum):
    """The extension's OrchestrationRuntimeStatus names, as the status API spells them."""

    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    CONTINUED_AS_NEW = "ContinuedAsNew"
    FAILED = "Failed"
    CANCELED = "Canceled"
    TERMINATED = "Terminated"
    SUSPENDED = "Suspended"


FINISHED = frozenset(
    {
        RuntimeStatus.COMPLETED,
        RuntimeStatus.FAILED,
        RuntimeStatus.TERMINATED,
        RuntimeStatus.CANCELED,
    }
)
ACTIVE = frozenset(RuntimeStatus) - FINISHED

# Instance control arrives as inbox messages like any other event, so the episode that handles
# them is the only place an instance's status changes (as DTFx does it). These event types are
# delivered even to a suspended instance, and never to the orchestrator function itself.
CONTROL_EVENTS = frozenset({ev.EXECUTION_TERMINATED, ev.EXECUTION_SUSPENDED, ev.EXECUTION_RESUMED})


@dataclass
class Instance:
    """One orchestration instance, as the store keeps it."""

    id: str
    name: str
    status: RuntimeStatus
    input: str | None = None
    output: str | None = None
    custom_status: str | None = None
    created: float = 0.0
    updated: float = 0.0
    parent_id: str | None = None
    parent_task: int | None = None
    next_seq: int = 0  # the next sequence id a new task takes
    actions_seen: int = 0  # how many of the orchestrator's leaf actions are already applied
    scheduled: str | None = None  # JSON: [kind, name, sequence id] per task it scheduled

    def __post_init__(self) -> None:
        self.status = RuntimeStatus(self.status)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass
class Task:
    """What the host remembers of a scheduled task: enough to retry it."""

    task_id: int
    kind: str  # activity | suborchestration | timer | retry:<kind>
    name: str | None = None
    input: str | None = None
    retry: dict | None = None
    attempt: int = 1


@dataclass
class Message:
    """An event for an instance's inbox; `id` is set once the store holds it."""

    instance_id: str
    event: dict
    visible_at: float = 0.0
    id: int | None = None

    @property
    def control(self) -> bool:
        return self.event["EventType"] in CONTROL_EVENTS


@dataclass
class WorkItem:
    """An activity to run; its result becomes a message to its instance."""

    instance_id: str
    task_id: int
    name: str
    input: str | None = None
    id: int | None = None


@dataclass
class Child:
    """A sub-orchestration an episode starts."""

    instance_id: str
    name: str
    input: str | None
    parent_task: int
    start_event: dict


@dataclass
class Episode:
    """Everything one episode changes, applied by the store in one transaction."""

    instance_id: str
    consumed: list[int]
    events: list[dict]
    status: RuntimeStatus
    output: str | None
    custom_status: str | None
    next_seq: int
    actions_seen: int
    scheduled: str | None = None
    created: float | None = None  # of the instance it was computed for: purged and recreated?
    reset_history: bool = False
    input: str | None = None  # the new input, with reset_history (continue-as-new)
    tasks: list[Task] = field(default_factory=list)
    work: list[WorkItem] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)


@dataclass
class TimerStatus:
    """A timer trigger's schedule status (epochs): what makes a missed run past due."""

    last: float | None
    next: float
    updated: float
