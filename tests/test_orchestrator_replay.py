"""The orchestrator through the real SDK's replay protocol: history JSON in, actions out."""

from __future__ import annotations

import importlib
import json
from datetime import date

import azure.functions as func
import pytest

from devhost.durable import events as ev
from devhost.durable.actions import leaves
from shared.orchestration import ACTIVITY, job_input
from shared.settings import Settings

orchestrator = importlib.import_module("orchestrator-function").main
T = 1_700_000_000.0


class Replay:
    """Plays the extension's side by hand: one episode per call, history kept as JSON dicts."""

    def __init__(self, job: dict) -> None:
        self.input = json.dumps(job)
        self.history = [
            ev.orchestrator_started(T),
            ev.execution_started(T, "abc", "orchestrator-function", self.input, None),
        ]
        self.scheduled = 0
        self.clock = T

    def episode(self, *new_events: dict) -> dict:
        self.clock += 1
        past = [{**e, "IsPlayed": True} for e in self.history]
        fresh = [ev.orchestrator_started(self.clock), *new_events] if new_events else []
        self.history = past + fresh
        payload = {
            "history": self.history,
            "input": self.input,
            "instanceId": "abc",
            "isReplaying": False,
            "parentInstanceId": None,
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
        }
        state = json.loads(orchestrator(func.OrchestrationContext(json.dumps(payload))))
        new = leaves(state["actions"])[self.scheduled :]
        for action in new:
            self.history.append(
                ev.task_scheduled(
                    self.clock, self.scheduled, action["functionName"], action["input"]
                )
            )
            self.scheduled += 1
        self.history.append(ev.orchestrator_completed(self.clock))
        state["new"] = new
        return state

    def complete(self, task_id: int, ids: list[str]) -> dict:
        return self.episode(ev.task_completed(self.clock, task_id, json.dumps(ids)))


def job(days: int, window: int, attempts: int = 3) -> dict:
    settings = Settings(max_in_flight=window, retry_attempts=attempts)
    start = date(2021, 10, 1)
    return job_input(start, date.fromordinal(start.toordinal() + days - 1), settings)


def test_first_episode_fans_out_at_most_the_window_with_retry_and_backoff():
    state = Replay(job(days=5, window=2)).episode()
    assert state["isDone"] is False
    assert state["customStatus"] == {"done": 0, "total": 5}
    new = state["new"]
    assert [a["actionType"] for a in new] == [1, 1]  # CallActivityWithRetry
    assert {a["functionName"] for a in new} == {ACTIVITY}
    assert [json.loads(a["input"])["from"] for a in new] == ["2021-10-01", "2021-10-02"]
    retry = new[0]["retryOptions"]
    assert retry["maxNumberOfAttempts"] == 3
    assert retry["backoffCoefficient"] > 1
    assert retry["maxRetryIntervalInMilliseconds"] >= retry["firstRetryIntervalInMilliseconds"]


def test_each_completion_reports_progress_and_schedules_the_next_range():
    replay = Replay(job(days=4, window=2))
    replay.episode()
    state = replay.complete(1, ["B", "C"])  # completions may arrive out of order
    assert state["customStatus"] == {"done": 1, "total": 4}
    assert [json.loads(a["input"])["from"] for a in state["new"]] == ["2021-10-03"]
    state = replay.complete(0, ["A", "B"])
    assert state["customStatus"] == {"done": 2, "total": 4}
    assert [json.loads(a["input"])["from"] for a in state["new"]] == ["2021-10-04"]
    last = json.loads(state["new"][0]["input"])
    assert last == {"from": "2021-10-04", "to": "2021-10-04", "toInclusive": True}
    replay.complete(2, ["C", "D"])
    state = replay.complete(3, ["E"])
    assert state["isDone"] is True
    assert state["output"] == 5  # A B C D E: repeats across ranges counted once
    assert state["customStatus"] == {"done": 4, "total": 4}


def test_a_range_that_fails_after_its_retries_fails_the_job():
    replay = Replay(job(days=2, window=2, attempts=2))
    replay.episode()
    reason = "Activity function 'query-storage-account-activity-function' failed: boom"
    # attempt 1 fails -> retry timer (id 2) fires -> attempt 2 (id 3) fails -> last timer (id 4)
    replay.episode(ev.task_failed(T, 0, reason, "ConfigurationError"))
    replay.history.append(ev.timer_created(T, 2, ev.timestamp(T)))
    replay.episode(ev.timer_fired(T, 2, ev.timestamp(T)))
    replay.history.append(ev.task_scheduled(T, 3, ACTIVITY, "{}"))
    replay.episode(ev.task_failed(T, 3, reason, "ConfigurationError"))
    replay.history.append(ev.timer_created(T, 4, ev.timestamp(T)))
    with pytest.raises(Exception, match=r"\$OutOfProcData\$") as error:
        replay.episode(ev.timer_fired(T, 4, ev.timestamp(T)))
    message, _, state_json = str(error.value).partition("\n\n$OutOfProcData$:")
    assert "boom" in message
    assert json.loads(state_json)["isDone"] is False


def test_replaying_is_deterministic():
    first, second = Replay(job(days=3, window=3)), Replay(job(days=3, window=3))
    assert first.episode()["actions"] == second.episode()["actions"]
    assert first.complete(0, ["X"])["actions"] == second.complete(0, ["X"])["actions"]
