"""An instance's history as the extension's status API shows it (`showHistory=true`).

The stored events are DTFx's, with numeric types; the extension names them, drops the
episode markers, and folds each TaskScheduled (or SubOrchestrationInstanceCreated) into the
event that completed it, which gains `FunctionName`, `ScheduledTime` and `Input`. Results and
outputs only appear with `showHistoryOutput=true`.
"""

from __future__ import annotations

import json
from typing import Any

from devhost.durable import events as ev

DROPPED = {ev.ORCHESTRATOR_STARTED, ev.ORCHESTRATOR_COMPLETED}
SCHEDULED = {ev.TASK_SCHEDULED: "task", ev.SUB_ORCHESTRATION_CREATED: "child"}
COMPLETIONS = {
    ev.TASK_COMPLETED: "task",
    ev.TASK_FAILED: "task",
    ev.SUB_ORCHESTRATION_COMPLETED: "child",
    ev.SUB_ORCHESTRATION_FAILED: "child",
}
WITH_RESULT = {ev.TASK_COMPLETED, ev.SUB_ORCHESTRATION_COMPLETED}
EXECUTION_END = {ev.EXECUTION_COMPLETED, ev.EXECUTION_FAILED}  # the latter from older stores


def _parsed(text: Any) -> Any:
    """Outputs are shown as JSON when they are JSON, as the raw text otherwise."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def render_history(stored: list[str], show_input: bool, show_output: bool) -> list[dict]:
    """Oldest first, as stored; `stored` is the store's JSON text per event."""
    shown: list[dict | None] = []
    open_tasks: dict[tuple[str, int], int] = {}  # (kind, id) -> index in `shown`
    for text in stored:
        event = json.loads(text)
        kind = event.pop("EventType")
        event_id = event.pop("EventId", -1)
        event.pop("IsPlayed", None)
        if kind in DROPPED:
            continue
        item = {"EventType": ev.NAMES.get(kind, str(kind)), **event}
        if kind == ev.EXECUTION_STARTED:
            item["FunctionName"] = item.pop("Name", None)
            for key in ("OrchestrationInstance", "ParentInstance", "Version", "Tags"):
                item.pop(key, None)
        elif kind in SCHEDULED:
            item.pop("Version", None)
            open_tasks[(SCHEDULED[kind], event_id)] = len(shown)
        elif kind in COMPLETIONS:
            where = open_tasks.pop((COMPLETIONS[kind], item.pop("TaskScheduledId", -1)), None)
            if where is not None:
                scheduled = shown[where]
                shown[where] = None
                item["ScheduledTime"] = scheduled["Timestamp"]
                item["FunctionName"] = scheduled.get("Name")
                item["Input"] = scheduled.get("Input")
            if kind in WITH_RESULT:
                _result(item, show_output)
        elif kind in EXECUTION_END:
            item["OrchestrationStatus"] = str(item.get("OrchestrationStatus"))
            _result(item, show_output)
        elif kind == ev.TIMER_FIRED:
            item.pop("TimerId", None)
        if not show_input:
            item.pop("Input", None)
        shown.append(item)
    return [item for item in shown if item is not None]


def _result(item: dict, show_output: bool) -> None:
    if show_output:
        item["Result"] = _parsed(item.get("Result"))
    else:
        item.pop("Result", None)
