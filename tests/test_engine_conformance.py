"""The local host's Durable engine against small test-only apps, over real HTTP."""

from __future__ import annotations

import json

import pytest
import requests

from tests.support import ROOT, SYSTEM_KEY, HostProcess, hosted, management_status, poll

APP = ROOT / "tests" / "apps" / "conformance"


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> HostProcess:
    data = tmp_path_factory.mktemp("conformance")
    state = data / "state"
    state.mkdir()
    env = {"CONFORMANCE_STATE_DIR": str(state), "FUNCTIONS_WORKER_PROCESS_COUNT": "2"}
    with hosted(APP, data / "host", env) as process:  # durable functions in a worker process
        yield process


def start(host: HostProcess, name: str, payload=None, instance_id: str = "") -> requests.Response:
    path = f"/api/start/{name}" + (f"/{instance_id}" if instance_id else "")
    return host.request("POST", path, json=payload)


def started(host: HostProcess, name: str, payload=None, instance_id: str = "") -> str:
    response = start(host, name, payload, instance_id)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def finished(host: HostProcess, instance_id: str, timeout: float = 30) -> dict:
    def done():
        response = management_status(host, instance_id)
        return response.json() if response.status_code == 200 else None

    return poll(done, timeout, what=f"instance {instance_id}")


def webhook(host: HostProcess, method: str, path: str, **kwargs) -> requests.Response:
    url = f"{host.base}/runtime/webhooks/durabletask/{path}"
    params = {"code": SYSTEM_KEY, **kwargs.pop("params", {})}
    return requests.request(method, url, params=params, timeout=10, **kwargs)


def test_chaining_runs_sync_and_async_activities_in_order(host):
    status = finished(host, started(host, "Chain"))
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == ["Hello Tokyo!", "Hi Seattle!", "Hello London!"]


def test_fan_out_fan_in(host):
    status = finished(host, started(host, "FanOut", 25))
    assert status["output"] == [f"Hello {i}!" for i in range(25)]


def test_retry_until_success(host):
    status = finished(host, started(host, "Retry", {"key": "ok", "failures": 2, "attempts": 4}))
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"attempts": 3}


def test_retry_until_exhaustion_surfaces_the_error(host):
    status = finished(host, started(host, "Retry", {"key": "ko", "failures": 9, "attempts": 3}))
    assert status["output"] == {"failed": True}
    history = management_status(host, status["instanceId"], showHistory="true").json()
    failures = [e for e in history["historyEvents"] if e["EventType"] == "TaskFailed"]
    assert len(failures) == 3  # exactly the bounded number of attempts


def test_durable_timer_and_custom_status(host):
    instance_id = started(host, "Timer")
    running = poll(lambda: management_status(host, instance_id).json().get("customStatus"), 10)
    assert running in ("waiting", "fired")
    status = finished(host, instance_id)
    assert status["customStatus"] == "fired"
    assert status["output"] >= 1.0


def test_external_event(host):
    instance_id = started(host, "WaitEvent")
    poll(lambda: management_status(host, instance_id).json().get("customStatus"), 10)
    assert management_status(host, instance_id).status_code == 202
    raised = webhook(
        host, "POST", f"instances/{instance_id}/raiseEvent/Approval", json={"by": "auditor"}
    )
    assert raised.status_code == 202
    status = finished(host, instance_id)
    assert status["output"] == {"by": "auditor"}
    assert status["customStatus"] == {"stage": "approved"}
    gone = webhook(host, "POST", f"instances/{instance_id}/raiseEvent/Approval", json={})
    assert gone.status_code == 410


def test_task_any_between_an_event_and_a_timer(host):
    instance_id = started(host, "Race")
    poll(lambda: management_status(host, instance_id).json().get("runtimeStatus") == "Running", 10)
    webhook(host, "POST", f"instances/{instance_id}/raiseEvent/Go", json=7)
    assert finished(host, instance_id)["output"] == {"winner": "event", "value": 7}


def test_terminate(host):
    instance_id = started(host, "WaitEvent")
    poll(lambda: management_status(host, instance_id).json().get("runtimeStatus") == "Running", 10)
    assert (
        webhook(
            host, "POST", f"instances/{instance_id}/terminate", params={"reason": "enough"}
        ).status_code
        == 202
    )
    status = finished(host, instance_id)
    assert status["runtimeStatus"] == "Terminated"
    assert status["output"] == "enough"
    again = webhook(host, "POST", f"instances/{instance_id}/terminate")
    assert again.status_code == 410


def test_sub_orchestrations_complete_and_fail(host):
    status = finished(host, started(host, "Parent"))
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {
        "child": ["Hello Tokyo!", "Hi Seattle!", "Hello London!"],
        "failedChildSeen": True,
    }


def test_an_orchestrator_that_raises_fails_the_instance(host):
    status = finished(host, started(host, "Raises"))
    assert status["runtimeStatus"] == "Failed"
    assert "the orchestrator gave up" in status["output"]
    assert "$OutOfProcData$" not in status["output"]


def test_continue_as_new_restarts_with_the_new_input(host):
    status = finished(host, started(host, "Counter", 0))
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == 3


def test_an_unknown_orchestrator_is_a_400_from_start_new(host):
    response = start(host, "Missing")
    assert response.status_code == 400
    assert "doesn't exist" in response.json()["error"]
    direct = webhook(host, "POST", "orchestrators/Missing")
    assert direct.status_code == 400
    assert "doesn't exist" in direct.json()["ExceptionMessage"]


def test_management_api_status_codes(host):
    assert webhook(host, "GET", "instances/nope").status_code == 404
    assert webhook(host, "POST", "instances/nope/terminate").status_code == 404
    assert webhook(host, "POST", "instances/nope/raiseEvent/x").status_code == 404
    assert webhook(host, "DELETE", "instances/nope").status_code == 404
    instance_id = started(host, "Chain", instance_id="my-chain")
    assert instance_id == "my-chain"
    finished(host, instance_id)
    with_input = management_status(host, instance_id, showInput="true").json()
    assert with_input["input"] is None  # the starter sent no body
    query = {"runtimeStatus": "Completed", "instanceIdPrefix": "my-"}
    listed = webhook(host, "GET", "instances", params=query).json()
    assert [s["instanceId"] for s in listed] == ["my-chain"]
    purged = webhook(host, "DELETE", f"instances/{instance_id}")
    assert purged.status_code == 200 and purged.json() == {"instancesDeleted": 1}
    assert webhook(host, "GET", f"instances/{instance_id}").status_code == 404


def test_suspend_and_resume(host):
    instance_id = started(host, "WaitEvent")
    poll(lambda: management_status(host, instance_id).json().get("runtimeStatus") == "Running", 10)
    assert webhook(host, "POST", f"instances/{instance_id}/suspend").status_code == 202
    webhook(host, "POST", f"instances/{instance_id}/raiseEvent/Approval", json="late")
    poll(lambda: management_status(host, instance_id).json()["runtimeStatus"] == "Suspended", 10)
    assert management_status(host, instance_id).json()["runtimeStatus"] == "Suspended"
    assert webhook(host, "POST", f"instances/{instance_id}/resume").status_code == 202
    assert finished(host, instance_id)["output"] == "late"


def test_a_function_that_raises_is_a_500_without_the_traceback(host):
    response = host.get("/api/boom", key=None)  # anonymous route, default route = folder name
    assert response.status_code == 500
    assert response.json() == {"error": "Internal server error."}
    assert "secret-detail" not in response.text
    poll(lambda: "secret-detail-that-must-not-leak" in host.logs(), 10, what="the traceback log")
    assert "Traceback" in host.logs()


def test_custom_classes_reach_activities_as_objects(host):
    status = finished(host, started(host, "Custom"))
    assert status["runtimeStatus"] == "Completed", status["output"]
    assert status["output"] == {"type": "Money", "cents": 1440, "currency": "EUR"}


def test_call_http_follows_202_and_location_to_the_answer(host):
    job = {"method": "POST", "url": f"{host.base}/api/poll/2", "content": {"n": 1}}
    status = finished(host, started(host, "Fetch", job))
    response = status["output"]
    assert response["statusCode"] == 200, response
    assert json.loads(response["content"]) == {"done": True, "method": "GET", "body": None}
    assert response["headers"]["X-Step"] == "last" and "Content-Type" not in response["headers"]
    history = management_status(host, status["instanceId"], showHistory="true").json()
    calls = [e for e in history["historyEvents"] if e["EventType"] == "TaskCompleted"]
    assert [e["FunctionName"] for e in calls] == ["BuiltIn::HttpActivity"]  # one task


def test_call_http_sends_the_method_and_content_when_there_is_no_202(host):
    job = {"method": "POST", "url": f"{host.base}/api/poll/0", "content": {"n": 1}}
    response = finished(host, started(host, "Fetch", job))["output"]
    assert json.loads(response["content"]) == {"done": True, "method": "POST", "body": '{"n": 1}'}


def test_call_http_refuses_targets_beyond_loopback(host):
    job = {"method": "GET", "url": "http://192.0.2.1/nothing"}
    output = finished(host, started(host, "Fetch", job))["output"]
    assert "only calls loopback addresses" in output["error"]
