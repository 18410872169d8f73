"""Durable entities through the real SDK: entityTrigger batches, signal_entity and call_entity
from an orchestrator, the SDK client's signal_entity and read_entity_state, the extension's
entity HTTP API, operations in order, and state that survives a SIGKILL."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import requests

from tests.support import HostProcess, poll
from tests.test_engine_conformance import APP, finished, started, webhook


def client_read(host: HostProcess, key: str, name: str = "Tally") -> dict:
    response = host.get(f"/api/entity/{name}/{key}")
    assert response.status_code == 200, response.text
    return response.json()


def client_signal(host: HostProcess, key: str, operation: str, value) -> None:
    response = host.request(
        "POST", f"/api/entity/Tally/{key}", params={"op": operation}, json=value
    )
    assert response.status_code == 202, response.text


def start(start_host, tmp_path, data=None) -> HostProcess:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    return start_host(app=APP, env={"CONFORMANCE_STATE_DIR": str(state)}, data=data)


def test_an_orchestrator_signals_and_calls_an_entity(start_host, tmp_path):
    host = start(start_host, tmp_path)
    status = finished(host, started(host, "TallyOrchestration", "from-orchestrator"))
    assert status["runtimeStatus"] == "Completed", status["output"]
    # the signal was sent first, so the call sees it; an operation's error reaches the caller
    assert status["output"] == {"value": 3, "error": "boom"}
    assert client_read(host, "from-orchestrator") == {"exists": True, "state": 3}
    history = webhook(
        host, "GET", f"instances/{status['instanceId']}", params={"showHistory": "true"}
    ).json()["historyEvents"]
    assert [e["EventType"] for e in history].count("EventSent") == 3


def test_the_sdk_client_signals_and_reads(start_host, tmp_path):
    host = start(start_host, tmp_path)
    assert client_read(host, "client") == {"exists": False, "state": None}
    client_signal(host, "client", "add", 5)
    client_signal(host, "client", "add", 7)
    poll(lambda: client_read(host, "client")["state"] == 12, 10, what="two additions")


def test_the_entity_http_api(start_host, tmp_path):
    host = start(start_host, tmp_path)
    path = "entities/tally/api"
    assert webhook(host, "GET", path).status_code == 404
    # the body as the SDK's client sends it: JSON text, encoded as a JSON string (the Python
    # SDK's entities decode their input twice, so a bare 2 would fail in get_input, in Azure too)
    assert webhook(host, "POST", path, params={"op": "add"}, json="2").status_code == 202
    poll(lambda: webhook(host, "GET", path).status_code == 200, 10, what="the entity")
    assert webhook(host, "GET", path).json() == 2
    bad = webhook(
        host,
        "POST",
        path,
        params={"op": "add"},
        data="{",
        headers={"Content-Type": "application/json"},
    )
    assert bad.status_code == 400
    listed = webhook(host, "GET", "entities/Tally", params={"fetchState": "true"})
    assert listed.status_code == 200
    assert listed.json()[0]["entityId"] == {"name": "tally", "key": "api"}
    assert listed.json()[0]["state"] == 2
    assert listed.headers["x-ms-continuation-token"] == ""
    assert webhook(host, "DELETE", path).status_code == 202
    poll(lambda: webhook(host, "GET", path).status_code == 404, 10, what="deletion")
    # an entity is not an orchestration: the instance API does not reach (or wedge) it
    assert webhook(host, "POST", "instances/@tally@api/terminate").status_code == 404
    unkeyed = requests.get(f"{host.base}/runtime/webhooks/durabletask/{path}", timeout=10)
    assert unkeyed.status_code == 401


def test_entity_lists_filter_by_last_operation_time_and_page(start_host, tmp_path):
    """GET /entities/{name}: lastOperationTimeFrom/To, top with x-ms-continuation-token paging,
    and '$' as the empty key, as the extension's HandleListEntitiesRequestAsync reads them."""
    host = start(start_host, tmp_path)

    def signal_and_wait(key: str) -> None:
        path = f"entities/tally/{key}"
        assert webhook(host, "POST", path, params={"op": "add"}, json="1").status_code == 202
        poll(lambda: webhook(host, "GET", path).status_code == 200, 10, what=f"entity {key}")

    def listed(**params) -> list[str]:
        response = webhook(host, "GET", "entities/Tally", params=params)
        assert response.status_code == 200
        stamps = [e["lastOperationTime"] for e in response.json()]
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t) for t in stamps)
        return [e["entityId"]["key"] for e in response.json()]

    signal_and_wait("a")
    between = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # after a's last operation
    signal_and_wait("b")
    signal_and_wait("c")
    assert listed() == ["a", "b", "c"]
    assert listed(lastOperationTimeFrom=between) == ["b", "c"]
    assert listed(lastOperationTimeTo=between) == ["a"]
    assert listed(lastOperationTimeFrom="2000-01-01T00:00:00Z", lastOperationTimeTo=between) == [
        "a"
    ]
    assert listed(lastOperationTimeFrom="not a date") == ["a", "b", "c"]  # ignored, as TryParse

    pages, token = [], ""
    while len(pages) < 5:
        response = webhook(
            host,
            "GET",
            "entities/Tally",
            params={"top": 2},
            headers={"x-ms-continuation-token": token},
        )
        assert response.status_code == 200
        pages.append([e["entityId"]["key"] for e in response.json()])
        token = response.headers["x-ms-continuation-token"]
        if not token:
            break
    assert pages == [["a", "b"], ["c"]]
    query = {"top": 1, "lastOperationTimeFrom": between}
    first = webhook(host, "GET", "entities/Tally", params=query)
    assert [e["entityId"]["key"] for e in first.json()] == ["b"]
    token = first.headers["x-ms-continuation-token"]
    second = webhook(
        host, "GET", "entities/Tally", params=query, headers={"x-ms-continuation-token": token}
    )
    assert [e["entityId"]["key"] for e in second.json()] == ["c"]  # the filter holds on page 2

    signal_and_wait("$")  # the empty key
    assert webhook(host, "GET", "entities/tally/$").json() == 1
    assert listed() == ["a", "b", "c", ""]


def test_operations_run_one_at_a_time_in_order_and_survive_a_kill(start_host, tmp_path):
    data = tmp_path / "data"
    host = start(start_host, tmp_path, data)
    for value in range(1, 41):  # not 0: the SDK's client sends no input for a falsy one
        client_signal(host, "ordered", "append", value)
    host.kill()  # with the operations done or still queued: either way none is lost
    host = start(start_host, tmp_path, data)
    state = poll(
        lambda: (
            (client_read(host, "ordered")["state"] or [None])[-1] == 40
            and client_read(host, "ordered")["state"]
        ),
        20,
        what="all forty operations",
    )
    assert state == list(range(1, 41))  # each once, in the order sent
