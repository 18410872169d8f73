"""The episode function alone: instance + delivered events + the orchestrator's answer in,
changes out. No store, no SDK, no HTTP: each case is a row of inputs and what must come out."""

from __future__ import annotations

import json

import pytest

from devhost.durable import events as ev
from devhost.durable.actions import (
    CALL_ACTIVITY,
    CALL_ACTIVITY_WITH_RETRY,
    CALL_ENTITY,
    CALL_HTTP,
    CALL_SUB_ORCHESTRATOR,
    CONTINUE_AS_NEW,
    CREATE_TIMER,
    HTTP_ACTIVITY,
    SIGNAL_ENTITY,
    WAIT_FOR_EXTERNAL_EVENT,
    WHEN_ALL,
    Outcome,
)
from devhost.durable.entities import batch_payload, decide_entity, operation_request, request_id
from devhost.durable.model import Instance, Message, RuntimeStatus, Task
from devhost.durable.turn import batch, decide, nondeterminism, retry_delay, rewound

NOW = 1_700_000_000.0
RETRY = {"firstRetryIntervalInMilliseconds": 2000, "maxNumberOfAttempts": 3}


def instance(**overrides) -> Instance:
    fields = {"id": "i", "name": "Orch", "status": RuntimeStatus.RUNNING, "next_seq": 0}
    return Instance(**{**fields, **overrides})


def activity(name: str, value=None, retry: dict | None = None) -> dict:
    action = {"actionType": CALL_ACTIVITY, "functionName": name, "input": json.dumps(value)}
    if retry:
        action.update(actionType=CALL_ACTIVITY_WITH_RETRY, retryOptions=retry)
    return action


def messages(*events: dict) -> list[Message]:
    return [Message("i", event, NOW, index + 1) for index, event in enumerate(events)]


def run(outcome, delivered=(), tasks=None, **instance_fields):
    return decide(
        instance(**instance_fields),
        ev.orchestrator_started(NOW),
        messages(*delivered),
        outcome,
        tasks or {},
        NOW,
    )


def kinds(episode) -> list[int]:
    return [event["EventType"] for event in episode.events]


# ---- batch: which messages one episode takes
FAIL_RETRYABLE = ev.task_failed(NOW, 0, "boom", "")
FAIL_PLAIN = ev.task_failed(NOW, 1, "boom", "")
DONE = ev.task_completed(NOW, 1, "1")
RAISED = ev.event_raised(NOW, "Go", "1")
TERMINATE = ev.execution_terminated(NOW, "stop")
SUSPEND = ev.execution_suspended(NOW, None)
RESUME = ev.execution_resumed(NOW, None)
TASKS = {0: Task(0, "activity", "A", None, RETRY), 1: Task(1, "activity", "B")}


@pytest.mark.parametrize(
    ("inbox", "suspended", "taken"),
    [
        ([DONE, RAISED], False, [DONE, RAISED]),
        ([DONE, FAIL_RETRYABLE, RAISED], False, [DONE, FAIL_RETRYABLE]),  # one retry, last
        ([FAIL_PLAIN, DONE], False, [FAIL_PLAIN, DONE]),  # no retry policy: not a retry event
        ([DONE, TERMINATE, RAISED], False, [DONE]),  # control events wait for their own turn
        ([SUSPEND, RESUME, DONE], False, [SUSPEND, RESUME]),  # ... and go as a run
        ([DONE, RAISED, RESUME], True, [RESUME]),  # a suspended instance takes only control
        ([DONE], True, []),
    ],
)
def test_batch(inbox, suspended, taken):
    chosen = batch(messages(*inbox), TASKS, suspended)
    assert [m.event for m in chosen] == taken


# ---- retry timing
@pytest.mark.parametrize(
    ("retry", "attempt", "seconds"),
    [
        ({"firstRetryIntervalInMilliseconds": 1000}, 1, 1.0),
        ({"firstRetryIntervalInMilliseconds": 1000, "backoffCoefficient": 2}, 3, 4.0),
        (
            {
                "firstRetryIntervalInMilliseconds": 1000,
                "backoffCoefficient": 2,
                "maxRetryIntervalInMilliseconds": 3000,
            },
            4,
            3.0,
        ),
        ({}, 1, 1.0),
    ],
)
def test_retry_delay(retry, attempt, seconds):
    assert retry_delay(retry, attempt) == seconds


# ---- decide: the orchestrator's answer becomes history, tasks, work and messages
def test_new_activities_take_sequence_ids_in_order_and_become_work():
    outcome = Outcome(actions=[[activity("A", 1)], [activity("B", 2)]])
    episode = run(outcome, next_seq=5, actions_seen=0)
    assert [(w.task_id, w.name, w.input) for w in episode.work] == [(5, "A", "1"), (6, "B", "2")]
    assert kinds(episode) == [
        ev.ORCHESTRATOR_STARTED,
        ev.TASK_SCHEDULED,
        ev.TASK_SCHEDULED,
        ev.ORCHESTRATOR_COMPLETED,
    ]
    assert (episode.next_seq, episode.actions_seen, episode.status) == (7, 2, "Running")


def test_actions_already_applied_are_not_scheduled_again():
    outcome = Outcome(actions=[[activity("A")], [activity("B")]])
    episode = run(outcome, next_seq=1, actions_seen=1)
    assert [(w.task_id, w.name) for w in episode.work] == [(1, "B")]


def test_a_fan_out_is_numbered_depth_first():
    fan = {"actionType": WHEN_ALL, "compoundActions": [activity("A", n) for n in range(3)]}
    episode = run(Outcome(actions=[[fan]]))
    assert [(w.task_id, w.input) for w in episode.work] == [(0, "0"), (1, "1"), (2, "2")]


def test_a_timer_is_a_message_due_at_its_fire_time():
    fire = ev.timestamp(NOW + 60)
    episode = run(Outcome(actions=[[{"actionType": CREATE_TIMER, "fireAt": fire}]]))
    (message,) = episode.messages
    assert message.visible_at == pytest.approx(NOW + 60, abs=1e-3)
    assert message.event["EventType"] == ev.TIMER_FIRED and message.event["TimerId"] == 0
    assert ev.TIMER_CREATED in kinds(episode)


def test_waiting_for_an_event_takes_no_id():
    wait = {"actionType": WAIT_FOR_EXTERNAL_EVENT, "externalEventName": "Go"}
    episode = run(Outcome(actions=[[wait], [activity("A")]]))
    assert [w.task_id for w in episode.work] == [0]


def test_a_sub_orchestration_is_a_child_instance():
    call = {"actionType": CALL_SUB_ORCHESTRATOR, "functionName": "Child", "input": '"x"'}
    episode = run(Outcome(actions=[[call]]))
    (child,) = episode.children
    assert (child.instance_id, child.name, child.parent_task) == ("i:0", "Child", 0)
    assert child.start_event["ParentInstance"]["OrchestrationInstance"]["InstanceId"] == "i"


@pytest.mark.parametrize(
    ("outcome", "status", "output"),
    [
        (Outcome(done=True, output={"n": 1}), "Completed", '{"n": 1}'),
        (Outcome(error="ValueError: no"), "Failed", "\"Orchestrator function 'Orch' failed"),
        (Outcome(actions=[[{"actionType": 99}]]), "Failed", '"Orchestrator function'),
    ],
)
def test_an_instance_finishes_with_its_output(outcome, status, output):
    episode = run(outcome)
    assert episode.status == status
    assert episode.output.startswith(output)
    assert kinds(episode)[-2:] == [ev.EXECUTION_COMPLETED, ev.ORCHESTRATOR_COMPLETED]
    assert episode.events[-2]["OrchestrationStatus"] == status
    assert episode.work == [] and episode.messages == []


@pytest.mark.parametrize(
    ("outcome", "notice"),
    [
        (Outcome(done=True, output=3), ev.SUB_ORCHESTRATION_COMPLETED),
        (Outcome(error="no"), ev.SUB_ORCHESTRATION_FAILED),
        (None, ev.SUB_ORCHESTRATION_FAILED),  # terminated
    ],
)
def test_a_child_that_finishes_tells_its_parent(outcome, notice):
    delivered = [] if outcome else [TERMINATE]
    episode = run(outcome, delivered, parent_id="p", parent_task=4)
    (message,) = episode.messages
    assert message.instance_id == "p"
    assert (message.event["EventType"], message.event["TaskScheduledId"]) == (notice, 4)


def test_continue_as_new_resets_history_and_starts_again_with_the_new_input():
    outcome = Outcome(done=True, actions=[[{"actionType": CONTINUE_AS_NEW, "input": "7"}]])
    episode = run(outcome, [DONE], next_seq=3)
    assert episode.status == "ContinuedAsNew" and episode.reset_history
    assert (episode.input, episode.next_seq, episode.actions_seen, episode.events) == (
        "7",
        0,
        0,
        [],
    )
    (start,) = episode.messages
    assert start.event["EventType"] == ev.EXECUTION_STARTED and start.event["Input"] == "7"
    assert episode.consumed == [1]


def test_a_failed_retryable_task_gets_a_retry_timer():
    episode = run(Outcome(), [FAIL_RETRYABLE], TASKS, next_seq=2)
    (timer,) = episode.messages
    assert timer.visible_at == NOW + 2.0 and timer.event["TimerId"] == 2
    (task,) = episode.tasks
    assert (task.task_id, task.kind, task.name, task.attempt) == (2, "retry:activity", "A", 1)


@pytest.mark.parametrize(("attempt", "next_attempts"), [(1, [2]), (2, [3]), (3, [])])
def test_a_fired_retry_timer_schedules_the_next_attempt_until_the_last(attempt, next_attempts):
    timer = Task(2, "retry:activity", "A", '"x"', RETRY, attempt)
    fired = ev.timer_fired(NOW, 2, ev.timestamp(NOW))
    episode = run(Outcome(), [fired], {2: timer}, next_seq=3)
    assert [t.attempt for t in episode.tasks] == next_attempts
    assert [(w.task_id, w.name, w.input) for w in episode.work] == (
        [(3, "A", '"x"')] if next_attempts else []
    )


HTTP_REQUEST = {"method": "GET", "uri": "http://127.0.0.1:7071/api/x", "headers": {}}


def test_call_http_is_the_built_in_activity_with_the_request_as_its_input():
    call = {"actionType": CALL_HTTP, "httpRequest": HTTP_REQUEST}
    episode = run(Outcome(actions=[[call], [activity("A")]]), next_seq=2)
    assert [(w.task_id, w.name) for w in episode.work] == [(2, HTTP_ACTIVITY), (3, "A")]
    assert json.loads(episode.work[0].input) == [HTTP_REQUEST]  # the extension's one argument
    scheduled = [e for e in episode.events if e["EventType"] == ev.TASK_SCHEDULED]
    assert [(e["EventId"], e["Name"]) for e in scheduled] == [(2, HTTP_ACTIVITY), (3, "A")]
    assert [(t.task_id, t.kind, t.retry) for t in episode.tasks] == [
        (2, "activity", None),
        (3, "activity", None),
    ]
    assert json.loads(episode.scheduled) == [["activity", "A", 3]]  # call_http: not checked


@pytest.mark.parametrize(
    ("kind", "signal"),
    [(CALL_ENTITY, False), (SIGNAL_ENTITY, True)],
)
def test_an_entity_call_or_signal_is_an_event_sent_and_a_request_in_the_entitys_inbox(kind, signal):
    action = {"actionType": kind, "instanceId": "@tally@k", "operation": "add", "input": "2"}
    episode = run(Outcome(actions=[[action], [activity("A")]]), next_seq=4)
    rid = request_id("i", 4, NOW)  # the sequence id it took, stable once recorded
    expected = {"op": "add", "id": rid, "parent": "i", "input": '"2"'}
    if signal:
        expected["signal"] = True
    sent = [e for e in episode.events if e["EventType"] == ev.EVENT_SENT]
    assert [(e["EventId"], e["InstanceId"], e["Name"]) for e in sent] == [(4, "@tally@k", "op")]
    assert json.loads(sent[0]["Input"]) == expected
    (message,) = episode.messages
    assert (message.instance_id, message.visible_at) == ("@tally@k", NOW)
    assert message.event["EventType"] == ev.EVENT_RAISED and message.event["Name"] == "op"
    assert message.event["Input"] == sent[0]["Input"]  # what the entity reads is what was sent
    assert operation_request(message.event) == expected
    assert [(w.task_id, w.name) for w in episode.work] == [(5, "A")]  # the entity took id 4
    assert episode.tasks[0].task_id == 5 and episode.next_seq == 6
    assert json.loads(episode.scheduled) == [["activity", "A", 5]]


def test_a_request_id_is_stable_for_its_instance_sequence_and_time_only():
    assert request_id("i", 4, NOW) == request_id("i", 4, NOW)
    others = {request_id("j", 4, NOW), request_id("i", 5, NOW), request_id("i", 4, NOW + 1)}
    assert request_id("i", 4, NOW) not in others and len(others) == 3


def test_an_entity_reply_is_recorded_and_consumed_like_any_event():
    reply = ev.event_raised(NOW, request_id("i", 0, NOW), json.dumps({"result": "3"}))
    episode = run(Outcome(done=True, output=3), [reply], next_seq=1, actions_seen=1)
    assert episode.status == "Completed" and episode.consumed == [1]
    assert reply in episode.events


# ---- control: terminate, suspend, resume go through the same function
@pytest.mark.parametrize(
    ("status", "delivered", "after", "recorded"),
    [
        ("Running", [TERMINATE], "Terminated", [ev.EXECUTION_TERMINATED, ev.EXECUTION_COMPLETED]),
        ("Suspended", [TERMINATE], "Terminated", [ev.EXECUTION_TERMINATED, ev.EXECUTION_COMPLETED]),
        ("Running", [SUSPEND], "Suspended", [ev.EXECUTION_SUSPENDED]),
        ("Suspended", [RESUME], "Running", [ev.EXECUTION_RESUMED]),
        ("Running", [RESUME], "Running", []),  # not suspended: nothing to resume
        ("Suspended", [SUSPEND], "Suspended", []),
        ("Pending", [SUSPEND, RESUME], "Running", [ev.EXECUTION_SUSPENDED, ev.EXECUTION_RESUMED]),
    ],
)
def test_control_events(status, delivered, after, recorded):
    episode = run(None, delivered, status=RuntimeStatus(status))
    assert episode.status == after
    assert kinds(episode)[1:-1] == recorded
    assert episode.consumed == list(range(1, len(delivered) + 1))


def test_terminate_records_the_reason_as_output():
    episode = run(None, [TERMINATE])
    assert json.loads(episode.output) == "stop"


# ---- non-determinism: the replay must schedule what the history says it scheduled
@pytest.mark.parametrize(
    ("replayed", "expected"),
    [
        ([activity("A")], None),
        ([activity("a")], None),  # names compare case-insensitively, as in DTFx
        ([activity("A", retry=RETRY)], None),  # with or without retry: an activity task
        (
            [],
            "scheduled an activity task with sequence ID 4 and name 'A' (version ''), but the "
            "current replay execution hasn't (yet?) scheduled this task.",
        ),
        (
            [{"actionType": CREATE_TIMER, "fireAt": ev.timestamp(NOW)}],
            "instead produced a CreateTimerOrchestratorAction action with this sequence number",
        ),
        ([activity("B")], "instead scheduled an activity task named 'B' with this sequence"),
    ],
)
def test_nondeterminism(replayed, expected):
    found = nondeterminism([["activity", "A", 4]], replayed)
    if expected is None:
        assert found is None
    else:
        assert found.startswith("Non-Deterministic workflow detected: ") and expected in found


def test_a_replay_that_changed_fails_the_instance_naming_both_tasks():
    first = run(Outcome(actions=[[activity("A")]]))
    changed = run(
        Outcome(actions=[[activity("B")]]),
        [ev.task_completed(NOW, 0, "1")],
        scheduled=first.scheduled,
        actions_seen=first.actions_seen,
        next_seq=first.next_seq,
    )
    assert changed.status == "Failed"
    assert "named 'A'" in changed.output and "named 'B'" in changed.output
    same = run(
        Outcome(actions=[[activity("A")], [activity("C")]]),
        [ev.task_completed(NOW, 0, "1")],
        scheduled=first.scheduled,
        actions_seen=first.actions_seen,
        next_seq=first.next_seq,
    )
    assert same.status == "Running" and json.loads(same.scheduled) == [
        ["activity", "A", 0],
        ["activity", "C", 1],
    ]


def test_a_timer_replays_as_itself():
    timer = {"actionType": CREATE_TIMER, "fireAt": ev.timestamp(NOW + 5)}
    first = run(Outcome(actions=[[timer]]))
    assert json.loads(first.scheduled) == [["timer", "", 0]]
    fired = ev.timer_fired(NOW, 0, ev.timestamp(NOW + 5))
    again = run(
        Outcome(done=True, actions=[[timer]], output=1),
        [fired],
        scheduled=first.scheduled,
        actions_seen=1,
        next_seq=1,
    )
    assert again.status == "Completed"


# ---- entities: a batch's answer becomes the new state and a reply to each caller
def entity(**fields) -> Instance:
    return Instance(**{"id": "@counter@k", "name": "counter", "status": "Pending", **fields})


CALL = {"op": "get", "id": "r1", "parent": "orch"}
SIGNAL = {"op": "add", "id": "r2", "parent": None, "signal": True, "input": '"3"'}


def test_an_entity_batch_stores_the_state_and_answers_calls_only():
    answer = json.dumps(
        {
            "entityExists": True,
            "entityState": "3",
            "results": [{"isError": False, "result": "3"}, {"isError": True, "result": '"x"'}],
        }
    )
    episode = decide_entity(entity(), messages(RAISED, RAISED), [SIGNAL, CALL], answer, None, NOW)
    assert (episode.status, episode.output, episode.consumed) == ("Running", "3", [1, 2])
    (reply,) = episode.messages
    assert (reply.instance_id, reply.event["Name"]) == ("orch", "r1")
    assert json.loads(reply.event["Input"]) == {"result": '"x"', "exceptionType": "Error"}


def test_a_destructed_entity_no_longer_exists():
    answer = json.dumps({"entityExists": False, "entityState": "null", "results": [{}]})
    episode = decide_entity(entity(status="Running", output="3"), [], [SIGNAL], answer, None, NOW)
    assert (episode.status, episode.output) == ("Pending", None)


def test_an_entity_function_that_cannot_run_fails_each_call_and_keeps_the_state():
    episode = decide_entity(entity(status="Running", output="3"), [], [CALL], None, "gone", NOW)
    assert (episode.status, episode.output) == ("Running", "3")
    assert json.loads(episode.messages[0].event["Input"])["exceptionType"] == "Error"


def test_batch_payload_is_the_sdk_entity_protocol():
    payload = json.loads(batch_payload(entity(status="Running", output="3"), [SIGNAL, CALL]))
    assert payload == {
        "self": {"name": "counter", "key": "k"},
        "exists": True,
        "state": "3",
        "batch": [
            {"name": "add", "input": '"3"', "isSignal": True},
            {"name": "get", "input": None, "isSignal": False},
        ],
    }


def test_an_instance_from_an_older_store_is_not_checked_for_changes():
    legacy = run(
        Outcome(actions=[[activity("A")], [activity("B")]]),
        [ev.task_completed(NOW, 0, "1")],
        actions_seen=1,
        next_seq=1,
        scheduled=None,
    )
    assert legacy.status == "Running" and legacy.scheduled is None
    assert [w.name for w in legacy.work] == ["B"]


def test_continue_as_new_still_sends_its_entity_signals():
    signal = {"actionType": 9, "instanceId": "@tally@k", "operation": "add", "input": "1"}
    restart = {"actionType": CONTINUE_AS_NEW, "input": "2"}
    episode = run(Outcome(done=True, actions=[[signal, restart]]))
    assert [m.instance_id for m in episode.messages] == ["@tally@k", "i"]


@pytest.mark.parametrize(
    ("end", "end_name"),
    [
        (ev.execution_completed(NOW, "Failed", '"x"'), "ExecutionCompleted"),  # as DTFx ends
        (
            {**ev.execution_completed(NOW, "Failed", '"x"'), "EventType": ev.EXECUTION_FAILED},
            "ExecutionFailed",  # as an older store may hold it
        ),
    ],
)
def test_rewind_reruns_failed_and_unfinished_activities_only(end, end_name):
    history = [
        ev.execution_started(NOW, "i", "Orch", None, None),
        ev.task_scheduled(NOW, 0, "A", '"a"'),
        ev.task_scheduled(NOW, 1, "B", '"b"'),
        ev.task_scheduled(NOW, 2, "C", '"c"'),
        ev.task_completed(NOW, 0, '"ok"'),
        ev.task_failed(NOW, 1, "boom", ""),
        end,
    ]
    tasks = {n: Task(n, "activity", name, f'"{name.lower()}"') for n, name in ((1, "B"), (2, "C"))}
    events, work = rewound(history, tasks, "i", "fixed", NOW)
    assert [(w.task_id, w.name) for w in work] == [(1, "B"), (2, "C")]  # C: cut off by B's fail
    assert [e.get("Reason") for e in events if e["EventType"] == ev.GENERIC_EVENT] == [
        "Rewound: TaskScheduled",
        "Rewound: TaskScheduled",
        "Rewound: TaskFailed",
        f"Rewound: {end_name}",
    ]
    assert events[4]["EventType"] == ev.TASK_COMPLETED  # A's result replays


@pytest.mark.parametrize("answer", ["null", "[1]", "not json", '{"results": 3}'])
def test_an_entity_answer_not_in_the_sdk_shape_fails_the_calls_not_the_host(answer):
    episode = decide_entity(entity(status="Running", output="3"), [], [CALL], answer, None, NOW)
    assert (episode.status, episode.output) == ("Running", "3")
    assert json.loads(episode.messages[0].event["Input"])["exceptionType"] == "Error"


@pytest.mark.parametrize(
    ("event", "operation"),
    [
        (ev.event_raised(NOW, "op", json.dumps(CALL)), CALL),
        (ev.event_raised(NOW, "op", '"just text"'), None),
        (ev.event_raised(NOW, "Approval", json.dumps(CALL)), None),
        (ev.execution_terminated(NOW, "stop"), None),
    ],
)
def test_only_operations_reach_an_entity(event, operation):
    assert operation_request(event) == operation
