"""The orchestrator's answer: parse it, and flatten its cumulative action tree into leaves."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

CALL_ACTIVITY = 0
CALL_ACTIVITY_WITH_RETRY = 1
CALL_SUB_ORCHESTRATOR = 2
CALL_SUB_ORCHESTRATOR_WITH_RETRY = 3
CONTINUE_AS_NEW = 4
CREATE_TIMER = 5
WAIT_FOR_EXTERNAL_EVENT = 6
CALL_ENTITY = 7
CALL_HTTP = 8
SIGNAL_ENTITY = 9
WHEN_ANY = 11
WHEN_ALL = 12
ACTIVITIES = (CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY)
SUB_ORCHESTRATIONS = (CALL_SUB_ORCHESTRATOR, CALL_SUB_ORCHESTRATOR_WITH_RETRY)
HTTP_ACTIVITY = "BuiltIn::HttpActivity"  # the extension's activity for CallHttp
SUPPORTED = {
    *ACTIVITIES,
    *SUB_ORCHESTRATIONS,
    CONTINUE_AS_NEW,
    CREATE_TIMER,
    WAIT_FOR_EXTERNAL_EVENT,
    CALL_ENTITY,
    CALL_HTTP,
    SIGNAL_ENTITY,
}
OUT_OF_PROC_MARKER = "\n\n$OutOfProcData$:"


@dataclass
class Outcome:
    """What one orchestrator invocation decided."""

    done: bool = False
    actions: list = field(default_factory=list)
    output: Any = None
    error: str | None = None
    custom_status: Any = None


def parse_state(state_json: str) -> Outcome:
    state = json.loads(state_json)
    return Outcome(
        done=bool(state.get("isDone")),
        actions=state.get("actions") or [],
        output=state.get("output"),
        error=state.get("error") or None,
        custom_status=state.get("customStatus"),
    )


def outcome_of_exception(error: BaseException) -> Outcome:
    """An orchestrator that raised: the SDK appends its state after a marker."""
    message, marker, state_json = str(error).partition(OUT_OF_PROC_MARKER)
    outcome = Outcome()
    if marker:
        try:
            outcome = parse_state(state_json)
        except ValueError:
            pass
    outcome.error = message or type(error).__name__
    return outcome


def leaves(actions: list) -> list[dict]:
    """Leaf actions depth-first: the order in which the SDK numbered them."""
    found: list[dict] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif node.get("actionType") in (WHEN_ANY, WHEN_ALL):
            walk(node.get("compoundActions") or [])
        else:
            found.append(node)

    walk(actions)
    return found
