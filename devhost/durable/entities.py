"""Durable entities as the extension runs them for the Python SDK, as pure functions.

An entity is an instance whose id is `@name@key` (name lowercased). Its inbox holds operation
requests: EventRaised events named "op" whose input is the extension's RequestMessage JSON
(`op`, `signal`, `input`, `id`, `parent`). A batch of them goes to the entityTrigger function in
one call (`Entity.create`'s protocol: self, exists, state, batch in; entityExists, entityState,
results out); each call that is not a signal is answered with an EventRaised named by its
request id, which the SDK matches through the EventSent recorded when the orchestrator sent it.
The entity keeps no history: its state is the instance's output, its existence its status.
"""

from __future__ import annotations

import json
import uuid

from devhost.durable import events as ev
from devhost.durable.model import Episode, Instance, Message, RuntimeStatus

OPERATION = "op"  # the event name of every request to an entity
MAX_BATCH = 100  # operations per call of the entity function
_IDS = uuid.UUID("2d1e6a8e-9f61-4b0c-8a39-6c3e3c4f6a52")  # namespace of request ids


def entity_id(name: str, key: str) -> str:
    return f"@{name.lower()}@{key}"


def is_entity(instance_id: str) -> bool:
    return instance_id.startswith("@")


def split_entity_id(instance_id: str) -> tuple[str, str]:
    """(name, key); the key may itself hold '@'."""
    name, _, key = instance_id[1:].partition("@")
    return name, key


def request(op: str, input_text: str | None, parent: str | None, request_id: str) -> dict:
    """The RequestMessage the extension sends; `input_text` is the operation's JSON text."""
    message = {"op": op, "id": request_id, "parent": parent}
    if parent is None:
        message["signal"] = True
    if input_text is not None:
        message["input"] = input_text
    return message


def request_id(instance_id: str, seq: int, now: float) -> str:
    """Stable once recorded (the EventSent holds it); unique across executions."""
    return str(uuid.uuid5(_IDS, f"{instance_id}/{seq}/{now!r}"))


def send(
    instance_id: str, seq: int, action: dict, signal: bool, now: float
) -> tuple[dict, Message]:
    """An orchestrator's call_entity or signal_entity: the EventSent for its history, and the
    request for the entity's inbox. The action's input is JSON text; the extension encodes it
    once more, so the entity reads a JSON string holding it."""
    target = action["instanceId"]
    rid = request_id(instance_id, seq, now)
    body = request(action["operation"], json.dumps(action.get("input")), instance_id, rid)
    if signal:
        body["signal"] = True
    text = json.dumps(body)
    sent = ev.event(ev.EVENT_SENT, now, seq, InstanceId=target, Name=OPERATION, Input=text)
    return sent, Message(target, ev.event_raised(now, OPERATION, text), now)


def operation_request(event: dict) -> dict | None:
    """The request an inbox event carries, or None if it is not an operation."""
    if event.get("EventType") != ev.EVENT_RAISED or event.get("Name") != OPERATION:
        return None
    try:
        found = json.loads(event.get("Input") or "")
    except ValueError:
        return None
    return found if isinstance(found, dict) and isinstance(found.get("op"), str) else None


def _answer(text: str | None) -> dict | None:
    """The function's answer, if it is Entity.create's shape."""
    try:
        found = json.loads(text or "")
    except ValueError:
        return None
    results = found.get("results") if isinstance(found, dict) else None
    return found if isinstance(results, list) else None


def batch_payload(instance: Instance, requests: list[dict]) -> str:
    """The entityTrigger JSON for one batch."""
    name, key = split_entity_id(instance.id)
    return json.dumps(
        {
            "self": {"name": name, "key": key},
            "exists": instance.status == RuntimeStatus.RUNNING,
            "state": instance.output,
            "batch": [
                {"name": r["op"], "input": r.get("input"), "isSignal": bool(r.get("signal"))}
                for r in requests
            ],
        }
    )


def decide_entity(
    instance: Instance,
    delivered: list[Message],
    requests: list[dict],
    answer: str | None,
    failure: str | None,
    now: float,
) -> Episode:
    """The changes of one batch: the new state, and an answer to each caller. `failure` (the
    function could not run at all) fails every call and leaves the state as it was."""
    episode = Episode(
        instance_id=instance.id,
        consumed=[m.id for m in delivered if m.id is not None],
        events=[],
        status=instance.status,
        output=instance.output,
        custom_status=None,
        next_seq=0,
        actions_seen=0,
        created=instance.created,
    )
    result = _answer(answer) if failure is None else None
    if failure is None and result is None:
        failure = "The entity function did not answer as df.Entity.create does."
    if result is not None:
        exists = bool(result.get("entityExists"))
        episode.status = RuntimeStatus.RUNNING if exists else RuntimeStatus.PENDING
        episode.output = result.get("entityState") if exists else None
        outcomes = result["results"]
    else:
        outcomes = []
    for index, req in enumerate(requests):
        if req.get("signal") or not req.get("parent"):
            continue
        if index < len(outcomes) and isinstance(outcomes[index], dict):
            outcome = outcomes[index]
            reply = {"result": outcome.get("result")}
            if outcome.get("isError"):
                reply["exceptionType"] = "Error"
        else:
            reply = {
                "result": json.dumps(failure or "the entity gave no result"),
                "exceptionType": "Error",
            }
        raised = ev.event_raised(now, req["id"], json.dumps(reply))
        episode.messages.append(Message(req["parent"], raised, now))
    return episode
