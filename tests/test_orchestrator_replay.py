"""The orchestrator through the real SDK's replay protocol: history JSON in, actions out."""

from __future__ import annotations

import importlib
import json
from datetime import date

import azure.functions as func
import pytest

from devhost.durable import events as ev
from devhost.durable.actions import leaves
from shared.orchestration import ACTIVITY, CLEANUP_ACTIVITY, COUNT_ACTIVITY, job_input
from shared.range_results import blob_name
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

    def complete(self, task_id: int, result: object) -> dict:
        return self.episode(ev.task_completed(self.clock, task_id, json.dumps(result)))

    def range_done(self, task_id: int, index: int, ids: int = 1) -> dict:
        """What a range's activity returns: its blob's name and a count, never the ids."""
        return self.complete(task_id, {"blob": blob_name("abc", index), "ids": ids})


def job(days: int, window: int, attempts: int = 3, per_job: int = 1000) -> dict:
    settings = Settings(
        max_in_flight=window, retry_attempts=attempts, max_activities_per_job=per_job
    )
    start = date(2021, 10, 1)
    return job_input(start, date.fromordinal(start.toordinal() + days - 1), settings)


def test_first_episode_fans_out_at_most_the_window_with_retry_and_backoff():
    state = Replay(job(days=5, window=2)).episode()
    assert state["isDone"] is False
    assert state["customStatus"] == {"done": 0, "total": 5}
    new = state["new"]
    assert [a["actionType"] for a in new] == [1, 1]  # CallActivityWithRetry
    assert {a["functionName"] for a in new} == {ACTIVITY}
    inputs = [json.loads(a["input"]) for a in new]
    assert inputs[0] == {
        "from": "2021-10-01",
        "to": "2021-10-02",
        "toInclusive": False,
        "job": "abc",  # the blob of range 0 of this job: the same name on every retry
        "index": 0,
    }
    assert inputs[1]["index"] == 1
    retry = new[0]["retryOptions"]
    assert retry["maxNumberOfAttempts"] == 3
    assert retry["backoffCoefficient"] > 1
    assert retry["maxRetryIntervalInMilliseconds"] >= retry["firstRetryIntervalInMilliseconds"]


def test_ranges_then_a_count_then_a_clean_up_then_the_answer():
    replay = Replay(job(days=4, window=2))
    replay.episode()
    state = replay.range_done(1, index=1)  # completions may arrive out of order
    assert state["customStatus"] == {"done": 1, "total": 4}
    assert [json.loads(a["input"])["from"] for a in state["new"]] == ["2021-10-03"]
    state = replay.range_done(0, index=0)
    assert state["customStatus"] == {"done": 2, "total": 4}
    last = json.loads(state["new"][0]["input"])
    assert (last["from"], last["to"], last["toInclusive"]) == ("2021-10-04", "2021-10-04", True)
    replay.range_done(2, index=2)
    state = replay.range_done(3, index=3)
    assert state["customStatus"] == {"done": 4, "total": 4}
    [count] = state["new"]
    assert count["functionName"] == COUNT_ACTIVITY
    assert json.loads(count["input"]) == [blob_name("abc", i) for i in range(4)]
    state = replay.complete(4, 5)  # the distinct count over the four blobs
    [cleanup] = state["new"]
    assert (cleanup["functionName"], json.loads(cleanup["input"])) == (CLEANUP_ACTIVITY, "abc")
    assert state["isDone"] is False  # the answer waits for the clean-up
    state = replay.complete(5, 4)
    assert state["isDone"] is True
    assert state["output"] == 5


def test_empty_ranges_need_no_count_and_no_clean_up():
    replay = Replay(job(days=2, window=2))
    replay.episode()
    replay.complete(0, {"blob": None, "ids": 0})
    state = replay.complete(1, {"blob": None, "ids": 0})
    assert state["new"] == [] and state["isDone"] is True and state["output"] == 0


def test_one_stored_range_is_its_own_count_and_still_cleaned_up():
    replay = Replay(job(days=2, window=2))
    replay.episode()
    replay.complete(0, {"blob": None, "ids": 0})
    state = replay.range_done(1, index=1, ids=7)
    [cleanup] = state["new"]
    assert cleanup["functionName"] == CLEANUP_ACTIVITY
    state = replay.complete(2, 1)
    assert state["isDone"] is True and state["output"] == 7


def test_a_failed_clean_up_does_not_change_the_answer():
    replay = Replay(job(days=2, window=2, attempts=1))
    replay.episode()
    replay.range_done(0, index=0)
    replay.range_done(1, index=1)
    replay.complete(2, 7)
    replay.episode(ev.task_failed(T, 3, "storage down", "ServiceRequestError"))
    replay.history.append(ev.timer_created(T, 4, ev.timestamp(T)))  # the SDK's last retry timer
    state = replay.episode(ev.timer_fired(T, 4, ev.timestamp(T)))
    assert state["isDone"] is True
    assert state["output"] == 7


def test_a_range_that_fails_after_its_retries_fails_the_job_after_a_clean_up():
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
    state = replay.episode(ev.timer_fired(T, 4, ev.timestamp(T)))
    assert state["new"] == []  # range 1 is still running: its blob must exist before clean-up
    state = replay.range_done(1, index=1)
    [cleanup] = state["new"]  # the failure is caught once, to delete what the job stored
    assert cleanup["functionName"] == CLEANUP_ACTIVITY
    with pytest.raises(Exception, match=r"\$OutOfProcData\$") as error:
        replay.complete(5, 1)
    message, _, state_json = str(error.value).partition("\n\n$OutOfProcData$:")
    assert "boom" in message
    assert json.loads(state_json)["isDone"] is False


def test_replaying_is_deterministic():
    first, second = Replay(job(days=3, window=3)), Replay(job(days=3, window=3))
    assert first.episode()["actions"] == second.episode()["actions"]
    assert first.range_done(0, 0)["actions"] == second.range_done(0, 0)["actions"]


@pytest.mark.parametrize(
    ("days", "partition_days", "per_job", "tasks"),
    [
        (40, 1, 48, 40),  # within the cap: one day per activity
        (366, 1, 48, 46),  # 8 days per activity
        (367, 1, 48, 46),
        (30, 7, 48, 5),  # PARTITION_DAYS is the smallest width
        (366, 2, 10, 10),  # 2 x ceil(183 / 10) = 38 days per activity
        (366, 1, Settings().max_activities_per_job, 16),  # the default: 23 days each
    ],
)
def test_a_job_has_at_most_max_activities_per_job_range_tasks(days, partition_days, per_job, tasks):
    start = date(2021, 1, 1)
    end = date.fromordinal(start.toordinal() + days - 1)
    settings = Settings(partition_days=partition_days, max_activities_per_job=per_job)
    state = Replay(job_input(start, end, settings)).episode()
    assert state["customStatus"]["total"] == tasks
    assert len(state["new"]) == min(tasks, settings.max_in_flight)


def test_the_history_of_a_366_day_job_holds_names_and_counts_not_ids():
    replay = Replay(job(days=366, window=16, per_job=48))
    replay.episode()
    for task in range(46):
        replay.range_done(task, index=task, ids=20_000)
    replay.complete(46, 333_000)
    state = replay.complete(47, 46)
    assert state["output"] == 333_000
    assert len(json.dumps(replay.history)) < 64 * 1024
