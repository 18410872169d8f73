"""The management API answers as the Durable extension's HttpApiHandler does, over real HTTP.

Each expectation is the extension's documented or coded answer (status code, headers, body
shape), so a client written against Azure sees the same thing here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import HostProcess, hosted, management_status, poll
from tests.test_engine_conformance import APP, finished, start, started, webhook


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> HostProcess:
    data = tmp_path_factory.mktemp("management")
    state = data / "state"
    state.mkdir()
    with hosted(APP, data / "host", {"CONFORMANCE_STATE_DIR": str(state)}) as process:
        yield process


def running(host: HostProcess, instance_id: str) -> None:
    poll(lambda: management_status(host, instance_id).json()["runtimeStatus"] == "Running", 10)


def test_status_shows_the_input_unless_asked_not_to(host):
    instance_id = started(host, "Chain", {"city": "Tokyo"})
    finished(host, instance_id)
    assert json.loads(management_status(host, instance_id).json()["input"]) == {"city": "Tokyo"}
    hidden = management_status(host, instance_id, showInput="false").json()
    assert hidden["input"] is None
    assert "historyEvents" not in hidden


def test_history_is_named_filtered_and_folded(host):
    instance_id = started(host, "Chain")
    finished(host, instance_id)
    events = management_status(host, instance_id, showHistory="true").json()["historyEvents"]
    names = [e["EventType"] for e in events]
    assert names[0] == "ExecutionStarted" and names[-1] == "ExecutionCompleted"
    assert "OrchestratorStarted" not in names and "TaskScheduled" not in names
    assert events[0]["FunctionName"] == "Chain"
    done = [e for e in events if e["EventType"] == "TaskCompleted"]
    assert done and all({"FunctionName", "ScheduledTime", "Timestamp"} <= set(e) for e in done)
    assert all("Result" not in e and "EventId" not in e and "IsPlayed" not in e for e in events)
    with_output = management_status(
        host, instance_id, showHistory="true", showHistoryOutput="true"
    ).json()["historyEvents"]
    results = [e["Result"] for e in with_output if e["EventType"] == "TaskCompleted"]
    assert results == ["Hello Tokyo!", "Hi Seattle!", "Hello London!"]
    assert [e["FunctionName"] for e in done] == ["Hello", "HelloAsync", "Hello"]
    assert with_output[-1]["Result"] == results


def test_a_failed_instance_is_200_or_500_on_request(host):
    instance_id = started(host, "Raises")
    assert finished(host, instance_id)["runtimeStatus"] == "Failed"
    assert management_status(host, instance_id).status_code == 200
    flagged = management_status(host, instance_id, returnInternalServerErrorOnFailure="true")
    assert flagged.status_code == 500 and flagged.json()["runtimeStatus"] == "Failed"


def test_a_running_instance_is_202_with_location_and_retry_after(host):
    instance_id = started(host, "WaitEvent")
    response = management_status(host, instance_id)
    assert response.status_code == 202
    assert response.headers["Retry-After"] == "5"
    assert f"/instances/{instance_id}" in response.headers["Location"]
    webhook(host, "POST", f"instances/{instance_id}/terminate")


def test_start_answers_with_every_management_url(host):
    response = webhook(host, "POST", "orchestrators/Chain")
    assert response.status_code == 202 and response.headers["Retry-After"] == "10"
    body = response.json()
    assert list(body) == [
        "id",
        "statusQueryGetUri",
        "sendEventPostUri",
        "terminatePostUri",
        "purgeHistoryDeleteUri",
        "restartPostUri",
        "suspendPostUri",
        "resumePostUri",
    ]
    assert response.headers["Location"] == body["statusQueryGetUri"]
    assert f"/instances/{body['id']}/raiseEvent/{{eventName}}?" in body["sendEventPostUri"]
    assert finished(host, body["id"])["runtimeStatus"] == "Completed"


def test_create_and_wait(host):
    done = webhook(
        host,
        "POST",
        "orchestrators/Chain",
        params={"timeout": 20, "pollingInterval": 0.05},
    )
    assert done.status_code == 200 and done.json() == [
        "Hello Tokyo!",
        "Hi Seattle!",
        "Hello London!",
    ]
    waiting = webhook(
        host, "POST", "orchestrators/WaitEvent", params={"timeout": 0.3, "pollingInterval": 0.1}
    )
    assert waiting.status_code == 202 and "statusQueryGetUri" in waiting.json()
    webhook(host, "POST", f"instances/{waiting.json()['id']}/terminate")
    failed = webhook(
        host, "POST", "orchestrators/Raises", params={"timeout": 20, "pollingInterval": 0.05}
    )
    assert failed.status_code == 200 and failed.json()["runtimeStatus"] == "Failed"
    wrong = webhook(
        host, "POST", "orchestrators/Chain", params={"timeout": 1, "pollingInterval": 2}
    )
    assert wrong.status_code == 400 and "bigger than" in wrong.json()["ExceptionMessage"]


def test_starting_a_running_id_again_is_a_409(host):
    """Extension 3.x: OrchestrationAlreadyExistsException is a 409 with DTFx's message alone;
    a restart onto a running id, a 409 with the extension's sentence and that message."""
    instance_id = started(host, "WaitEvent", instance_id="twice")
    running(host, instance_id)
    again = webhook(host, "POST", f"orchestrators/WaitEvent/{instance_id}")
    assert again.status_code == 409
    assert again.json() == {
        "Message": "An Orchestration instance with the status Running already exists."
    }
    through_sdk = start(host, "WaitEvent", instance_id=instance_id)  # the SDK's start_new raises
    assert through_sdk.status_code == 400 and "already exists" in through_sdk.json()["error"]
    restarted = webhook(
        host,
        "POST",
        f"instances/{instance_id}/restart",
        params={"restartWithNewInstanceId": "false"},
    )
    assert restarted.status_code == 409
    assert restarted.json() == {
        "Message": "A non-terminal instance with this instance ID already exists.",
        "ExceptionMessage": "An Orchestration instance with the status Running already exists.",
    }
    webhook(host, "POST", f"instances/{instance_id}/terminate")
    assert finished(host, instance_id)["runtimeStatus"] == "Terminated"
    assert webhook(host, "POST", f"orchestrators/WaitEvent/{instance_id}").status_code == 202
    webhook(host, "POST", f"instances/{instance_id}/terminate")


def test_instance_lists_page_with_continuation_tokens(host):
    ids = {started(host, "Chain", instance_id=f"page-{n}") for n in range(5)}
    seen, token, pages = [], "", 0
    while pages < 10:
        response = webhook(
            host,
            "GET",
            "instances",
            params={"instanceIdPrefix": "page-", "top": 2},
            headers={"x-ms-continuation-token": token},
        )
        assert response.status_code == 200
        seen += [s["instanceId"] for s in response.json()]
        token, pages = response.headers["x-ms-continuation-token"], pages + 1
        if not token:
            break
    assert sorted(seen) == sorted(ids) and pages == 3
    bad = webhook(host, "GET", "instances", headers={"x-ms-continuation-token": "%%%"})
    assert bad.status_code == 400


def test_raise_event_needs_a_json_body_and_loses_nothing_when_refused(host):
    instance_id = started(host, "WaitEvent")
    running(host, instance_id)
    path = f"instances/{instance_id}/raiseEvent/Approval"
    not_json = webhook(host, "POST", path, data="yes", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["Message"] == "Invalid JSON content"
    plain = webhook(host, "POST", path, data='"yes"', headers={"Content-Type": "text/plain"})
    assert plain.status_code == 400
    assert plain.json()["Message"] == "Only application/json request content is supported"
    assert management_status(host, instance_id).json()["runtimeStatus"] == "Running"
    assert webhook(host, "POST", path, json="yes").status_code == 202
    assert finished(host, instance_id)["output"] == "yes"


def test_suspend_and_resume_refuse_the_wrong_state(host):
    instance_id = started(host, "WaitEvent")
    running(host, instance_id)
    refused = webhook(host, "POST", f"instances/{instance_id}/resume")
    assert refused.status_code == 500
    assert refused.json()["ExceptionMessage"] == (
        f"Cannot resume the orchestration instance {instance_id} because instance is in the "
        "Running state."
    )
    assert webhook(host, "POST", f"instances/{instance_id}/suspend").status_code == 202
    poll(lambda: management_status(host, instance_id).json()["runtimeStatus"] == "Suspended", 10)
    assert webhook(host, "POST", f"instances/{instance_id}/suspend").status_code == 500
    webhook(host, "POST", f"instances/{instance_id}/terminate")
    assert finished(host, instance_id)["runtimeStatus"] == "Terminated"
    assert webhook(host, "POST", f"instances/{instance_id}/suspend").status_code == 410


def test_rewind_runs_the_failed_activity_again(host):
    instance_id = started(host, "Once", {"key": "rewind", "failures": 1})
    assert finished(host, instance_id)["runtimeStatus"] == "Failed"
    assert (
        webhook(
            host, "POST", f"instances/{instance_id}/rewind", params={"reason": "fixed"}
        ).status_code
        == 202
    )
    status = finished(host, instance_id)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"greeting": "Hello Rewind!", "attempts": 2}  # Hello ran once
    events = management_status(host, instance_id, showHistory="true").json()["historyEvents"]
    generic = [e for e in events if e["EventType"] == "GenericEvent"]
    assert [e.get("Reason") for e in generic] == [
        "Rewound: TaskScheduled",
        "Rewound: TaskFailed",
        "Rewound: ExecutionCompleted",
        None,  # the message that woke the instance, carrying the reason
    ]
    assert generic[-1]["Data"] == "fixed"


def test_rewind_of_an_instance_that_has_not_failed_is_a_412(host):
    """Extension 3.7+: 412 (not 410 or 500) with its sentence as a JSON string, 404 likewise
    (its stray '$' included); the SDK's rewind raises with that sentence."""
    done = started(host, "Chain")
    assert finished(host, done)["runtimeStatus"] == "Completed"
    refused = webhook(host, "POST", f"instances/{done}/rewind")
    assert refused.status_code == 412
    assert refused.json() == (
        'This orchestration has status Completed, but only orchestrations in the "Failed" '
        "state can be rewound."
    )
    live = started(host, "WaitEvent")
    running(host, live)
    assert (
        webhook(host, "POST", f"instances/{live}/rewind")
        .json()
        .startswith("This orchestration has status Running,")
    )
    webhook(host, "POST", f"instances/{live}/terminate")
    unknown = webhook(host, "POST", "instances/nope/rewind")
    assert unknown.status_code == 404
    assert unknown.json() == 'No orchestration with instance ID "$nope" found.'


def test_rewind_is_refused_for_an_activity_with_a_retry_policy(host):
    """Its attempts and retry timers are in the history, which this host's rewind does not
    rewrite: refused with the extension's answer for a provider that cannot rewind (501), and
    the instance stays as it was."""
    instance_id = started(host, "GiveUp", {"key": "give-up", "failures": 9})
    failed = finished(host, instance_id)
    assert failed["runtimeStatus"] == "Failed" and "attempt 2 failed" in failed["output"]
    refused = webhook(host, "POST", f"instances/{instance_id}/rewind")
    assert refused.status_code == 501
    body = refused.json()
    assert body["Message"] == "Rewind is not supported by the underlying storage provider."
    assert "retry policy" in body["ExceptionMessage"]
    after = management_status(host, instance_id)
    assert after.status_code == 200
    assert after.json()["runtimeStatus"] == "Failed"
    assert after.json()["lastUpdatedTime"] == failed["lastUpdatedTime"]


def test_purge_of_an_instance_that_has_not_finished_is_a_412(host):
    """Extension 3.9.1+ (PR #3311): only a finished orchestration is purged; an entity id is
    not checked, and one that does not exist purges nothing (200, not 404)."""
    instance_id = started(host, "WaitEvent")
    running(host, instance_id)
    refused = webhook(host, "DELETE", f"instances/{instance_id}")
    assert refused.status_code == 412
    assert refused.json() == (
        "Only orchestrations in a terminal state can be purged, but the orchestration with "
        f"instance ID {instance_id} has status Running"
    )
    assert management_status(host, instance_id).json()["runtimeStatus"] == "Running"
    webhook(host, "POST", f"instances/{instance_id}/terminate")
    assert finished(host, instance_id)["runtimeStatus"] == "Terminated"
    purged = webhook(host, "DELETE", f"instances/{instance_id}")
    assert purged.status_code == 200 and purged.json() == {"instancesDeleted": 1}
    assert webhook(host, "DELETE", f"instances/{instance_id}").status_code == 404
    no_entity = webhook(host, "DELETE", "instances/@tally@nobody")
    assert no_entity.status_code == 200 and no_entity.json() == {"instancesDeleted": 0}


def test_purge_by_filter_needs_a_start_time(host):
    response = webhook(host, "DELETE", "instances")
    assert response.status_code == 400
    assert response.json() == "Please provide value for 'createdTimeFrom' parameter."


@pytest.mark.parametrize("instance_id", ["@counter@x", "a%23b", "x" * 257])
def test_an_invalid_instance_id_is_400(host, instance_id):
    response = webhook(host, "POST", f"orchestrators/Chain/{instance_id}")
    assert response.status_code == 400 and "is invalid" in response.json()["ExceptionMessage"]


def test_restart_of_an_unknown_instance_is_400(host):
    assert webhook(host, "POST", "instances/nope/restart").status_code == 400


def test_a_replay_that_no_longer_matches_its_history_fails_the_instance(host):
    instance_id = started(host, "Shifty")

    def activity_done() -> bool:
        status = management_status(host, instance_id, showHistory="true").json()
        return any(e["EventType"] == "TaskCompleted" for e in status.get("historyEvents", []))

    poll(activity_done, 10)
    state = Path(host.env["CONFORMANCE_STATE_DIR"])
    (state / "shifted").write_text("")
    try:
        webhook(host, "POST", f"instances/{instance_id}/raiseEvent/Go", json=1)
        status = finished(host, instance_id)
    finally:
        (state / "shifted").unlink()
    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith("Non-Deterministic workflow detected: ")
    assert "named 'Hello'" in status["output"] and "named 'HelloAsync'" in status["output"]
